//! What the hub reports to its embedder. The binding forwards every call, in order, through
//! one queue to the JS thread, so a client's last `write` always precedes its `end` or
//! `destroy`, which always precedes its `closed`.

use bytes::Bytes;

use crate::close::CloseReason;

pub trait HubEvents: Send + Sync + 'static {
    /// The client left. Called exactly once per registered client.
    fn closed(&self, id: u64, reason: CloseReason);
    /// Node transport: write these bytes to the client's response, then call
    /// [`crate::Hub::node_writable`] once the response accepts more (at once, or on `'drain'`).
    fn write(&self, id: u64, bytes: Bytes);
    /// Node transport: end the response; everything queued was passed to `write` before.
    fn end(&self, id: u64);
    /// Node transport: destroy the response now (the client is being cut: slow, timeout).
    fn destroy(&self, id: u64);
    /// What was sent to the client alone fell back below half its high-water mark after a send
    /// had reported it above: its producer may go on.
    fn drained(&self, id: u64);
}
