//! State shared between a client's producers and its writer task.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

use crate::close::CloseReason;
use crate::queue::ClientQueue;

/// Where a client is in its life. `Pending` clients are registered (they can be sent to) but
/// their socket is not yet adopted: JS waits for Node to flush the response head first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Phase {
    Pending = 0,
    Running = 1,
    Done = 2,
}

pub struct ClientShared {
    pub id: u64,
    /// Channels the client subscribed to at attach; fixed for its lifetime.
    pub channels: Box<[Arc<str>]>,
    pub queue: ClientQueue,
    /// Data was queued (or a close was requested) while the writer may be idle.
    pub(crate) wake: Notify,
    /// A close was requested. Separate from `wake` so a writer blocked on a full socket is not
    /// woken by every new frame, only by the request that ends it.
    pub(crate) closing: Notify,
    /// Node transport: JS has written the last batch and the response accepts more.
    pub(crate) writable: Notify,
    close_request: AtomicU8,
    phase: AtomicU8,
}

impl ClientShared {
    pub(crate) fn new(id: u64, queue: ClientQueue, channels: Box<[Arc<str>]>) -> Self {
        ClientShared {
            id,
            channels,
            queue,
            wake: Notify::new(),
            closing: Notify::new(),
            writable: Notify::new(),
            close_request: AtomicU8::new(0),
            phase: AtomicU8::new(Phase::Pending as u8),
        }
    }

    /// The first requested reason wins; later requests do not change it.
    pub(crate) fn request_close(&self, reason: CloseReason) {
        let _ = self.close_request.compare_exchange(
            0,
            reason as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        self.closing.notify_one();
        self.wake.notify_one();
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

    pub(crate) fn mark_done(&self) {
        self.phase.store(Phase::Done as u8, Ordering::Release);
    }
}
