//! Events waiting to be published to Redis, in order, bounded: the publishing thread only
//! queues (O(1), never waits on the network), and the sender task takes them from the front.
//! An event leaves the buffer only once Redis has applied it, so nothing is lost while Redis
//! is away; when the buffer is full, `publish` fails with `BackendUnavailable` instead.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use native_sse_core::backend::{Backend, Outgoing};
use native_sse_core::SseError;
use tokio::sync::Notify;

/// An event with this hub's number for it, which makes a resend idempotent.
#[derive(Debug, Clone)]
pub struct Numbered {
    pub number: u64,
    pub event: Outgoing,
}

pub struct Outbound {
    state: Mutex<State>,
    max_events: usize,
    max_bytes: usize,
    pub(crate) ready: Notify,
    /// Both connections to Redis are up (for the error message only).
    pub(crate) connected: AtomicBool,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Numbered>,
    bytes: usize,
    next_number: u64,
}

impl Outbound {
    pub fn new(max_events: usize, max_bytes: usize) -> Self {
        Outbound {
            state: Mutex::new(State {
                next_number: 1,
                ..State::default()
            }),
            max_events: max_events.max(1),
            max_bytes,
            ready: Notify::new(),
            connected: AtomicBool::new(false),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Copies of up to `max` events from the front, oldest first.
    pub fn front(&self, max: usize, out: &mut Vec<Numbered>) {
        let state = self.state();
        out.extend(state.queue.iter().take(max).cloned());
    }

    /// The `count` oldest events were applied by Redis.
    pub fn remove_front(&self, count: usize) {
        let mut state = self.state();
        for _ in 0..count {
            match state.queue.pop_front() {
                Some(gone) => state.bytes -= gone.event.body.len(),
                None => break,
            }
        }
    }

    /// Events and bytes waiting.
    pub fn pending(&self) -> (usize, usize) {
        let state = self.state();
        (state.queue.len(), state.bytes)
    }
}

impl Backend for Outbound {
    fn publish(&self, event: Outgoing) -> Result<(), SseError> {
        let mut state = self.state();
        let size = event.body.len();
        // One event is always taken into an empty buffer, however large: the hub's own
        // event limit bounds it.
        let full = !state.queue.is_empty()
            && (state.queue.len() >= self.max_events || state.bytes + size > self.max_bytes);
        if full {
            return Err(SseError::BackendUnavailable {
                events: state.queue.len(),
                bytes: state.bytes,
                connected: self.connected.load(Ordering::Acquire),
            });
        }
        let number = state.next_number;
        state.next_number += 1;
        state.bytes += size;
        state.queue.push_back(Numbered { number, event });
        drop(state);
        self.ready.notify_one();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn event(len: usize) -> Outgoing {
        Outgoing {
            channel: None,
            app_id: None,
            body: Bytes::from(vec![b'x'; len]),
            keep_events: None,
            keep_for: None,
            trace: None,
        }
    }

    #[test]
    fn bounded_by_events_and_bytes_and_numbered_in_order() {
        let outbound = Outbound::new(3, 25);
        for _ in 0..2 {
            outbound.publish(event(10)).unwrap();
        }
        let error = outbound.publish(event(10)).unwrap_err();
        assert_eq!(error.code().as_str(), "ERR_SSE_BACKEND_UNAVAILABLE");
        assert_eq!(outbound.pending(), (2, 20));
        outbound.publish(event(5)).unwrap();
        assert!(outbound.publish(event(1)).is_err(), "3 events is the cap");
        let mut front = Vec::new();
        outbound.front(10, &mut front);
        assert_eq!(
            front.iter().map(|n| n.number).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        outbound.remove_front(2);
        assert_eq!(outbound.pending(), (1, 5));
        // Numbers go on from where they were: a rejected publish took none.
        outbound.publish(event(1)).unwrap();
        front.clear();
        outbound.front(10, &mut front);
        assert_eq!(front.iter().map(|n| n.number).collect::<Vec<_>>(), [3, 4]);
        let huge = Outbound::new(3, 25);
        huge.publish(event(100))
            .expect("an empty buffer takes one event of any size");
    }
}
