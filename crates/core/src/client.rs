//! State shared between a client's producers and its writer task.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::wakeup::{Wakeup, CLOSING};

use crate::close::CloseReason;
use crate::events::Delivered;
use crate::log::Cursor;
use crate::mailbox::Mailbox;
use crate::stats::Transport;

/// Where a client is in its life. `Pending` clients are registered (they can be sent to) but
/// their socket is not yet adopted: JS waits for Node to flush the response head first. A
/// running client's phase names its transport, which the connection gauges count by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Phase {
    Pending = 0,
    Native = 1,
    Node = 2,
    Fetch = 3,
    Done = 4,
}

impl Phase {
    pub(crate) fn running(transport: Transport) -> Phase {
        match transport {
            Transport::Native => Phase::Native,
            Transport::Node => Phase::Node,
            Transport::Fetch => Phase::Fetch,
        }
    }

    /// The transport of a running client.
    pub(crate) fn transport(self) -> Option<Transport> {
        match self {
            Phase::Native => Some(Transport::Native),
            Phase::Node => Some(Transport::Node),
            Phase::Fetch => Some(Transport::Fetch),
            Phase::Pending | Phase::Done => None,
        }
    }

    fn from_u8(value: u8) -> Phase {
        match value {
            0 => Phase::Pending,
            1 => Phase::Native,
            2 => Phase::Node,
            3 => Phase::Fetch,
            _ => Phase::Done,
        }
    }
}

pub struct ClientShared {
    pub id: u64,
    /// The sequence number of its opening frame (`retry:` or a comment), which is not one of
    /// the events it is counted as having been delivered.
    pub opening: u64,
    /// The mailbox: frames sent to this client alone.
    pub mailbox: Mailbox,
    /// Its read positions in the broadcast log and its channels' logs (which are its
    /// subscriptions). Locked by its writer for each batch, by (un)subscribing, and by readers
    /// of the hub's levels; never on the publishing path.
    cursors: Mutex<Vec<Cursor>>,
    /// The hub's committed sequence number when the server asked this client to close: a
    /// draining writer sends nothing published after that.
    drain_until: AtomicU64,
    /// Why and how its writer is woken.
    pub(crate) wakeup: Wakeup,
    close_request: AtomicU8,
    phase: AtomicU8,
    /// Its own heartbeat period in milliseconds, 0 for the hub's: a Fetch body under a runtime
    /// that cuts a response quiet for less than the hub's period (Bun.serve: 10 s). Set before
    /// its writer starts; fits in what would be padding.
    heartbeat_ms: AtomicU32,
    /// Its embedder will start its transport in a moment (a head that waits for the next turn):
    /// a close the server asks for meanwhile drains through it rather than ending it unwritten.
    starting: AtomicBool,
    /// Its stream is gzip (gzip.rs): its cursors count as compressed readers of their logs.
    /// Set before its writer starts, under its cursors' lock.
    gzip: AtomicBool,
    /// What its writer wrote (see `Delivered`); only the writer adds to these.
    delivered_events: AtomicU64,
    delivered_bytes: AtomicU64,
    /// On the relay (relay_sink.rs): the bytes of its batches the embedder acknowledged,
    /// counted from the start, and whether its response refused the last batch it took.
    relay_acknowledged: AtomicU64,
    relay_refused: AtomicBool,
}

impl ClientShared {
    pub(crate) fn new(id: u64, opening: u64, mailbox: Mailbox, cursors: Vec<Cursor>) -> Self {
        ClientShared {
            id,
            opening,
            mailbox,
            cursors: Mutex::new(cursors),
            drain_until: AtomicU64::new(u64::MAX),
            wakeup: Wakeup::default(),
            close_request: AtomicU8::new(0),
            phase: AtomicU8::new(Phase::Pending as u8),
            heartbeat_ms: AtomicU32::new(0),
            starting: AtomicBool::new(false),
            gzip: AtomicBool::new(false),
            delivered_events: AtomicU64::new(0),
            delivered_bytes: AtomicU64::new(0),
            relay_acknowledged: AtomicU64::new(0),
            relay_refused: AtomicBool::new(false),
        }
    }

    /// The embedder's response took its batches up to `bytes` (counted from the start) and
    /// takes more: the relay may hand it more.
    pub(crate) fn relay_acknowledge(&self, bytes: u64) {
        self.relay_acknowledged.fetch_max(bytes, Ordering::AcqRel);
        self.relay_refused.store(false, Ordering::Release);
    }

    /// The embedder's response refused the batch it took last (full, until it drains).
    pub(crate) fn relay_refuse(&self) {
        self.relay_refused.store(true, Ordering::Release);
    }

    /// Bytes acknowledged so far, and whether the response refuses more.
    pub(crate) fn relay_gate(&self) -> (u64, bool) {
        (
            self.relay_acknowledged.load(Ordering::Acquire),
            self.relay_refused.load(Ordering::Acquire),
        )
    }

    /// Its transport starts shortly (see `starting`).
    pub(crate) fn set_starting(&self) {
        self.starting.store(true, Ordering::Release);
    }

    pub(crate) fn is_starting(&self) -> bool {
        self.starting.load(Ordering::Acquire)
    }

    /// Makes its stream gzip (before its writer starts): each log it reads compresses its
    /// appends from now on. Once: a second call changes nothing.
    pub(crate) fn use_gzip(&self) {
        let cursors = self.lock_cursors();
        if !self.gzip.swap(true, Ordering::AcqRel) {
            for cursor in cursors.iter() {
                cursor.log.reader_zipped();
            }
        }
    }

    pub(crate) fn is_gzip(&self) -> bool {
        self.gzip.load(Ordering::Acquire)
    }

    /// Gives it a heartbeat period of its own (before its writer starts).
    pub(crate) fn set_heartbeat(&self, period: Duration) {
        let ms = u32::try_from(period.as_millis()).unwrap_or(u32::MAX).max(1);
        self.heartbeat_ms.store(ms, Ordering::Relaxed);
    }

    /// Its heartbeat period: its own, or the hub's.
    pub(crate) fn heartbeat(&self, hub_period: Duration) -> Duration {
        match self.heartbeat_ms.load(Ordering::Relaxed) {
            0 => hub_period,
            ms => Duration::from_millis(u64::from(ms)),
        }
    }

    /// The first requested reason wins; later requests do not change it. `committed` is the
    /// hub's committed sequence number now: a drain ends there.
    pub(crate) fn request_close(&self, reason: CloseReason, committed: u64) {
        self.drain_until.fetch_min(committed, Ordering::AcqRel);
        let _ = self.close_request.compare_exchange(
            0,
            reason as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        self.wakeup.notify(CLOSING);
    }

    /// The highest sequence number this client may still be sent, given the hub's.
    pub(crate) fn horizon(&self, committed: u64) -> u64 {
        committed.min(self.drain_until.load(Ordering::Acquire))
    }

    pub(crate) fn lock_cursors(&self) -> MutexGuard<'_, Vec<Cursor>> {
        // Cursor updates are single assignments: a panic elsewhere cannot leave them torn.
        self.cursors.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn close_requested(&self) -> Option<CloseReason> {
        CloseReason::from_u8(self.close_request.load(Ordering::Acquire))
    }

    pub(crate) fn advance(&self, from: Phase, to: Phase) -> bool {
        self.phase
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    pub(crate) fn is_pending(&self) -> bool {
        self.phase.load(Ordering::Acquire) == Phase::Pending as u8
    }

    pub(crate) fn add_delivered(&self, bytes: usize, events: u64) {
        // Relaxed: one writer adds, and the departure reads them after the writer ended.
        self.delivered_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
        if events > 0 {
            self.delivered_events.fetch_add(events, Ordering::Relaxed);
        }
    }

    pub(crate) fn delivered(&self) -> Delivered {
        Delivered {
            events: self.delivered_events.load(Ordering::Relaxed),
            bytes: self.delivered_bytes.load(Ordering::Relaxed),
        }
    }

    /// Marks it done; returns the phase it was in.
    pub(crate) fn mark_done(&self) -> Phase {
        Phase::from_u8(self.phase.swap(Phase::Done as u8, Ordering::AcqRel))
    }
}
