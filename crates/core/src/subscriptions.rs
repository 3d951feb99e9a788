//! Subscriptions and per-channel settings: joining and leaving a channel on a live client,
//! a channel's own history, subscriber cap and compression, and the history a stream holds
//! on it.

use std::sync::atomic::Ordering;

use crate::channel_settings::{ChannelCompression, StandingSettings};
use crate::config::History;
use crate::error::SseError;
use crate::hub::Hub;
use crate::registry::{Fresh, Registry, Subscribe};

impl Hub {
    /// Subscribes client `id` to `channel` from now on (its cursor joins at the log's head).
    /// Returns false if the client is gone, was subscribed already or the channel is full; an
    /// error if it has `max_channels_per_client` channels already.
    pub fn subscribe(&self, id: u64, channel: &str) -> Result<bool, SseError> {
        let Some(client) = self.inner.client(id) else {
            return Ok(false);
        };
        if client.close_requested().is_some() {
            return Ok(false);
        }
        let config = &self.inner.config;
        let mut registry = self.inner.write_registry();
        let subscribe = registry.subscribe(
            &client,
            channel,
            config,
            None,
            Fresh::No,
            config.max_channels_per_client,
        );
        match subscribe {
            Subscribe::Full => self.inner.stats.add_subscription_refused(),
            Subscribe::TooMany => {
                return Err(SseError::TooManyChannels {
                    count: config.max_channels_per_client + 1,
                    limit: config.max_channels_per_client,
                })
            }
            Subscribe::Added | Subscribe::Already => {}
        }
        Ok(subscribe == Subscribe::Added)
    }

    /// Ends client `id`'s subscription to `channel`; nothing published there reaches it any
    /// more. Returns false if it was not subscribed.
    pub fn unsubscribe(&self, id: u64, channel: &str) -> bool {
        let Some(client) = self.inner.client(id) else {
            return false;
        };
        let until = self.inner.sequence.committed();
        self.inner
            .write_registry()
            .unsubscribe(&client, channel, until)
    }

    /// Gives `channel` a history of its own (None: the hub's again). Takes effect at once.
    /// Settings live on the channel and go with it: a channel exists while it has
    /// subscribers or holds history, and for `SETTINGS_GRACE` after each call that gives it
    /// settings, so an attach or publish that comes a moment later finds them. Entries a
    /// smaller history no longer keeps go once read.
    pub fn set_channel_history(&self, channel: &str, history: Option<History>) {
        let mut registry = self.inner.write_registry();
        let existed = registry.channels.contains_key(channel);
        registry.set_channel_history(channel, history, &self.inner.config);
        if !existed {
            self.raise_new_floor(&registry, channel);
        }
    }

    /// Caps `channel`'s subscribers at `max_clients` from now on (None: no cap): an attach
    /// that asks for it when full is refused, a subscribe returns false. The cap lives on the
    /// channel, like its history: see `set_channel_history`.
    pub fn set_channel_cap(&self, channel: &str, max_clients: Option<usize>) {
        let mut registry = self.inner.write_registry();
        let existed = registry.channels.contains_key(channel);
        registry.set_channel_cap(channel, max_clients, &self.inner.config);
        if !existed {
            self.raise_new_floor(&registry, channel);
        }
    }

    /// Makes `channel`'s log compress as `compression` says for the gzip clients of a
    /// compressing hub, from its next event on. Lives on the channel, like its history.
    pub fn set_channel_compression(&self, channel: &str, compression: ChannelCompression) {
        let mut registry = self.inner.write_registry();
        let existed = registry.channels.contains_key(channel);
        registry.set_channel_compression(channel, compression, &self.inner.config);
        if !existed {
            self.raise_new_floor(&registry, channel);
        }
    }

    /// Gives `channel` settings for good, whether it exists or not (`createHub({ channels })`):
    /// its history (None: the hub's) and its cap (None: none). Settings given later with
    /// `set_channel_history` or `set_channel_cap` override them while the channel lives.
    pub fn set_standing_channel(
        &self,
        channel: &str,
        history: Option<History>,
        max_clients: Option<usize>,
        compression: ChannelCompression,
    ) {
        self.inner.write_registry().set_standing(
            channel,
            StandingSettings {
                history,
                cap: max_clients,
                compression,
            },
            &self.inner.config,
        );
    }

    /// Makes `channel` keep at least `history` while a stream runs in it (`hold`) and, once
    /// `release_history` is called, for the history's age bound; then the channel keeps its
    /// own history again. Returns the hold's id.
    pub fn hold_history(&self, channel: &str, history: History) -> u64 {
        let id = self.inner.next_hold.fetch_add(1, Ordering::Relaxed);
        let mut registry = self.inner.write_registry();
        let existed = registry.channels.contains_key(channel);
        registry.hold_history(channel, id, history, &self.inner.config);
        if !existed {
            self.raise_new_floor(&registry, channel);
        }
        id
    }

    /// Whether `channel` still holds events of the resumable stream `stream` (`<stream>.<n>`,
    /// or one of `closing`, its end and error ids): a second stream of that id would give its
    /// ids a second time, and a resume into either would be ambiguous.
    pub fn channel_holds_stream(&self, channel: &str, stream: &str, closing: &[String]) -> bool {
        let registry = self.inner.read_registry();
        registry
            .channels
            .get(channel)
            .is_some_and(|c| c.log.holds_stream(stream, closing))
    }

    /// Starts the retention of hold `id` (see `hold_history`); unknown ids do nothing.
    pub fn release_history(&self, channel: &str, id: u64) {
        self.inner.write_registry().release_history(channel, id);
    }

    /// What was published before a channel existed was never kept there: a resume from before
    /// now gets the reset signal, not a replay with a hole.
    fn raise_new_floor(&self, registry: &Registry, channel: &str) {
        if let Some(created) = registry.channels.get(channel) {
            created.log.raise_floor(self.inner.last_position());
        }
    }
}
