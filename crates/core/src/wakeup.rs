//! How a client's writer is woken: a few bits saying why, and the waker of the writer's task.
//!
//! Three `tokio::sync::Notify`s did this before, and each wait kept a `Notified` future in
//! every connection's task; with ten thousand idle clients those bytes add up, while a writer
//! needs no queue of waiters: there is exactly one. Bits set while the writer runs stay set
//! (like a `Notify` permit), so nothing is missed between two waits.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use std::task::Waker;

/// New frames in the mailbox or a log the client reads, a subscription changed.
pub(crate) const DATA: u8 = 1;
/// A close was requested. Separate from `DATA` so a writer blocked on a full socket is not
/// woken by every new frame, only by the request that ends it.
pub(crate) const CLOSING: u8 = 2;
/// Node transport: JS wrote the last batch and the response accepts more.
pub(crate) const WRITABLE: u8 = 4;

#[derive(Default)]
pub(crate) struct Wakeup {
    bits: AtomicU8,
    waker: Mutex<Option<Waker>>,
}

impl Wakeup {
    /// Sets `bits` and wakes the writer if it waits.
    pub fn notify(&self, bits: u8) {
        self.bits.fetch_or(bits, Ordering::AcqRel);
        // Taken, not cloned: the writer registers again each time it waits.
        let waker = self.slot().take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Called by the writer before it looks at the bits, so a `notify` after the look wakes it.
    pub fn register(&self, waker: &Waker) {
        let mut slot = self.slot();
        match &*slot {
            Some(current) if current.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }

    /// Clears `bit`; true if it was set.
    pub fn take(&self, bit: u8) -> bool {
        self.bits.fetch_and(!bit, Ordering::AcqRel) & bit != 0
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Waker>> {
        // Only a waker is stored; a panic elsewhere cannot leave it inconsistent.
        self.waker.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::task::Wake;

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
}
