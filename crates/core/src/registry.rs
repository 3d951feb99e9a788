//! Who is connected and who reads what: the clients, the channels with their logs and
//! subscribers, and per-channel settings (history, a cap on subscribers).

use std::collections::HashMap;
use std::sync::Arc;

use crate::client::ClientShared;
use crate::config::{History, HubConfig};
use crate::log::{ChannelLog, Cursor};
use crate::wakeup::DATA;

pub(crate) type ClientMap = HashMap<u64, Arc<ClientShared>>;

#[derive(Default)]
pub(crate) struct Registry {
    pub clients: ClientMap,
    pub channels: HashMap<Arc<str>, Channel>,
    /// Channels whose history differs from the hub's, kept when the channel itself goes, so
    /// it applies again when the channel comes back.
    channel_history: HashMap<Arc<str>, History>,
    /// Channels with a cap on their subscribers, kept likewise.
    channel_caps: HashMap<Arc<str>, usize>,
    /// The highest floor of a channel with history that went (empty, with nobody subscribed):
    /// every channel made later starts from it, so a resume from before it gets the reset
    /// signal, never a replay with a hole. One number for all, so a channel that goes leaves
    /// nothing behind.
    evicted_through: u64,
}

/// What a subscribe did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subscribe {
    Added,
    Already,
    /// Refused: the channel has as many subscribers as its cap allows.
    Full,
    /// Refused: the client has as many channels as it may.
    TooMany,
}

/// Whether the client is being registered now (it has no channel cursors yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fresh {
    Yes,
    No,
}

/// A channel exists while it has subscribers, or always once created when it keeps history
/// (resuming clients need it); its log goes with it.
pub(crate) struct Channel {
    pub log: Arc<ChannelLog>,
    pub subscribers: ClientMap,
}

impl Registry {
    pub fn channel(&mut self, name: &str, config: &HubConfig) -> &mut Channel {
        let history = self.history_of(name, config);
        let evicted_through = self.evicted_through;
        self.channels
            .entry(Arc::from(name))
            .or_insert_with_key(|name| {
                let log = ChannelLog::new(
                    Some(name.clone()),
                    config.max_lag_events,
                    config.max_lag_bytes,
                    history,
                );
                log.raise_floor(evicted_through);
                Channel {
                    log: Arc::new(log),
                    subscribers: ClientMap::new(),
                }
            })
    }

    /// Removes `name` if nothing keeps it: no subscriber, and no history or a log that holds
    /// nothing. True if it went. A log still read by a cursor that is draining an
    /// unsubscribed channel lives on with that cursor; a subscribe then makes a new one.
    pub fn remove_if_unused(&mut self, name: &str) -> bool {
        let Some(channel) = self.channels.get(name) else {
            return false;
        };
        if !channel.subscribers.is_empty() {
            return false;
        }
        if channel.log.has_history() {
            let Some(floor) = channel.log.expire() else {
                return false;
            };
            self.evicted_through = self.evicted_through.max(floor);
        }
        self.channels.remove(name);
        true
    }

    /// The smallest age bound of any history (the hub's, or a channel's own).
    pub fn smallest_max_age(&self, config: &HubConfig) -> Option<std::time::Duration> {
        std::iter::once(&config.history)
            .chain(self.channel_history.values())
            .filter(|history| history.is_on())
            .filter_map(|history| history.max_age)
            .min()
    }

    pub fn history_of(&self, name: &str, config: &HubConfig) -> History {
        self.channel_history
            .get(name)
            .copied()
            .unwrap_or(config.history)
    }

    /// Gives `name` its own history (None: the hub's again), applied to its log at once.
    pub fn set_channel_history(
        &mut self,
        name: &str,
        history: Option<History>,
        config: &HubConfig,
    ) {
        match history {
            Some(history) => self.channel_history.insert(Arc::from(name), history),
            None => self.channel_history.remove(name),
        };
        let history = self.history_of(name, config);
        if let Some(channel) = self.channels.get(name) {
            channel.log.set_history(history);
            if !history.is_on() {
                self.remove_if_unused(name);
            }
        } else if history.is_on() {
            // Kept from now on, so a client that resumes later finds what it missed.
            self.channel(name, config);
        }
    }

    /// Caps `name`'s subscribers at `max_clients` from now on (None: no cap). Subscribers above
    /// a lowered cap stay; only new ones are refused.
    pub fn set_channel_cap(&mut self, name: &str, max_clients: Option<usize>) {
        match max_clients {
            Some(cap) => self.channel_caps.insert(Arc::from(name), cap),
            None => self.channel_caps.remove(name),
        };
    }

    /// True when `name` has a cap and as many subscribers as it allows.
    pub fn channel_full(&self, name: &str) -> bool {
        self.channel_caps
            .get(name)
            .is_some_and(|cap| self.channels.get(name).map_or(0, |c| c.subscribers.len()) >= *cap)
    }

    /// Adds `client` to `name`'s subscribers, creating the channel, with a cursor at the log's
    /// head, or just past event `after` when the log holds everything since; unless it was
    /// subscribed already, or the channel is at its cap.
    pub fn subscribe(
        &mut self,
        client: &Arc<ClientShared>,
        name: &str,
        config: &HubConfig,
        after: Option<u64>,
        fresh: Fresh,
        max_channels: usize,
    ) -> Subscribe {
        let subscribed = self
            .channels
            .get(name)
            .is_some_and(|c| c.subscribers.contains_key(&client.id));
        if subscribed {
            return Subscribe::Already;
        }
        if self.channel_full(name) {
            return Subscribe::Full;
        }
        // Cursors still draining an unsubscribed channel do not count; the broadcast one does
        // not either. O(channels), like finding a lingering cursor below, within the cap.
        // Checked before the channel is made, so a refusal leaves no empty channel behind.
        if fresh == Fresh::No
            && client
                .lock_cursors()
                .iter()
                .filter(|c| c.until.is_none())
                .count()
                > max_channels
        {
            return Subscribe::TooMany;
        }
        let channel = self.channel(name, config);
        let mut cursors = client.lock_cursors();
        // A client being registered has no cursor but the broadcast one: looking for a
        // lingering one would make attaching with n channels cost n² (20,000 channels: 176 ms
        // of the JS thread, measured).
        let lingering = match fresh {
            Fresh::Yes => None,
            Fresh::No => cursors
                .iter_mut()
                .find(|c| Arc::ptr_eq(&c.log, &channel.log)),
        };
        match lingering {
            // Unsubscribed a moment ago and still sending what came before: it just goes on.
            Some(lingering) => lingering.until = None,
            None => cursors.push(Cursor::at(channel.log.clone(), join(&channel.log, after))),
        }
        drop(cursors);
        channel.subscribers.insert(client.id, client.clone());
        Subscribe::Added
    }

    /// Takes a departing client off `name`'s subscribers; its cursors are dropped by the
    /// caller. O(1): unlike `unsubscribe`, it does not look for the cursor among the client's.
    /// False if it was not subscribed.
    pub fn remove_departed(&mut self, client_id: u64, name: &str) -> bool {
        let Some(channel) = self.channels.get_mut(name) else {
            return false;
        };
        if channel.subscribers.remove(&client_id).is_none() {
            return false;
        }
        self.remove_if_unused(name);
        true
    }

    /// Removes `client` from `name`'s subscribers. Its cursor ends at `until` (the sequence
    /// number now): what was published before is still sent, then the writer drops the
    /// cursor. A channel left without subscribers goes; lingering cursors keep its log alive
    /// until they are done. False if it was not subscribed.
    pub fn unsubscribe(&mut self, client: &ClientShared, name: &str, until: u64) -> bool {
        let Some(channel) = self.channels.get_mut(name) else {
            return false;
        };
        if channel.subscribers.remove(&client.id).is_none() {
            return false;
        }
        if let Some(cursor) = client
            .lock_cursors()
            .iter_mut()
            .find(|c| Arc::ptr_eq(&c.log, &channel.log))
        {
            cursor.until = Some(until);
        }
        client.wakeup.notify(DATA);
        self.remove_if_unused(name);
        true
    }
}

/// A new cursor's offset: just past event `after` when the log keeps history that reaches it,
/// else the head.
pub(crate) fn join(log: &ChannelLog, after: Option<u64>) -> u64 {
    match after {
        Some(seq) if log.has_history() => log.join_after(seq).unwrap_or_else(|| log.join()),
        _ => log.join(),
    }
}
