//! How a client's writer is woken: a few bits saying why, and either the waker of the writer's
//! task or, while the client is idle, the parked writer itself.
//!
//! Three `tokio::sync::Notify`s did this before, and each wait kept a `Notified` future in
//! every connection's task; with ten thousand idle clients those bytes add up, while a writer
//! needs no queue of waiters: there is exactly one. Bits set while the writer runs stay set
//! (like a `Notify` permit), so nothing is missed between two waits.
//!
//! An idle native writer goes further: it ends its task and leaves its state here (`park`), so
//! an idle client costs no task at all (the task was about two thirds of an idle client's
//! heap). Whatever would have woken the task resumes it as a new one instead.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use std::task::Waker;

use tokio::time::Instant;

/// New frames in the mailbox or a log the client reads, a subscription changed.
pub(crate) const DATA: u8 = 1;
/// A close was requested. Separate from `DATA` so a writer blocked on a full socket is not
/// woken by every new frame, only by the request that ends it.
pub(crate) const CLOSING: u8 = 2;
/// Relay: JS wrote the last batch and the response accepts more.
pub(crate) const WRITABLE: u8 = 4;

/// A writer that ended its task while idle, waiting here to be started again.
pub(crate) trait Resumable: Send {
    /// When it last wrote: its heartbeat is due one period later.
    fn last_write(&self) -> Instant;
    /// Starts the writer again as a new task.
    fn resume(self: Box<Self>);
}

enum Slot {
    Empty,
    /// A running writer's task, waiting.
    Waiting(Waker),
    Parked(Box<dyn Resumable>),
}

struct Waiter {
    slot: Slot,
    /// The heartbeat queue holds an entry for this client (at most one: see `heartbeats`).
    heartbeat_queued: bool,
}

pub(crate) struct Wakeup {
    bits: AtomicU8,
    waiter: Mutex<Waiter>,
}

impl Default for Wakeup {
    fn default() -> Self {
        Wakeup {
            bits: AtomicU8::new(0),
            waiter: Mutex::new(Waiter {
                slot: Slot::Empty,
                heartbeat_queued: false,
            }),
        }
    }
}

/// What the heartbeat queue's entry for a client came to.
pub(crate) enum HeartbeatDue {
    /// Parked, and its heartbeat is due: start it (it writes the heartbeat at once).
    Resume(Box<dyn Resumable>),
    /// Parked, but it wrote since the entry was queued: queue it again for then.
    Later(Instant),
    /// Running: it queues an entry again when it parks.
    Running,
}

impl Wakeup {
    /// Sets `bits` and wakes the writer if it waits, or resumes it if it is parked.
    pub fn notify(&self, bits: u8) {
        // Set before the slot is looked at: a writer parking looks at the bits under the same
        // lock, so either it sees them and stays, or this finds it parked.
        self.bits.fetch_or(bits, Ordering::AcqRel);
        // Taken, not cloned: the writer registers again each time it waits.
        let slot = std::mem::replace(&mut self.waiter().slot, Slot::Empty);
        match slot {
            Slot::Empty => {}
            Slot::Waiting(waker) => waker.wake(),
            Slot::Parked(writer) => writer.resume(),
        }
    }

    /// Called by the writer before it looks at the bits, so a `notify` after the look wakes it.
    pub fn register(&self, waker: &Waker) {
        let mut waiter = self.waiter();
        match &waiter.slot {
            Slot::Waiting(current) if current.will_wake(waker) => {}
            _ => waiter.slot = Slot::Waiting(waker.clone()),
        }
    }

    /// Clears `bit`; true if it was set.
    pub fn take(&self, bit: u8) -> bool {
        self.bits.fetch_and(!bit, Ordering::AcqRel) & bit != 0
    }

    /// Leaves an idle writer here, unless a reason to run came first (then it is handed back).
    /// `queue_heartbeat` is called with the writer's last write when the heartbeat queue has
    /// no entry for this client yet, under this client's lock (so at most one is queued).
    pub fn park<W: Resumable + 'static>(
        &self,
        writer: Box<W>,
        queue_heartbeat: impl FnOnce(Instant),
    ) -> Result<(), Box<W>> {
        let mut waiter = self.waiter();
        if self.bits.load(Ordering::Acquire) & (DATA | CLOSING) != 0 {
            return Err(writer);
        }
        if !waiter.heartbeat_queued {
            waiter.heartbeat_queued = true;
            queue_heartbeat(writer.last_write());
        }
        waiter.slot = Slot::Parked(writer);
        Ok(())
    }

    /// The heartbeat queue's entry for this client came up at `now`.
    pub fn heartbeat_due(&self, now: Instant, period: std::time::Duration) -> HeartbeatDue {
        let mut waiter = self.waiter();
        match std::mem::replace(&mut waiter.slot, Slot::Empty) {
            Slot::Parked(writer) => {
                let due = writer.last_write() + period;
                if due > now {
                    waiter.slot = Slot::Parked(writer);
                    return HeartbeatDue::Later(due);
                }
                waiter.heartbeat_queued = false;
                HeartbeatDue::Resume(writer)
            }
            other => {
                waiter.slot = other;
                waiter.heartbeat_queued = false;
                HeartbeatDue::Running
            }
        }
    }

    #[cfg(test)]
    pub fn is_parked(&self) -> bool {
        matches!(self.waiter().slot, Slot::Parked(_))
    }

    fn waiter(&self) -> std::sync::MutexGuard<'_, Waiter> {
        // Only a waker or a parked writer is stored; a panic elsewhere cannot leave it
        // inconsistent.
        self.waiter.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::task::Wake;
    use std::time::Duration;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_bit_set_before_the_wait_is_kept_and_a_registered_waker_is_woken_once() {
        let wakeup = Wakeup::default();
        wakeup.notify(DATA);
        assert!(wakeup.take(DATA), "a permit, as with Notify");
        assert!(!wakeup.take(DATA));
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        wakeup.register(&waker);
        wakeup.notify(WRITABLE);
        wakeup.notify(CLOSING);
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "woken once until it registers again"
        );
        assert!(wakeup.take(WRITABLE) && wakeup.take(CLOSING) && !wakeup.take(DATA));
    }

    /// A parked writer that counts its resumptions.
    struct Idle {
        since: Instant,
        resumed: Arc<AtomicUsize>,
    }

    impl Resumable for Idle {
        fn last_write(&self) -> Instant {
            self.since
        }
        fn resume(self: Box<Self>) {
            self.resumed.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn idle(since: Instant) -> (Box<Idle>, Arc<AtomicUsize>) {
        let resumed = Arc::new(AtomicUsize::new(0));
        let writer = Box::new(Idle {
            since,
            resumed: resumed.clone(),
        });
        (writer, resumed)
    }

    #[test]
    fn a_wakeup_before_parking_keeps_the_writer_running_and_one_after_resumes_it() {
        let wakeup = Wakeup::default();
        let now = Instant::now();
        wakeup.notify(DATA);
        let (writer, resumed) = idle(now);
        let refused = wakeup.park(writer, |_| {});
        assert!(refused.is_err(), "DATA came first: it must run again");
        assert!(wakeup.take(DATA));
        let (writer, resumed_later) = idle(now);
        let mut queued = Vec::new();
        assert!(wakeup.park(writer, |at| queued.push(at)).is_ok());
        assert!(wakeup.is_parked());
        assert_eq!(queued, [now], "its first park queues its heartbeat");
        wakeup.notify(CLOSING);
        assert_eq!(resumed_later.load(Ordering::SeqCst), 1);
        assert!(!wakeup.is_parked());
        assert_eq!(resumed.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn its_heartbeat_entry_resumes_it_only_once_due_and_stays_single() {
        let period = Duration::from_secs(15);
        let wakeup = Wakeup::default();
        let start = Instant::now();
        let (writer, resumed) = idle(start);
        let mut queued = 0;
        assert!(wakeup.park(writer, |_| queued += 1).is_ok());
        match wakeup.heartbeat_due(start + period / 2, period) {
            HeartbeatDue::Later(at) => assert_eq!(at, start + period),
            _ => panic!("not due yet: queued again for when it is"),
        }
        // Resumed by data and parked again: its entry is still queued, so none is added.
        wakeup.notify(DATA);
        wakeup.take(DATA);
        let (writer, _) = idle(start + period / 3);
        assert!(wakeup.park(writer, |_| queued += 1).is_ok());
        assert_eq!(queued, 1, "at most one entry per client");
        match wakeup.heartbeat_due(start + period + period / 3, period) {
            HeartbeatDue::Resume(writer) => writer.resume(),
            _ => panic!("due: resumed"),
        }
        assert_eq!(resumed.load(Ordering::SeqCst), 1);
        assert!(matches!(
            wakeup.heartbeat_due(start + period * 2, period),
            HeartbeatDue::Running
        ));
    }
}
