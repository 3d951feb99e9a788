//! Who is connected and who reads what: the clients, the channels with their logs,
//! subscribers and settings, and when a channel that nothing keeps goes.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use crate::channel_settings::{ChannelCompression, ChannelSettings, StandingSettings};
use crate::client::ClientShared;
use crate::config::{History, HubConfig};
use crate::log::{ChannelLog, Cursor};
use crate::wakeup::DATA;

pub(crate) type ClientMap = HashMap<u64, Arc<ClientShared>>;

/// A table is shrunk once it has this many times more room than entries...
const SPARSE: usize = 4;
/// ...and more than this many slots to give back.
const SHRINK_FLOOR: usize = 1024;

#[derive(Default)]
pub(crate) struct Registry {
    pub clients: ClientMap,
    pub channels: HashMap<Arc<str>, Channel>,
    /// When to look again at a channel that settings or a hold keep for a while: then it
    /// goes if nothing else keeps it. Earliest first; an entry for a channel gone or kept
    /// longer since is skipped.
    revisits: BinaryHeap<Reverse<(Instant, Arc<str>)>>,
    /// Settings for good, by name (see `StandingSettings`).
    standing: HashMap<Arc<str>, StandingSettings>,
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

/// A channel exists while it has subscribers, while its log holds history (resuming clients
/// need it), or while its settings or a stream's hold keep it; its log and settings go with it.
pub(crate) struct Channel {
    pub log: Arc<ChannelLog>,
    pub subscribers: ClientMap,
    /// Boxed: most channels have none.
    pub settings: Option<Box<ChannelSettings>>,
}

impl Channel {
    /// Whether its settings or a stream's hold keep it at `now`, used or not.
    pub fn kept_by_settings(&self, now: Instant) -> bool {
        self.settings.as_ref().is_some_and(|s| s.keep(now))
    }

    fn settings_mut(&mut self) -> &mut ChannelSettings {
        self.settings.get_or_insert_with(Box::default)
    }

    /// What the log keeps: `base` (the standing history or the hub's) unless the channel's
    /// own settings or holds say otherwise.
    fn history(&self, base: History) -> History {
        self.settings
            .as_ref()
            .map_or(base, |s| s.effective_history(base))
    }
}

impl Registry {
    pub fn channel(&mut self, name: &str, config: &HubConfig) -> &mut Channel {
        let history = self.base_history(name, config);
        let compression = self.base_compression(name).resolve(config.gzip);
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
                log.compress_with(compression);
                Channel {
                    log: Arc::new(log),
                    subscribers: ClientMap::new(),
                    settings: None,
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
        if channel.kept_by_settings(Instant::now()) {
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

    /// What `name` keeps: its own history widened by its streams' holds, or its standing
    /// history, or the hub's.
    pub fn history_of(&self, name: &str, config: &HubConfig) -> History {
        let base = self.base_history(name, config);
        self.channels
            .get(name)
            .map_or(base, |channel| channel.history(base))
    }

    /// The standing history of `name`, or the hub's.
    fn base_history(&self, name: &str, config: &HubConfig) -> History {
        self.standing
            .get(name)
            .and_then(|s| s.history)
            .unwrap_or(config.history)
    }

    /// The standing compression of `name`, or the hub's.
    fn base_compression(&self, name: &str) -> ChannelCompression {
        self.standing
            .get(name)
            .map_or(ChannelCompression::Hub, |s| s.compression)
    }

    /// Applies how the settings of `name` say its log compresses now.
    fn apply_compression(&self, name: &str, config: &HubConfig) {
        if let Some(channel) = self.channels.get(name) {
            let own = channel.settings.as_ref().and_then(|s| s.compression);
            let compression = own.unwrap_or_else(|| self.base_compression(name));
            channel.log.compress_with(compression.resolve(config.gzip));
        }
    }

    /// Applies what the settings and holds of `name` say its log keeps now.
    fn apply_history(&self, name: &str, config: &HubConfig) {
        if let Some(channel) = self.channels.get(name) {
            channel
                .log
                .set_history(channel.history(self.base_history(name, config)));
        }
    }

    /// Gives `name` settings for good (see `StandingSettings`), applied to its log at once.
    pub fn set_standing(&mut self, name: &str, settings: StandingSettings, config: &HubConfig) {
        self.standing.insert(Arc::from(name), settings);
        self.apply_history(name, config);
        self.apply_compression(name, config);
    }

    /// The channel `name` with settings, made if it is not there; it is kept a while from now.
    fn configure(&mut self, name: &str, config: &HubConfig) -> &mut Channel {
        let now = Instant::now();
        let channel = self.channel(name, config);
        let until = channel.settings_mut().configured(now);
        let key = channel.log.name.clone();
        if let Some(key) = key {
            self.revisits.push(Reverse((until, key)));
        }
        // Borrowed again: the push above needed `self` whole.
        self.channel(name, config)
    }

    /// Gives `name` its own history (None: the hub's again), applied to its log at once.
    pub fn set_channel_history(
        &mut self,
        name: &str,
        history: Option<History>,
        config: &HubConfig,
    ) {
        if history.is_none() && !self.channels.contains_key(name) {
            return;
        }
        self.configure(name, config).settings_mut().history = history;
        self.apply_history(name, config);
    }

    /// Caps `name`'s subscribers at `max_clients` from now on (None: no cap). Subscribers above
    /// a lowered cap stay; only new ones are refused.
    pub fn set_channel_cap(&mut self, name: &str, max_clients: Option<usize>, config: &HubConfig) {
        if max_clients.is_none() && !self.channels.contains_key(name) {
            return;
        }
        self.configure(name, config).settings_mut().cap = max_clients;
    }

    /// Makes `name` compress as `compression` says from now on (see `ChannelCompression`).
    pub fn set_channel_compression(
        &mut self,
        name: &str,
        compression: ChannelCompression,
        config: &HubConfig,
    ) {
        self.configure(name, config).settings_mut().compression = Some(compression);
        self.apply_compression(name, config);
    }

    /// Makes `name` keep at least `history` until `release_history(name, id)` and then for
    /// the history's age bound.
    pub fn hold_history(&mut self, name: &str, id: u64, history: History, config: &HubConfig) {
        self.channel(name, config).settings_mut().hold(id, history);
        self.apply_history(name, config);
    }

    /// Starts the retention of hold `id` on `name`: the channel is looked at again when it ends.
    pub fn release_history(&mut self, name: &str, id: u64) {
        let Some(channel) = self.channels.get_mut(name) else {
            return;
        };
        let key = channel.log.name.clone();
        let released = channel
            .settings
            .as_mut()
            .and_then(|s| s.release(id, Instant::now()));
        if let (Some(until), Some(key)) = (released, key) {
            self.revisits.push(Reverse((until, key)));
        }
    }

    /// Looks again at the channels whose settings or holds stopped keeping them by `now`: ends
    /// the holds that ended (the log goes back to the channel's own history) and removes the
    /// channels nothing keeps any more.
    /// At most `limit` of them, so that the write lock is not held for a whole wave; true if
    /// more are due.
    pub fn revisit_due(&mut self, now: Instant, config: &HubConfig, limit: usize) -> bool {
        for _ in 0..limit {
            match self.revisits.peek() {
                Some(Reverse((at, _))) if *at <= now => {}
                _ => return false,
            }
            let Some(Reverse((_, name))) = self.revisits.pop() else {
                break;
            };
            let Some(channel) = self.channels.get_mut(&name) else {
                continue;
            };
            if channel
                .settings
                .as_mut()
                .is_some_and(|s| s.drop_ended_holds(now))
            {
                self.apply_history(&name, config);
            }
            self.remove_if_unused(&name);
        }
        self.revisit_is_due(now)
    }

    /// Gives back what the channel table and the revisits grew to for channels that went:
    /// a hash map keeps its largest size, so a wave of 100,000 one-off channels held 14 MB
    /// of empty slots after they all went. Called after removals, under the write lock.
    pub fn shrink_if_sparse(&mut self) {
        if sparse(self.channels.capacity(), self.channels.len()) {
            self.channels.shrink_to(2 * self.channels.len());
        }
        if sparse(self.revisits.capacity(), self.revisits.len()) {
            self.revisits.shrink_to(2 * self.revisits.len());
        }
    }

    /// Whether `shrink_if_sparse` has something to give back.
    pub fn is_sparse(&self) -> bool {
        sparse(self.channels.capacity(), self.channels.len())
            || sparse(self.revisits.capacity(), self.revisits.len())
    }

    /// Whether some channel is due to be looked at again by `now`.
    pub fn revisit_is_due(&self, now: Instant) -> bool {
        self.revisits
            .peek()
            .is_some_and(|Reverse((at, _))| *at <= now)
    }

    /// True when `name` has a cap and as many subscribers as it allows.
    pub fn channel_full(&self, name: &str) -> bool {
        let Some(channel) = self.channels.get(name) else {
            // A channel with no subscribers is full only under a cap of 0.
            return self.standing.get(name).and_then(|s| s.cap) == Some(0);
        };
        let cap = channel
            .settings
            .as_ref()
            .and_then(|s| s.cap)
            .or_else(|| self.standing.get(name).and_then(|s| s.cap));
        cap.is_some_and(|cap| channel.subscribers.len() >= cap)
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
            None => cursors.push(Cursor::at(
                channel.log.clone(),
                join(&channel.log, after, client.is_gzip()),
            )),
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

fn sparse(capacity: usize, len: usize) -> bool {
    capacity > SPARSE * len + SHRINK_FLOOR
}

/// A new cursor's offset: just past event `after` when the log keeps history that reaches it,
/// else the head.
pub(crate) fn join(log: &ChannelLog, after: Option<u64>, zipped: bool) -> u64 {
    match after {
        Some(seq) if log.has_history() => log
            .join_after(seq, zipped)
            .unwrap_or_else(|| log.join(zipped)),
        _ => log.join(zipped),
    }
}
