//! An append-only log of encoded frames: one per channel, plus the hub's broadcast log.
//!
//! Publishing encodes once and appends here: O(1) on the publishing thread, whatever the
//! audience. Each subscribed client reads the log through a cursor (an offset into it), so a
//! client that is behind costs a position, not a copy of the frames. What a log keeps is
//! bounded by its window (events and bytes from the head): memory is bounded per log, not per
//! client. A cursor that falls behind the window has lagged out, and the client's overflow
//! policy applies (cut as `slow`, or skip ahead with the skipped events counted).
//!
//! Offsets are the log's own (0, 1, 2, ... as appended); sequence numbers are hub-wide, so a
//! client reading several logs and its mailbox can put frames back in the order of the calls.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;

pub(crate) struct ChannelLog {
    /// The channel's name; None for the broadcast log.
    pub name: Option<Arc<str>>,
    state: RwLock<LogState>,
    window_events: usize,
    window_bytes: usize,
    /// Appended to since the dispatcher last woke the subscribers.
    pub(crate) dirty: AtomicBool,
}

struct LogState {
    entries: VecDeque<Entry>,
    /// Offset of `entries[0]`; the offset of the next append is `first + entries.len()`.
    first: u64,
    /// Bytes of the frames held.
    held_bytes: usize,
    /// Bytes ever appended, up to and including the newest entry.
    appended_bytes: u64,
}

struct Entry {
    seq: u64,
    frame: Bytes,
    /// `appended_bytes` just after this entry was appended.
    end: u64,
}

/// What a cursor at some offset has not been sent yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Lag {
    pub events: u64,
    pub bytes: u64,
    /// Entries the log dropped before the cursor read them.
    pub missed: u64,
}

impl ChannelLog {
    /// `window_bytes` must be at least the largest frame ever appended (the hub's event limit).
    pub fn new(name: Option<Arc<str>>, window_events: usize, window_bytes: usize) -> Self {
        ChannelLog {
            name,
            state: RwLock::new(LogState {
                entries: VecDeque::new(),
                first: 0,
                held_bytes: 0,
                appended_bytes: 0,
            }),
            window_events: window_events.max(1),
            window_bytes,
            dirty: AtomicBool::new(false),
        }
    }

    /// Appends a frame stamped by `next_seq`, which runs under this log's lock so entries stay
    /// in sequence order whoever appends. Returns the sequence number.
    pub fn append(&self, frame: Bytes, next_seq: impl FnOnce() -> u64) -> u64 {
        let mut state = self.state_mut();
        let seq = next_seq();
        state.appended_bytes += frame.len() as u64;
        state.held_bytes += frame.len();
        let end = state.appended_bytes;
        state.entries.push_back(Entry { seq, frame, end });
        // Trims to the window, always keeping the newest entry.
        while state.entries.len() > 1
            && (state.entries.len() > self.window_events || state.held_bytes > self.window_bytes)
        {
            if let Some(old) = state.entries.pop_front() {
                state.held_bytes -= old.frame.len();
                state.first += 1;
            }
        }
        seq
    }

    /// The offset the next append will get: where a cursor joining now starts.
    pub fn head(&self) -> u64 {
        let state = self.state();
        state.first + state.entries.len() as u64
    }

    /// Appends to `out` the entries from offset `from` on whose sequence number is at most
    /// `horizon`, within `max_frames` and `max_bytes` (at least one entry when any is
    /// eligible). Returns how far `from` lagged out of the window (entries it can never read);
    /// reading then starts at the oldest entry kept.
    pub fn read(
        &self,
        from: u64,
        horizon: u64,
        max_frames: usize,
        max_bytes: usize,
        out: &mut Vec<(u64, Bytes)>,
    ) -> u64 {
        let state = self.state();
        let missed = state.first.saturating_sub(from);
        let start = (from.max(state.first) - state.first) as usize;
        let mut bytes = 0;
        for (taken, entry) in state.entries.iter().skip(start).enumerate() {
            if entry.seq > horizon || taken >= max_frames || (taken > 0 && bytes >= max_bytes) {
                break;
            }
            bytes += entry.frame.len();
            out.push((entry.seq, entry.frame.clone()));
        }
        missed
    }

    /// How far a cursor at `from` is behind the head.
    pub fn lag(&self, from: u64) -> Lag {
        let state = self.state();
        let head = state.first + state.entries.len() as u64;
        let missed = state.first.saturating_sub(from);
        let start = from.max(state.first);
        let bytes_before = match start.checked_sub(state.first) {
            Some(0) | None => state
                .entries
                .front()
                .map_or(state.appended_bytes, |e| e.end - e.frame.len() as u64),
            Some(i) => state.entries[i as usize - 1].end,
        };
        Lag {
            events: head.saturating_sub(from),
            bytes: state.appended_bytes - bytes_before.min(state.appended_bytes),
            missed,
        }
    }

    /// The offset of the oldest entry kept: a cursor below it has lagged out of the window.
    pub fn first(&self) -> u64 {
        self.state().first
    }

    /// Frames and bytes held.
    #[cfg(test)]
    pub fn held(&self) -> (usize, usize) {
        let state = self.state();
        (state.entries.len(), state.held_bytes)
    }

    pub fn mark_dirty(&self) -> bool {
        !self.dirty.swap(true, Ordering::AcqRel)
    }

    fn state(&self) -> RwLockReadGuard<'_, LogState> {
        // A panic while holding the lock cannot leave the deque half-updated in a way that
        // breaks its invariants for readers (each push/pop is one step), so poisoning is moot.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn state_mut(&self) -> RwLockWriteGuard<'_, LogState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(events: usize, bytes: usize) -> ChannelLog {
        ChannelLog::new(None, events, bytes)
    }

    fn append(log: &ChannelLog, seq: u64, len: usize) {
        log.append(Bytes::from(vec![b'x'; len]), || seq);
    }

    fn seqs(log: &ChannelLog, from: u64, horizon: u64, max: usize) -> (Vec<u64>, u64) {
        let mut out = Vec::new();
        let missed = log.read(from, horizon, max, usize::MAX, &mut out);
        (out.into_iter().map(|(s, _)| s).collect(), missed)
    }

    #[test]
    fn reads_from_a_cursor_up_to_the_horizon() {
        let l = log(100, 1000);
        for seq in [3, 5, 9] {
            append(&l, seq, 10);
        }
        assert_eq!(l.head(), 3);
        assert_eq!(seqs(&l, 0, u64::MAX, 10), (vec![3, 5, 9], 0));
        assert_eq!(seqs(&l, 1, 8, 10), (vec![5], 0));
        assert_eq!(seqs(&l, 0, u64::MAX, 2), (vec![3, 5], 0));
        assert_eq!(seqs(&l, 3, u64::MAX, 10), (vec![], 0));
    }

    #[test]
    fn the_window_trims_by_events_and_bytes_and_reports_what_a_cursor_missed() {
        let l = log(3, 1000);
        for seq in 1..=5 {
            append(&l, seq, 10);
        }
        assert_eq!(l.held(), (3, 30));
        assert_eq!(l.first(), 2);
        assert_eq!(seqs(&l, 0, u64::MAX, 10), (vec![3, 4, 5], 2));
        let by_bytes = log(100, 25);
        for seq in 1..=5 {
            append(&by_bytes, seq, 10);
        }
        assert_eq!(by_bytes.held(), (2, 20));
        // A frame larger than the window is still kept, alone.
        append(&by_bytes, 6, 40);
        assert_eq!(by_bytes.held(), (1, 40));
    }

    #[test]
    fn lag_counts_events_and_bytes_behind_the_head() {
        let l = log(3, 1000);
        assert_eq!(l.lag(0), Lag::default());
        append(&l, 1, 10);
        append(&l, 2, 20);
        assert_eq!(
            l.lag(0),
            Lag {
                events: 2,
                bytes: 30,
                missed: 0
            }
        );
        assert_eq!(
            l.lag(1),
            Lag {
                events: 1,
                bytes: 20,
                missed: 0
            }
        );
        assert_eq!(
            l.lag(2),
            Lag {
                events: 0,
                bytes: 0,
                missed: 0
            }
        );
        append(&l, 3, 30);
        append(&l, 4, 40);
        // Offset 0 was trimmed: its lag counts what is kept, plus what it missed.
        assert_eq!(
            l.lag(0),
            Lag {
                events: 4,
                bytes: 90,
                missed: 1
            }
        );
    }
}
