//! Signals waiting to be published on the namespace's control channel (`Keys::signals`), in
//! order, bounded. A signal is the embedder's text for the other processes of the namespace
//! (an authorization revoked, a presence change): published, never stored, so it reaches the
//! hubs subscribed at that moment, this one included. `push` only queues (O(1), never waits
//! on the network) and the signaler task (`signaler`) takes them from the front, removing a
//! signal once Redis took it; while Redis is away they wait here. Unlike events, which are
//! refused when their buffer is full (an event must not be lost silently), a full buffer of
//! signals drops its oldest, counted: signals are cheap to repeat and the newest say most.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// The largest signal payload, in UTF-8 bytes, sent or received.
pub const MAX_SIGNAL_BYTES: usize = 64 * 1024;
/// What waits for Redis at most: this many signals ...
pub const MAX_BUFFERED_SIGNALS: usize = 1024;
/// ... and this many bytes of payload (16 signals of the largest size).
pub const MAX_BUFFERED_SIGNAL_BYTES: usize = 1 << 20;

/// A payload over `MAX_SIGNAL_BYTES`: not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalTooLarge {
    pub size: usize,
    pub limit: usize,
}

/// A signal with its number in this hub's sequence, by which the signaler removes what Redis
/// took even when older ones were dropped meanwhile.
#[derive(Debug, Clone)]
pub struct Queued {
    pub number: u64,
    pub payload: Arc<str>,
}

pub struct Signals {
    state: Mutex<State>,
    max_signals: usize,
    max_bytes: usize,
    pub(crate) ready: Notify,
    dropped: AtomicU64,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Queued>,
    bytes: usize,
    next_number: u64,
}

impl Signals {
    pub fn new(max_signals: usize, max_bytes: usize) -> Self {
        Signals {
            state: Mutex::new(State::default()),
            max_signals: max_signals.max(1),
            max_bytes: max_bytes.max(MAX_SIGNAL_BYTES),
            ready: Notify::new(),
            dropped: AtomicU64::new(0),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `payload` behind the others; while over the bound, the oldest are dropped.
    pub fn push(&self, payload: &str) -> Result<(), SignalTooLarge> {
        if payload.len() > MAX_SIGNAL_BYTES {
            return Err(SignalTooLarge {
                size: payload.len(),
                limit: MAX_SIGNAL_BYTES,
            });
        }
        let mut state = self.state();
        let mut dropped = 0;
        while !state.queue.is_empty()
            && (state.queue.len() >= self.max_signals
                || state.bytes + payload.len() > self.max_bytes)
        {
            if let Some(gone) = state.queue.pop_front() {
                state.bytes -= gone.payload.len();
                dropped += 1;
            }
        }
        let number = state.next_number;
        state.next_number += 1;
        state.bytes += payload.len();
        state.queue.push_back(Queued {
            number,
            payload: Arc::from(payload),
        });
        drop(state);
        if dropped > 0 {
            self.dropped.fetch_add(dropped, Ordering::Relaxed);
        }
        self.ready.notify_one();
        Ok(())
    }

    /// Copies of up to `max` signals from the front, oldest first.
    pub fn front(&self, max: usize, out: &mut Vec<Queued>) {
        let state = self.state();
        out.extend(state.queue.iter().take(max).cloned());
    }

    /// Redis took every signal up to `number`: those still here leave.
    pub fn remove_through(&self, number: u64) {
        let mut state = self.state();
        while state.queue.front().is_some_and(|s| s.number <= number) {
            if let Some(gone) = state.queue.pop_front() {
                state.bytes -= gone.payload.len();
            }
        }
    }

    /// Signals and payload bytes waiting.
    pub fn pending(&self) -> (usize, usize) {
        let state = self.state();
        (state.queue.len(), state.bytes)
    }

    /// Signals dropped unsent because the buffer was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(signals: &Signals) -> Vec<u64> {
        let mut front = Vec::new();
        signals.front(usize::MAX, &mut front);
        front.iter().map(|s| s.number).collect()
    }

    #[test]
    fn a_full_buffer_drops_its_oldest_counted() {
        let signals = Signals::new(3, 0);
        for payload in ["a", "b", "c", "d", "e"] {
            signals.push(payload).unwrap();
        }
        assert_eq!(numbers(&signals), [2, 3, 4]);
        assert_eq!(signals.dropped(), 2);
        assert_eq!(signals.pending(), (3, 3));
        let mut front = Vec::new();
        signals.front(1, &mut front);
        assert_eq!(&*front[0].payload, "c");
    }

    #[test]
    fn bounded_by_bytes_and_one_payload_by_its_own_limit() {
        let signals = Signals::new(1000, 2 * MAX_SIGNAL_BYTES);
        let largest = "x".repeat(MAX_SIGNAL_BYTES);
        assert_eq!(
            signals.push(&format!("{largest}y")),
            Err(SignalTooLarge {
                size: MAX_SIGNAL_BYTES + 1,
                limit: MAX_SIGNAL_BYTES
            })
        );
        assert_eq!(signals.pending(), (0, 0), "a refused payload takes nothing");
        signals.push("small").unwrap();
        signals.push(&largest).unwrap();
        assert_eq!(signals.dropped(), 0);
        signals.push(&largest).unwrap();
        assert_eq!(numbers(&signals), [1, 2], "the small one made room");
        assert_eq!(signals.dropped(), 1);
        assert_eq!(signals.pending(), (2, 2 * MAX_SIGNAL_BYTES));
    }

    #[test]
    fn removes_what_redis_took_by_number_even_after_drops() {
        let signals = Signals::new(4, 0);
        for payload in ["0", "1", "2", "3"] {
            signals.push(payload).unwrap();
        }
        let mut in_flight = Vec::new();
        signals.front(2, &mut in_flight);
        // While 0 and 1 are on their way, two more push them out.
        signals.push("4").unwrap();
        signals.push("5").unwrap();
        signals.remove_through(in_flight[1].number);
        assert_eq!(numbers(&signals), [2, 3, 4, 5], "nothing unsent removed");
        signals.remove_through(3);
        assert_eq!(numbers(&signals), [4, 5]);
        assert_eq!(signals.pending(), (2, 2));
    }
}
