//! What the hub reports to its embedder. The binding forwards every call, in order, through
//! one queue to the JS thread, so a client's last `write` always precedes its `end` or
//! `destroy`, which always precedes its `closed`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::close::CloseReason;

/// What a client got, counted by its writer as batches were fully written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Event frames (comments, heartbeats and the opening frame are not events).
    pub events: u64,
    /// Body bytes: for the native transport as they went to the socket (HTTP chunk framing
    /// included), for the Node transport as they were handed to the response.
    pub bytes: u64,
}

/// A client's departure, as `HubEvents::closed` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Departure {
    pub reason: CloseReason,
    pub delivered: Delivered,
    /// The channels it was subscribed to when it left.
    pub channels: Vec<Arc<str>>,
}

/// A watched event's delivery in this process (`Hub::publish_watched`), reported once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    /// The embedder's token, given with the publish (0: none: an event from the backend).
    pub token: u64,
    /// The trace context given with the publish (here or in another process).
    pub trace: Option<Box<str>>,
    /// Its channel (None: broadcast).
    pub channel: Option<Arc<str>>,
    /// The clients it was for: the log's readers when it was appended here.
    pub recipients: u32,
    /// Every one of them had it written or left; false when the log let it go first (a client
    /// lagged out under `drop-oldest`, the channel went).
    pub complete: bool,
    /// From its append here to that moment.
    pub elapsed: Duration,
}

pub trait HubEvents: Send + Sync + 'static {
    /// The client left. Called exactly once per registered client.
    fn closed(&self, id: u64, departure: Departure);
    /// Relay (Node and Fetch transports): write these bytes to the client's response. Report
    /// them with [`crate::Hub::relay_acknowledged`] (the bytes taken so far) at least once
    /// [`crate::RELAY_CREDIT_BYTES`]` / 2` are unacknowledged while the response accepts more,
    /// and with [`crate::Hub::relay_refused`] at once when it does not (then acknowledge once
    /// it drains): with the credit used up or a refusal, nothing more is written.
    fn write(&self, id: u64, bytes: Bytes);
    /// Relay: end the response; everything queued was passed to `write` before.
    fn end(&self, id: u64);
    /// Relay: destroy the response now (the client is being cut: slow, timeout).
    fn destroy(&self, id: u64);
    /// What was sent to the client alone fell back below half its high-water mark after a send
    /// had reported it above: its producer may go on.
    fn drained(&self, id: u64);
    /// The shared backend (Redis) went down (`up` false) or is connected again; `detail` says
    /// why or where. Only hubs with a backend report it.
    fn backend(&self, up: bool, detail: &str) {
        let _ = (up, detail);
    }
    /// A signal arrived on the backend's control channel (Redis: `{prefix}:signals`), this
    /// process's own included, in the order each sender sent them (one may come twice when
    /// its sender lost its connection mid-send). `payload` is untrusted text, within the
    /// backend's size bound. Nothing is caught up: a signal sent while this hub's subscription
    /// was lost is never delivered here, and every such gap lies between a
    /// `backend(false, ..)` and the next `backend(true, ..)`. Only hubs with a backend call it.
    fn signal(&self, payload: &str) {
        let _ = payload;
    }
    /// A watched event was delivered here (see `DeliveryReport`). Called from runtime threads
    /// or under a log's lock: it must only queue.
    fn delivered(&self, report: DeliveryReport) {
        let _ = report;
    }
}
