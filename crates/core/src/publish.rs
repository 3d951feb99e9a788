//! Publishing: `broadcast` and `publish` encode once and append to one log (the broadcast log,
//! or the channel's): O(1) on the publishing thread whatever the audience; the dispatcher
//! wakes the readers. With a shared backend (Redis) the encoded event goes there instead, and
//! comes back through `remote::HubHandle::apply_remote` numbered.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::{Backend, Outgoing, ID_LINE_MAX};
use crate::delivery_watch::WatchSpec;
use crate::error::SseError;
use crate::events::DeliveryReport;
use crate::frame::{Message, Valid};
use crate::hub::Hub;
use crate::state::NewEntry;
use crate::stats::Audience;

impl Hub {
    /// Encodes once and queues the same frame for every client. Returns how many clients it
    /// was queued for.
    pub fn broadcast(&self, message: &Message<'_>) -> Result<usize, SseError> {
        self.publish_to(None, message, None)
    }

    /// Encodes once and appends the frame to `channel`'s log, for its subscribers.
    pub fn publish(&self, channel: &str, message: &Message<'_>) -> Result<usize, SseError> {
        self.publish_to(Some(channel), message, None)
    }

    /// `publish` (`channel` None: `broadcast`) whose delivery here is reported once through
    /// `HubEvents::delivered` with `token` and `trace` (unless it returns an error): when
    /// every client it was for had it written or left. At once when there is nobody to deliver
    /// to (no reader, a closed hub). With a backend, `trace` goes with the event: every
    /// process, this one included, reports its delivery with it (token 0); a `token` is then
    /// reported at once, not `complete`. Token 0: none.
    pub fn publish_watched(
        &self,
        channel: Option<&str>,
        message: &Message<'_>,
        token: u64,
        trace: Option<&str>,
    ) -> Result<usize, SseError> {
        self.publish_to(channel, message, Some(WatchSpec { token, trace }))
    }

    /// The report of a watched publish that appended nothing here.
    fn report_unappended(&self, watch: Option<WatchSpec<'_>>, recipients: usize, complete: bool) {
        if let Some(WatchSpec { token, trace }) = watch.filter(|w| w.token != 0) {
            self.inner.events.delivered(DeliveryReport {
                token,
                trace: trace.map(Box::from),
                channel: None,
                recipients: recipients as u32,
                complete,
                elapsed: Duration::ZERO,
            });
        }
    }

    pub fn broadcast_comment(&self, text: &str) -> Result<usize, SseError> {
        crate::test_hooks::on_hub_comment(text);
        let frame = self.encode_comment(text)?;
        if self.inner.closed.load(Ordering::Acquire) {
            return Ok(0);
        }
        let (log, readers) = self.inner.target(None);
        let seq = self.inner.sequence.take();
        self.inner
            .append_entry(log, NewEntry::local(seq, frame, None, None));
        Ok(readers)
    }

    /// Appends `message` to the broadcast log or `channel`'s, with an id the hub makes when
    /// that log keeps history and the message has none; returns the log's readers. O(1) here:
    /// the writers are woken by the dispatcher.
    fn publish_to(
        &self,
        channel: Option<&str>,
        message: &Message<'_>,
        watch: Option<WatchSpec<'_>>,
    ) -> Result<usize, SseError> {
        // Checked once, here: a bad message fails whether anyone reads the target or not.
        let message = message.validate()?;
        if self.inner.closed.load(Ordering::Acquire) {
            self.report_unappended(watch, 0, true);
            return Ok(0);
        }
        if let Some(backend) = self.inner.backend.get() {
            let trace = watch.and_then(|w| w.trace);
            let readers = self.publish_through(backend.as_ref(), channel, &message, trace)?;
            self.report_unappended(watch, readers, false);
            return Ok(readers);
        }
        let audience = Audience::of(channel);
        let Some((log, readers)) = self.inner.log_of(channel) else {
            // Nobody reads it, but a call that would fail with readers fails here too (encoded
            // only when the cheap bound leaves the size in doubt), and an accepted event counts
            // as published.
            if message.message().encoded_len_bound() > self.inner.config.max_event_bytes {
                self.encode_valid(&message)?;
            }
            self.inner.stats.add_published(audience, 1);
            self.report_unappended(watch, 0, true);
            return Ok(0);
        };
        let seq = self.inner.sequence.take();
        let hub_id;
        let mut stamped = message;
        // Only events get ids: a retry-only block has no data and dispatches nothing.
        let fields = message.message();
        if log.has_history() && fields.id.is_none() && fields.data.is_some() {
            hub_id = self.inner.epoch.event_id(seq);
            stamped = message.with_hub_id(&hub_id);
        }
        let frame = match self.encode_valid(&stamped) {
            Ok(frame) => frame,
            Err(error) => {
                // The number is spent; committing it keeps the horizon moving.
                self.inner.sequence.commit(seq);
                return Err(error);
            }
        };
        self.inner
            .append_entry(log, NewEntry::local(seq, frame, fields.id, watch));
        self.inner.stats.add_published(audience, 1);
        Ok(readers)
    }

    /// `publish_to` with a backend: encoded here (so a bad message throws here, and nothing is
    /// sent), numbered and fanned out by the backend, appended when it comes back. Returns the
    /// readers the target has here now. Counted as published when applied.
    fn publish_through(
        &self,
        backend: &dyn Backend,
        channel: Option<&str>,
        message: &Valid<'_>,
        trace: Option<&str>,
    ) -> Result<usize, SseError> {
        let frame = message.encode();
        let message = message.message();
        let id_line = if message.id.is_none() { ID_LINE_MAX } else { 0 };
        self.check_size(frame.len() + id_line)?;
        let (history, readers) = {
            let registry = self.inner.read_registry();
            match channel {
                Some(name) => (
                    registry.history_of(name, &self.inner.config),
                    registry
                        .channels
                        .get(name)
                        .map_or(0, |c| c.subscribers.len()),
                ),
                None => (self.inner.config.history, registry.clients.len()),
            }
        };
        backend.publish(Outgoing {
            channel: channel.map(Arc::from),
            app_id: message.id.map(Box::from),
            body: frame,
            keep_events: history.is_on().then_some(history.max_events),
            keep_for: history.max_age.filter(|_| history.is_on()),
            trace: trace.map(Box::from),
        })?;
        Ok(readers)
    }
}
