//! Hub-wide sequence numbers: every frame, published or sent, gets the next one, so a writer
//! merging a client's logs and mailbox restores the order of the calls. `committed` is the
//! highest number whose frame is fully in its log or mailbox: writers take nothing above it
//! (see `feed`).

use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) struct Sequence {
    next: AtomicU64,
    committed: AtomicU64,
}

impl Sequence {
    pub fn new() -> Self {
        Sequence {
            next: AtomicU64::new(1),
            committed: AtomicU64::new(0),
        }
    }

    pub fn take(&self) -> u64 {
        self.next.fetch_add(1, Ordering::AcqRel)
    }

    /// The frame numbered `seq` is in place. Numbers are committed in the order they were
    /// taken (one publishing thread); a later number covers the earlier ones.
    pub fn commit(&self, seq: u64) {
        self.committed.fetch_max(seq, Ordering::AcqRel);
    }

    pub fn committed(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }
}
