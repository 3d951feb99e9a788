//! Delivery reports for watched events: an embedder that traces a publish (diagnostics
//! subscribers, OpenTelemetry) asks for it with a token, and is told once, per process, when
//! every client that was to get the event has had it written (or left), or that the log let it
//! go first. An event that came through the backend with a trace context is watched in every
//! process, and reported with that context. Unwatched events pay nothing: the entry's watch is
//! `None`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::events::{DeliveryReport, HubEvents};

/// What asks for an entry's delivery to be reported.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WatchSpec<'a> {
    /// The embedder's token (0: none).
    pub token: u64,
    /// A trace context to report it with (and, through a backend, to every process).
    pub trace: Option<&'a str>,
}

/// What a watched entry carries (boxed: most entries have none).
pub(crate) struct Watch {
    /// The embedder's token (0: none, an event from the backend).
    token: u64,
    /// The trace context the publisher gave, as it gave it.
    trace: Option<Box<str>>,
    /// The log's channel (None: broadcast).
    channel: Option<Arc<str>>,
    /// The log's readers when it was appended: the clients it was for.
    recipients: u32,
    /// When it was appended (the report's elapsed time counts from then).
    appended_at: Instant,
    reported: AtomicBool,
    events: Arc<dyn HubEvents>,
}

impl Watch {
    pub fn new(
        spec: WatchSpec<'_>,
        channel: Option<Arc<str>>,
        events: Arc<dyn HubEvents>,
    ) -> Box<Watch> {
        Box::new(Watch {
            token: spec.token,
            trace: spec.trace.map(Box::from),
            channel,
            recipients: 0,
            appended_at: Instant::now(),
            reported: AtomicBool::new(false),
            events,
        })
    }

    /// Set once, as the entry is appended.
    pub fn appended(&mut self, readers: u32, at: Instant) {
        self.recipients = readers;
        self.appended_at = at;
    }

    /// Reports the delivery, once: `complete` when every reader passed the entry or left,
    /// not when the log dropped it before (a reader lagged out, the channel went).
    pub fn report(&self, complete: bool) {
        if self.reported.swap(true, Ordering::AcqRel) {
            return;
        }
        self.events.delivered(DeliveryReport {
            token: self.token,
            trace: self.trace.clone(),
            channel: self.channel.clone(),
            recipients: self.recipients,
            complete,
            elapsed: self.appended_at.elapsed(),
        });
    }
}
