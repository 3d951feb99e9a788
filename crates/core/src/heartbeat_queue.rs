//! When the parked (idle) writers' heartbeats are due: one entry per parked client, earliest
//! first. A running writer keeps its own timer; a parked one has no task to keep it, so the
//! hub's heartbeat task (`heartbeats`) sleeps until the earliest entry here instead.
//!
//! An entry may be older than its client's last write (it wrote and parked again since): it is
//! then queued again for the later time, never fired early. Keeping at most one entry per
//! client (see `Wakeup::park`) bounds the queue by the number of clients, however often busy
//! clients park between events.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Mutex;

use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Default)]
pub(crate) struct HeartbeatQueue {
    entries: Mutex<BinaryHeap<Reverse<(Instant, u64)>>>,
    /// An entry came in earlier than any before it: the heartbeat task sleeps too long.
    pub(crate) earlier: Notify,
}

impl HeartbeatQueue {
    /// Client `id`'s heartbeat is due `at`.
    pub fn push(&self, at: Instant, id: u64) {
        let earliest = {
            let mut entries = self.entries();
            let earliest = entries.peek().is_none_or(|Reverse((next, _))| at < *next);
            entries.push(Reverse((at, id)));
            earliest
        };
        if earliest {
            self.earlier.notify_one();
        }
    }

    /// When the earliest entry is due.
    pub fn next(&self) -> Option<Instant> {
        self.entries().peek().map(|Reverse((at, _))| *at)
    }

    /// Moves up to `max` entries due by `now` into `due` (ids).
    pub fn take_due(&self, now: Instant, max: usize, due: &mut Vec<u64>) {
        let mut entries = self.entries();
        while due.len() < max {
            match entries.peek() {
                Some(Reverse((at, _))) if *at <= now => {}
                _ => break,
            }
            if let Some(Reverse((_, id))) = entries.pop() {
                due.push(id);
            }
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, BinaryHeap<Reverse<(Instant, u64)>>> {
        // Plain data; a panic elsewhere cannot leave it inconsistent.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}
