//! A shared backend (Redis) that numbers and stores events for several hubs: what the hub
//! hands it. What the backend feeds back goes through `remote::HubHandle`.
//!
//! With a backend, `publish` and `broadcast` do not append locally: the hub hands the encoded
//! event to `Backend::publish`, which numbers it where it is stored (the same number in every
//! process), and the backend feeds every hub, the publisher's included, through
//! `HubHandle::apply_remote` in that order. An event's position is the backend's number; the hub
//! still stamps its own sequence number on the entry, which only orders frames within this
//! process (a client's mailbox against its logs). Ids the hub makes are `{epoch}-{position}`
//! with the backend's epoch, so a `Last-Event-ID` from any process resumes here.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::error::SseError;

/// The most an id line the hub prepends can add: `id: ` + 8 hex + `-` + 16 hex + LF.
pub const ID_LINE_MAX: usize = 4 + 8 + 1 + 16 + 1;

/// One event on its way to the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// None: a broadcast.
    pub channel: Option<Arc<str>>,
    /// The id the application gave; None: the hub makes one from the position.
    pub app_id: Option<Box<str>>,
    /// The encoded frame, without the id line the hub makes.
    pub body: Bytes,
    /// How many events of this channel the backend keeps (the history's, when it is on).
    pub keep_events: Option<usize>,
    /// How long the backend keeps them (the history's age bound).
    pub keep_for: Option<Duration>,
    /// A trace context for every process's delivery report (`Hub::publish_watched`).
    pub trace: Option<Box<str>>,
}

/// Takes events to be numbered, stored and fanned out. Called on the publishing thread: it
/// must not block (queue and return).
pub trait Backend: Send + Sync + 'static {
    /// Err(`BackendUnavailable`) when it cannot take more (its buffer is full).
    fn publish(&self, event: Outgoing) -> Result<(), SseError>;
}
