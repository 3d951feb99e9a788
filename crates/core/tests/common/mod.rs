//! What the core's integration tests share.

use native_sse_core::{Departure, HubEvents};

/// Hub events nobody listens to: for tests that look at the hub, not at what it reports.
pub struct Quiet;

impl HubEvents for Quiet {
    fn closed(&self, _: u64, _: Departure) {}
    fn write(&self, _: u64, _: bytes::Bytes) {}
    fn end(&self, _: u64) {}
    fn destroy(&self, _: u64) {}
    fn drained(&self, _: u64) {}
}
