//! Delivery reports for watched events: an embedder that traces a publish (diagnostics
//! subscribers, OpenTelemetry) asks for it with a token, and is told once, per process, when
//! every client that was to get the event has had it written (or left), or that the log let it
//! go first. Unwatched events pay nothing: the entry's watch is `None`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::events::{DeliveryReport, HubEvents};

/// What a watched entry carries (boxed: most entries have none).
pub(crate) struct Watch {
    token: u64,
    /// The log's readers when it was appended: the clients it was for.
    recipients: u32,
    reported: AtomicBool,
    events: Arc<dyn HubEvents>,
}

impl Watch {
    pub fn new(token: u64, events: Arc<dyn HubEvents>) -> Box<Watch> {
        Box::new(Watch {
            token,
            recipients: 0,
            reported: AtomicBool::new(false),
            events,
        })
    }

    /// Set once, as the entry is appended.
    pub fn set_recipients(&mut self, readers: u32) {
        self.recipients = readers;
    }

    /// Reports the delivery, once: `complete` when every reader passed the entry or left,
    /// not when the log dropped it before (a reader lagged out, the channel went).
    pub fn report(&self, appended_at: Instant, complete: bool) {
        if self.reported.swap(true, Ordering::AcqRel) {
            return;
        }
        self.events.delivered(DeliveryReport {
            token: self.token,
            recipients: self.recipients,
            complete,
            elapsed: appended_at.elapsed(),
        });
    }
}
