//! A client's mailbox: the bounded queue of frames sent to that client alone (`send`,
//! `comment`, the opening frame), between the producer (the JS thread) and the client's writer
//! task. Each frame carries its hub-wide sequence number, so the writer can merge the mailbox
//! with the channel logs in the order of the calls.
//!
//! A deque under a mutex: the producer and the client's writer are the only parties, so the
//! lock is rarely contended, and frames the writer took but could not send go back to the
//! front in order. Its buffer is released whenever it empties, so an idle client holds no
//! slots (a channel's preallocated block was most of an idle client's memory).
//!
//! The limits count frames from the moment they are queued until the writer has handed them to
//! the kernel: a frame taken into the writer's batch still occupies memory, so it still counts.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;

use crate::config::OverflowPolicy;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    Queued,
    /// Queued, and the mailbox is now above its high-water mark: the producer should wait for
    /// the drain notification (`release` returns true when it is due).
    QueuedAboveHighWater,
    /// Queued after discarding this many older frames (`DropOldest`).
    QueuedAfterDropping(u64),
    /// Nothing queued: the queue is full and its policy is `Disconnect`.
    Overflow,
}

/// What the mailbox holds: one frame, or several events sent in one call encoded back to back
/// (a producer's batch: one slot, one iovec and one refcount for all of them), with the hub-wide
/// sequence number of the call.
pub struct Sequenced {
    pub seq: u64,
    pub frame: Bytes,
    /// Events in `frame`: 1, or a batch's count. The limits and the writer count events, not
    /// slots.
    pub events: u32,
}

pub struct Mailbox {
    frames: Mutex<VecDeque<Sequenced>>,
    events: AtomicUsize,
    bytes: AtomicUsize,
    dropped: AtomicU64,
    max_events: usize,
    max_bytes: usize,
    policy: OverflowPolicy,
    high_water: usize,
    /// A push reported `QueuedAboveHighWater` and no drain was signalled since.
    drain_wanted: AtomicBool,
}

impl Mailbox {
    pub fn new(
        max_events: usize,
        max_bytes: usize,
        policy: OverflowPolicy,
        high_water: usize,
    ) -> Self {
        Mailbox {
            frames: Mutex::new(VecDeque::new()),
            events: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            max_events,
            max_bytes,
            policy,
            high_water,
            drain_wanted: AtomicBool::new(false),
        }
    }

    /// Queues a frame, applying the overflow policy when a limit would be exceeded.
    pub fn push(&self, seq: u64, frame: Bytes) -> Push {
        self.pusher().push(seq, frame)
    }

    /// The overflow policy: a batch may share one slot only where no single event of it is
    /// ever dropped on its own (`Disconnect`).
    pub fn policy(&self) -> OverflowPolicy {
        self.policy
    }

    /// Holds the mailbox for several pushes in a row (one lock for a producer's batch).
    pub fn pusher(&self) -> Pusher<'_> {
        Pusher {
            queue: self,
            frames: self.lock(),
        }
    }

    /// Takes the oldest queued frame for writing. It stays counted until `release`.
    #[cfg(test)]
    pub fn pop(&self) -> Option<Sequenced> {
        let mut frames = self.lock();
        let entry = frames.pop_front();
        release_if_empty(&mut frames);
        entry
    }

    /// Takes frames numbered at most `horizon` from the front, at most `max`, for writing, in
    /// order; one lock for the lot. They stay counted until `release`.
    pub fn take(&self, horizon: u64, max: usize, mut out: impl FnMut(Sequenced)) {
        let mut frames = self.lock();
        for _ in 0..max {
            match frames.front() {
                Some(entry) if entry.seq <= horizon => {}
                _ => break,
            }
            let Some(entry) = frames.pop_front() else {
                break;
            };
            crate::test_hooks::on_writer_frame(&entry.frame);
            out(entry);
        }
        release_if_empty(&mut frames);
    }

    /// Puts taken frames that were not sent back at the front, keeping their order
    /// (`taken` in the order they were taken).
    pub fn put_back(&self, taken: impl DoubleEndedIterator<Item = Sequenced>) {
        let mut frames = self.lock();
        for entry in taken.rev() {
            frames.push_front(entry);
        }
    }

    /// Called by the writer once popped frames are fully written. Returns true when a
    /// producer waits for the drain and the mailbox fell to half its high-water mark.
    pub fn release(&self, events: usize, bytes: usize) -> bool {
        if events == 0 {
            return false;
        }
        self.uncount(events, bytes);
        self.drain_wanted.load(Ordering::Acquire)
            && self.bytes.load(Ordering::Acquire) <= self.high_water / 2
            && self.drain_wanted.swap(false, Ordering::AcqRel)
    }

    pub fn queued_events(&self) -> usize {
        self.events.load(Ordering::Acquire)
    }

    pub fn queued_bytes(&self) -> usize {
        self.bytes.load(Ordering::Acquire)
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn over_limit(&self) -> bool {
        self.events.load(Ordering::Acquire) > self.max_events
            || self.bytes.load(Ordering::Acquire) > self.max_bytes
    }

    fn uncount(&self, events: usize, bytes: usize) {
        self.events.fetch_sub(events, Ordering::AcqRel);
        self.bytes.fetch_sub(bytes, Ordering::AcqRel);
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Sequenced>> {
        // Each push and pop is one step: a panic elsewhere cannot leave the deque torn.
        self.frames.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct Pusher<'a> {
    queue: &'a Mailbox,
    frames: MutexGuard<'a, VecDeque<Sequenced>>,
}

impl Pusher<'_> {
    /// `Mailbox::push`, under the lock this pusher holds.
    pub fn push(&mut self, seq: u64, frame: Bytes) -> Push {
        self.push_events(seq, frame, 1)
    }

    /// Queues `events` events encoded back to back in `frame` as one slot. Only under
    /// `Disconnect` (see `Mailbox::policy`): `DropOldest` would drop the slot whole.
    pub fn push_events(&mut self, seq: u64, frame: Bytes, events: u32) -> Push {
        let queue = self.queue;
        let len = frame.len();
        let count = events as usize;
        let queued = queue.events.fetch_add(count, Ordering::AcqRel) + count;
        let bytes = queue.bytes.fetch_add(len, Ordering::AcqRel) + len;
        if queued <= queue.max_events && bytes <= queue.max_bytes {
            self.frames.push_back(Sequenced { seq, frame, events });
            if bytes > queue.high_water {
                queue.drain_wanted.store(true, Ordering::Release);
                return Push::QueuedAboveHighWater;
            }
            return Push::Queued;
        }
        match queue.policy {
            OverflowPolicy::Disconnect => {
                queue.uncount(count, len);
                Push::Overflow
            }
            OverflowPolicy::DropOldest => {
                debug_assert_eq!(events, 1, "a batch shares a slot only under Disconnect");
                let mut dropped = 0;
                while queue.over_limit() {
                    match self.frames.pop_front() {
                        Some(old) => {
                            queue.uncount(old.events as usize, old.frame.len());
                            dropped += u64::from(old.events);
                        }
                        None => {
                            // Only frames already in the writer's batch are left; they cannot
                            // be recalled, so the newest frame is the one that gives way.
                            queue.uncount(count, len);
                            queue.dropped.fetch_add(dropped + 1, Ordering::Relaxed);
                            return Push::QueuedAfterDropping(dropped + 1);
                        }
                    }
                }
                self.frames.push_back(Sequenced { seq, frame, events });
                queue.dropped.fetch_add(dropped, Ordering::Relaxed);
                Push::QueuedAfterDropping(dropped)
            }
        }
    }
}

/// An empty mailbox gives its buffer back: after a burst it could be megabytes, and an idle
/// client should hold nothing.
fn release_if_empty(frames: &mut VecDeque<Sequenced>) {
    if frames.is_empty() && frames.capacity() > 0 {
        *frames = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: usize) -> Bytes {
        Bytes::from(vec![b'x'; n])
    }

    #[test]
    fn counts_until_released_not_until_popped() {
        let q = Mailbox::new(10, 100, OverflowPolicy::Disconnect, usize::MAX);
        assert_eq!(q.push(0, frame(10)), Push::Queued);
        let popped = q.pop().unwrap().frame;
        assert_eq!((q.queued_events(), q.queued_bytes()), (1, 10));
        q.release(1, popped.len());
        assert_eq!((q.queued_events(), q.queued_bytes()), (0, 0));
    }

    #[test]
    fn disconnect_policy_reports_overflow_on_event_count() {
        let q = Mailbox::new(2, 1000, OverflowPolicy::Disconnect, usize::MAX);
        assert_eq!(q.push(0, frame(1)), Push::Queued);
        assert_eq!(q.push(0, frame(1)), Push::Queued);
        assert_eq!(q.push(0, frame(1)), Push::Overflow);
        assert_eq!((q.queued_events(), q.queued_bytes()), (2, 2));
    }

    #[test]
    fn a_batch_in_one_slot_counts_as_its_events() {
        let q = Mailbox::new(5, 1000, OverflowPolicy::Disconnect, usize::MAX);
        assert_eq!(q.pusher().push_events(0, frame(30), 3), Push::Queued);
        assert_eq!((q.queued_events(), q.queued_bytes()), (3, 30));
        // Three more would make six events in two slots: over the limit of five.
        assert_eq!(q.pusher().push_events(1, frame(30), 3), Push::Overflow);
        assert_eq!(q.pusher().push_events(1, frame(20), 2), Push::Queued);
        let first = q.pop().unwrap();
        assert_eq!((first.seq, first.events, first.frame.len()), (0, 3, 30));
        assert!(!q.release(first.events as usize, first.frame.len()));
        assert_eq!((q.queued_events(), q.queued_bytes()), (2, 20));
    }

    #[test]
    fn disconnect_policy_reports_overflow_on_bytes() {
        let q = Mailbox::new(100, 25, OverflowPolicy::Disconnect, usize::MAX);
        assert_eq!(q.push(0, frame(20)), Push::Queued);
        assert_eq!(q.push(0, frame(6)), Push::Overflow);
        assert_eq!(q.push(0, frame(5)), Push::Queued);
        assert_eq!(q.queued_bytes(), 25);
    }

    #[test]
    fn drop_oldest_discards_from_the_front_and_counts() {
        let q = Mailbox::new(3, 1000, OverflowPolicy::DropOldest, usize::MAX);
        for n in 1..=5 {
            q.push(0, frame(n));
        }
        assert_eq!(q.dropped(), 2);
        let lens: Vec<usize> = std::iter::from_fn(|| q.pop())
            .map(|mail| mail.frame.len())
            .collect();
        assert_eq!(lens, vec![3, 4, 5]);
    }

    #[test]
    fn drop_oldest_drops_the_new_frame_when_only_in_flight_frames_remain() {
        let q = Mailbox::new(1, 1000, OverflowPolicy::DropOldest, usize::MAX);
        q.push(0, frame(1));
        let _in_flight = q.pop().unwrap();
        assert_eq!(q.push(0, frame(2)), Push::QueuedAfterDropping(1));
        assert!(q.pop().is_none());
        assert_eq!(q.dropped(), 1);
        assert_eq!((q.queued_events(), q.queued_bytes()), (1, 1));
    }

    #[test]
    fn above_the_high_water_mark_a_drain_is_due_at_half_of_it() {
        let q = Mailbox::new(100, 1000, OverflowPolicy::Disconnect, 20);
        assert_eq!(q.push(1, frame(15)), Push::Queued);
        assert_eq!(q.push(2, frame(10)), Push::QueuedAboveHighWater);
        q.pop();
        // 25 -> 10: at half the mark (10), the drain is due, once.
        assert!(q.release(1, 15));
        assert!(!q.release(0, 0));
        q.pop();
        assert!(!q.release(1, 10), "no producer is waiting any more");
    }
}
