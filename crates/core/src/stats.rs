//! Hub-wide counters. Relaxed atomics: they are read for metrics and tests, never to decide.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::close::CloseReason;

#[derive(Default)]
pub struct Stats {
    attached: AtomicU64,
    closed: [AtomicU64; 6],
    bytes_written: AtomicU64,
    heartbeats: AtomicU64,
    events_dropped: AtomicU64,
}

/// A point-in-time copy of the counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub attached: u64,
    pub closed_client: u64,
    pub closed_error: u64,
    pub closed_timeout: u64,
    pub closed_slow: u64,
    pub closed_server: u64,
    pub bytes_written: u64,
    pub heartbeats: u64,
    pub events_dropped: u64,
}

impl Stats {
    pub(crate) fn add_attached(&self) {
        self.attached.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_closed(&self, reason: CloseReason) {
        self.closed[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_written(&self, bytes: usize) {
        if bytes > 0 {
            self.bytes_written
                .fetch_add(bytes as u64, Ordering::Relaxed);
        }
    }

    pub(crate) fn add_heartbeat(&self) {
        self.heartbeats.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_dropped(&self, events: u64) {
        // Called for every batch, almost always with 0: skipping it keeps writers on different
        // threads off this shared cache line.
        if events > 0 {
            self.events_dropped.fetch_add(events, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let closed = |r: CloseReason| self.closed[r as usize].load(Ordering::Relaxed);
        StatsSnapshot {
            attached: self.attached.load(Ordering::Relaxed),
            closed_client: closed(CloseReason::Client),
            closed_error: closed(CloseReason::Error),
            closed_timeout: closed(CloseReason::Timeout),
            closed_slow: closed(CloseReason::Slow),
            closed_server: closed(CloseReason::Server),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
            heartbeats: self.heartbeats.load(Ordering::Relaxed),
            events_dropped: self.events_dropped.load(Ordering::Relaxed),
        }
    }
}
