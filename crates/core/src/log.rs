//! An append-only log of encoded frames: one per channel, plus the hub's broadcast log.
//!
//! Publishing encodes once and appends here: O(1) on the publishing thread, whatever the
//! audience. Each subscribed client reads the log through a cursor (an offset into it), so a
//! client that is behind costs a position, not a copy of the frames. What a log keeps is
//! bounded by its window (events and bytes from the head): memory is bounded per log, not per
//! client. A cursor that falls behind the window has lagged out, and the client's overflow
//! policy applies (cut as `slow`, or skip ahead with the skipped events counted).
//!
//! Within the window, a log keeps only what a reader still needs: each entry counts the readers
//! that have not passed it yet, and entries at the front that every reader passed are
//! released, so a busy channel whose readers keep up holds almost nothing.
//!
//! Offsets are the log's own (0, 1, 2, ... as appended); sequence numbers are hub-wide, so a
//! client reading several logs and its mailbox can put frames back in the order of the calls.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
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
    /// Cursors reading this log.
    readers: u32,
}

struct Entry {
    seq: u64,
    frame: Bytes,
    /// `appended_bytes` just after this entry was appended.
    end: u64,
    /// Readers that have not passed this entry yet.
    unread: AtomicU32,
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
                readers: 0,
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
        let unread = AtomicU32::new(state.readers);
        state.entries.push_back(Entry {
            seq,
            frame,
            end,
            unread,
        });
        // Out of the window goes, read or not (its laggards lag out); the newest entry stays.
        while state.entries.len() > 1
            && (state.entries.len() > self.window_events || state.held_bytes > self.window_bytes)
        {
            state.pop_front();
        }
        state.release_read();
        seq
    }

    /// A cursor joins at the head: it reads what is appended from now on. Returns its offset.
    pub fn join(&self) -> u64 {
        let mut state = self.state_mut();
        state.readers += 1;
        state.first + state.entries.len() as u64
    }

    /// The cursor at `from` leaves: the entries it had not passed no longer wait for it.
    pub fn leave(&self, from: u64) {
        let mut state = self.state_mut();
        state.readers = state.readers.saturating_sub(1);
        let start = from.saturating_sub(state.first) as usize;
        for entry in state.entries.iter().skip(start) {
            entry.unread.fetch_sub(1, Ordering::AcqRel);
        }
        state.release_read();
    }

    /// The cursor at `from` passed `count` entries (its batch was written). Entries that no
    /// reader needs any more are released from the front.
    pub fn passed(&self, from: u64, count: u64) {
        let front_released = {
            let state = self.state();
            let start = from.saturating_sub(state.first) as usize;
            // Entries below `first` were trimmed out of the window already.
            let skip = state.first.saturating_sub(from);
            let mut front_released = false;
            for (i, entry) in state
                .entries
                .iter()
                .enumerate()
                .skip(start)
                .take(count.saturating_sub(skip) as usize)
            {
                if entry.unread.fetch_sub(1, Ordering::AcqRel) == 1 && i == 0 {
                    front_released = true;
                }
            }
            front_released
        };
        if front_released {
            self.state_mut().release_read();
        }
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

    /// The offset the next append will get.
    #[cfg(test)]
    pub fn head(&self) -> u64 {
        let state = self.state();
        state.first + state.entries.len() as u64
    }

    /// The offset of the oldest entry kept: a cursor below it has lagged out of the window.
    pub fn first(&self) -> u64 {
        self.state().first
    }

    /// Frames and bytes held.
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

impl LogState {
    fn pop_front(&mut self) {
        if let Some(old) = self.entries.pop_front() {
            self.held_bytes -= old.frame.len();
            self.first += 1;
        }
    }

    /// Releases front entries every reader has passed.
    fn release_read(&mut self) {
        while self
            .entries
            .front()
            .is_some_and(|e| e.unread.load(Ordering::Acquire) == 0)
        {
            self.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log with one reader that never reads, so the window alone decides what is kept.
    fn log(events: usize, bytes: usize) -> ChannelLog {
        let log = ChannelLog::new(None, events, bytes);
        assert_eq!(log.join(), 0);
        log
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

    #[test]
    fn entries_every_reader_passed_are_released() {
        let l = ChannelLog::new(None, 100, 1000);
        // No reader: nothing is kept.
        append(&l, 1, 10);
        assert_eq!(l.held(), (0, 0));
        let a = l.join();
        let b = l.join();
        assert_eq!((a, b), (1, 1));
        for seq in 2..=4 {
            append(&l, seq, 10);
        }
        assert_eq!(l.held(), (3, 30));
        l.passed(a, 2);
        assert_eq!(l.held(), (3, 30), "b has read nothing yet");
        l.passed(b, 1);
        assert_eq!(l.held(), (2, 20));
        // b leaves: what only it was missing goes.
        l.leave(b + 1);
        assert_eq!(l.held(), (1, 10));
        assert_eq!(l.first(), 3);
        l.passed(a + 2, 1);
        assert_eq!(l.held(), (0, 0));
    }
}
