//! Subscriptions and per-channel settings: joining and leaving a channel on a live client,
//! and a channel's own history and subscriber cap.

use crate::config::History;
use crate::error::SseError;
use crate::hub::Hub;
use crate::registry::{Fresh, Subscribe};

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

    /// Gives `channel` a history of its own (None: the hub's again). Takes effect at once:
    /// a channel whose history is on exists from now on, even without subscribers; entries a
    /// smaller history no longer keeps go once read.
    pub fn set_channel_history(&self, channel: &str, history: Option<History>) {
        let mut registry = self.inner.write_registry();
        let existed = registry.channels.contains_key(channel);
        registry.set_channel_history(channel, history, &self.inner.config);
        if !existed {
            if let Some(created) = registry.channels.get(channel) {
                // What was published before it existed was never kept here: a resume from
                // before now gets the reset signal, not a replay with a hole.
                created.log.raise_floor(self.inner.last_position());
            }
        }
    }

    /// Caps `channel`'s subscribers at `max_clients` from now on (None: no cap): an attach
    /// that asks for it when full is refused, a subscribe returns false.
    pub fn set_channel_cap(&self, channel: &str, max_clients: Option<usize>) {
        self.inner
            .write_registry()
            .set_channel_cap(channel, max_clients);
    }
}
