//! The hub's state, under everything that acts on it: the registry, the logs, the sequence,
//! and what every call needs of them: appending (O(1); the dispatcher wakes the readers),
//! delivering to one client's mailbox, and a client's close and its departure, recorded once.
//! `hub` (the embedder's calls), `writer` (the connection tasks), `remote` (the backend's
//! feed) and `shutdown` all reach the hub through this.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::Notify;

use crate::admission::Refusal;
use crate::backend::Backend;
use crate::client::{ClientShared, Phase};
use crate::close::CloseReason;
use crate::config::HubConfig;
use crate::delivery_watch::{Watch, WatchSpec};
use crate::error::SseError;
use crate::events::{Departure, HubEvents};
use crate::frame::Message;
use crate::heartbeat_queue::HeartbeatQueue;
use crate::log::ChannelLog;
use crate::mailbox::Push;
use crate::registry::Registry;
use crate::resume::{Epoch, ResetReason};
use crate::sequence::Sequence;
use crate::stats::Stats;
use crate::wakeup::DATA;

/// One event as `HubState::append_entry` appends it to a log.
pub(crate) struct NewEntry<'a> {
    pub seq: u64,
    /// Its place in the backend's order (`seq` without a backend).
    pub position: u64,
    pub frame: Bytes,
    /// The id the application gave it.
    pub app_id: Option<&'a str>,
    /// When it was stored: its age for the history's bound counts from then.
    pub at: Instant,
    /// Its delivery here is reported (delivery_watch.rs).
    pub watch: Option<WatchSpec<'a>>,
}

impl<'a> NewEntry<'a> {
    /// An event published here, now.
    pub fn local(
        seq: u64,
        frame: Bytes,
        app_id: Option<&'a str>,
        watch: Option<WatchSpec<'a>>,
    ) -> Self {
        NewEntry {
            seq,
            position: seq,
            frame,
            app_id,
            at: Instant::now(),
            watch,
        }
    }
}

pub(crate) struct HubState {
    pub(crate) config: HubConfig,
    pub(crate) registry: RwLock<Registry>,
    /// The log `broadcast` appends to; every client reads it.
    pub(crate) broadcast_log: Arc<ChannelLog>,
    pub(crate) sequence: Arc<Sequence>,
    /// Stamped into the ids the hub makes.
    pub(crate) epoch: Epoch,
    /// Where `publish` and `broadcast` go instead of the local logs (see `backend`).
    pub(crate) backend: OnceLock<Arc<dyn Backend>>,
    /// The highest position the backend fed this hub.
    pub(crate) remote_applied: AtomicU64,
    /// Logs appended to since the dispatcher last ran, and its wakeup.
    pub(crate) dirty_logs: Mutex<Vec<Arc<ChannelLog>>>,
    pub(crate) dispatch: Notify,
    pub(crate) next_id: AtomicU64,
    /// Numbers the history holds of streams (see `hold_history`).
    pub(crate) next_hold: AtomicU64,
    /// No new client is accepted: a close has begun (staged or not).
    pub(crate) refusing: AtomicBool,
    /// Closed: nothing more is accepted, not even events.
    pub(crate) closed: AtomicBool,
    /// How long a server-requested close may drain, in milliseconds; 0: no limit beyond the
    /// write timeout. Set by a staged close.
    pub(crate) drain_limit_ms: AtomicU64,
    pub(crate) stats: Arc<Stats>,
    pub(crate) events: Arc<dyn HubEvents>,
    /// Where parked writers are started again.
    pub(crate) runtime: tokio::runtime::Handle,
    /// When parked writers' heartbeats are due.
    pub(crate) heartbeats: HeartbeatQueue,
}

/// What became of a frame sent to one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The client is gone or closing: nothing was queued.
    Gone,
    Queued,
    /// Queued, and what was sent to this client alone is now above the high-water mark: the
    /// producer should wait for `HubEvents::drained`.
    AboveHighWater,
}

impl HubState {
    /// The position of the newest event: the backend's, or this hub's sequence.
    pub(crate) fn last_position(&self) -> u64 {
        if self.backend.get().is_some() {
            self.remote_applied.load(Ordering::Acquire)
        } else {
            self.sequence.committed()
        }
    }

    /// The broadcast log (None) or an existing channel's, with its readers now.
    pub(crate) fn target(&self, channel: Option<&str>) -> (Arc<ChannelLog>, usize) {
        let registry = self.read_registry();
        match channel.and_then(|name| registry.channels.get(name)) {
            Some(channel) => (channel.log.clone(), channel.subscribers.len()),
            None => (self.broadcast_log.clone(), registry.clients.len()),
        }
    }

    /// A channel's log and subscribers. A channel nobody reads exists only when logs keep
    /// history (a resuming client will want what it missed); otherwise None: nothing to do.
    pub(crate) fn channel_target(&self, name: &str) -> Option<(Arc<ChannelLog>, usize)> {
        let registry = self.read_registry();
        if let Some(channel) = registry.channels.get(name) {
            return Some((channel.log.clone(), channel.subscribers.len()));
        }
        if !registry.history_of(name, &self.config).is_on() {
            return None;
        }
        drop(registry);
        let mut registry = self.write_registry();
        let channel = registry.channel(name, &self.config);
        Some((channel.log.clone(), channel.subscribers.len()))
    }

    /// The broadcast log (None) or `channel`'s, as `publish` targets them: a channel's log
    /// only where it exists or keeps history (see `channel_target`).
    pub(crate) fn log_of(&self, channel: Option<&str>) -> Option<(Arc<ChannelLog>, usize)> {
        match channel {
            Some(name) => self.channel_target(name),
            None => Some(self.target(None)),
        }
    }

    pub(crate) fn append_entry(&self, log: Arc<ChannelLog>, entry: NewEntry<'_>) {
        let NewEntry {
            seq,
            position,
            frame,
            app_id,
            at,
            watch,
        } = entry;
        let watch = watch.map(|spec| Watch::new(spec, log.name.clone(), self.events.clone()));
        let lag = log.append_at(seq, position, frame, app_id, at, watch);
        self.sequence.commit(seq);
        self.stats.saw_lag(lag.events, lag.bytes);
        // No reader behind means no cursor read the log when the entry went in (each counts
        // in it), and one that joins after joins past it: nobody to wake. A history channel
        // nobody here reads (a stream before its reader came, another process's channel fed
        // from Redis) would otherwise wake the dispatcher at every event: 3.6 us a publish
        // against 0.9 on one core, most of it switching to it and back.
        if lag.events > 0 && log.mark_dirty() {
            self.lock_dirty_logs().push(log);
            self.dispatch.notify_one();
        }
    }

    /// `event: <reset_event>` with `{"reason":"..."}` as data.
    pub(crate) fn reset_frame(&self, reason: ResetReason) -> Result<Bytes, SseError> {
        let data = format!("{{\"reason\":\"{}\"}}", reason.as_str());
        Message {
            event: Some(&self.config.reset_event),
            data: Some(&data),
            ..Default::default()
        }
        .encode()
    }

    pub(crate) fn read_registry(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        // A poisoned lock only means a panic elsewhere while holding it; the maps themselves
        // are still consistent (no code path panics between the paired updates).
        self.registry.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write_registry(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.registry.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Refuses every register from now on; returns the clients registered before.
    pub(crate) fn stop_accepting(&self) -> Vec<Arc<ClientShared>> {
        self.refusing.store(true, Ordering::Release);
        // Listed after the flag is set: a register either inserted before this read (and is
        // listed) or saw the flag under the registry lock (and was refused).
        self.read_registry().clients.values().cloned().collect()
    }

    /// See `drain_limit_ms`.
    pub(crate) fn drain_limit(&self) -> Option<std::time::Duration> {
        match self.drain_limit_ms.load(Ordering::Acquire) {
            0 => None,
            ms => Some(std::time::Duration::from_millis(ms)),
        }
    }

    pub(crate) fn lock_dirty_logs(&self) -> std::sync::MutexGuard<'_, Vec<Arc<ChannelLog>>> {
        self.dirty_logs.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn client(&self, id: u64) -> Option<Arc<ClientShared>> {
        self.read_registry().clients.get(&id).cloned()
    }

    /// Queues the frames of one call for one client, under one mailbox lock, with one wakeup
    /// for the lot. A client asked to close takes nothing more: its writer may already have
    /// drained and ended the stream, so a later frame could never be written. Stops at an
    /// overflow (the client is cut, so the rest could never be sent).
    pub(crate) fn deliver(
        &self,
        client: &ClientShared,
        frames: impl Iterator<Item = Bytes>,
    ) -> Delivery {
        if client.close_requested().is_some() {
            return Delivery::Gone;
        }
        let mut delivery = Delivery::Queued;
        let mut pusher = client.mailbox.pusher();
        for frame in frames {
            let seq = self.sequence.take();
            let push = pusher.push(seq, frame);
            self.sequence.commit(seq);
            match push {
                Push::Overflow => {
                    drop(pusher);
                    self.close(client, CloseReason::Slow);
                    return Delivery::Gone;
                }
                Push::QueuedAboveHighWater => delivery = Delivery::AboveHighWater,
                push => self.count_drops(push),
            }
        }
        drop(pusher);
        client.wakeup.notify(DATA);
        delivery
    }

    /// `deliver` of `events` events encoded back to back in `frame`, as one mailbox slot
    /// (`Pusher::push_events`: the client's policy is `Disconnect`).
    pub(crate) fn deliver_batch(
        &self,
        client: &ClientShared,
        frame: Bytes,
        events: u32,
    ) -> Delivery {
        if client.close_requested().is_some() {
            return Delivery::Gone;
        }
        let mut pusher = client.mailbox.pusher();
        let seq = self.sequence.take();
        let push = pusher.push_events(seq, frame, events);
        self.sequence.commit(seq);
        drop(pusher);
        let delivery = match push {
            Push::Overflow => {
                self.close(client, CloseReason::Slow);
                return Delivery::Gone;
            }
            Push::QueuedAboveHighWater => Delivery::AboveHighWater,
            push => {
                self.count_drops(push);
                Delivery::Queued
            }
        };
        client.wakeup.notify(DATA);
        delivery
    }

    fn count_drops(&self, push: Push) {
        if let Push::QueuedAfterDropping(n) = push {
            self.stats.add_dropped(n);
        }
    }

    /// Withdraws `client`, registered and held, whose transport never started: it leaves
    /// without a trace but the refusal counted. False when it is running or gone.
    pub(crate) fn withdraw(&self, client: &ClientShared, refusal: Refusal) -> bool {
        if !client.advance(Phase::Pending, Phase::Done) {
            return false;
        }
        self.remove(client.id, None);
        self.stats.add_refused(refusal);
        true
    }

    /// Asks `client` to close: a client whose transport never started leaves now; a running
    /// one is told through its writer, which drains (`Server`) or cuts (other reasons).
    pub(crate) fn close(&self, client: &ClientShared, reason: CloseReason) {
        // The server's close of a client whose transport is about to start waits for it, so
        // what it was sent first still goes out, then a clean end.
        let waits = reason == CloseReason::Server && client.is_starting() && client.is_pending();
        if !waits && client.advance(Phase::Pending, Phase::Done) {
            self.finish(client.id, reason);
        } else {
            client.request_close(reason, self.sequence.committed());
        }
    }

    /// Records client `id`'s departure: the one place it leaves the registry, its cursors, the
    /// counters and the embedder's `closed`, reached exactly once (a second call finds nothing).
    pub(crate) fn finish(&self, id: u64, reason: CloseReason) {
        self.remove(id, Some(reason));
    }

    /// Takes client `id` out of the registry and its logs. With a reason it departed (counted,
    /// and the embedder's `closed` called); without, it was withdrawn before it ever opened
    /// (a held registration the embedder refused): nothing is reported.
    fn remove(&self, id: u64, reason: Option<CloseReason>) {
        let mut channels: Vec<Arc<str>> = Vec::new();
        let removed = {
            let mut registry = self.write_registry();
            let removed = registry.clients.remove(&id);
            if let Some(client) = &removed {
                let names: Vec<Arc<str>> = client
                    .lock_cursors()
                    .iter()
                    .filter_map(|c| c.log.name.clone())
                    .collect();
                // What it was still subscribed to (not the cursors an unsubscribe left
                // draining) is what this unsubscribes.
                channels = names
                    .into_iter()
                    .filter(|name| registry.remove_departed(client.id, name))
                    .collect();
            }
            removed
        };
        if let Some(client) = removed {
            // The broadcast cursor stops holding entries back (its writer has ended, or never
            // started); the channels' cursors left with their subscriptions.
            let zipped = client.is_gzip();
            for cursor in client.lock_cursors().drain(..) {
                cursor.log.leave(cursor.next, zipped);
            }
            if let Some(transport) = client.mark_done().transport() {
                self.stats.writer_ended(transport);
            }
            let Some(reason) = reason else {
                return;
            };
            self.stats.add_closed(reason);
            let departure = Departure {
                reason,
                delivered: client.delivered(),
                channels,
            };
            self.events.closed(id, departure);
        }
    }
}
