//! Hub events to JS through one weak ThreadsafeFunction per hub (docs/ARCHITECTURE.md: one
//! `uv_async_t` for the hub instead of one per connection; weak so pending notifications alone
//! do not keep the process alive). Its queue is FIFO, which carries the core's ordering guarantee (a
//! client's writes, then its end or destroy, then its close) through to JS.
//!
//! Relayed writes (Node and Fetch transports) do not take one call each: writers put their batches in the hub's
//! outbox, and one `flush` call tells JS to take all of them at once (`takeWrites`), so a
//! publish to 1,000 relayed clients costs one JS turn, not 1,000. The flush call is
//! queued while the outbox is locked, so it is always queued before anything the same writer
//! sends afterwards (its end, its close): ordering holds.

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{
    ThreadsafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode,
};
use native_sse_core::{DeliveryReport, Departure, HubEvents};

use crate::reasons::{BackendState, CloseReason};

pub enum HubEvent {
    Closed(u64, Departure),
    Flush,
    End(u64),
    Destroy(u64),
    Drained(u64),
    Backend(bool, String),
    Signal(String),
    Delivered(DeliveryReport),
}

/// What a hub event tells JS, by name on both sides (`HubEventKind.Closed` in JS), so a
/// renumbering here cannot silently change what JS does.
#[napi_derive::napi]
pub enum HubEventKind {
    /// A client left: payload is its reason, then what it got and its channels.
    Closed,
    /// Relayed batches (Node and Fetch transports) wait in the outbox (`takeWrites`).
    Flush,
    /// End the relayed response (or body) of the client.
    End,
    /// Destroy the relayed response (or body) of the client.
    Destroy,
    /// The client's queue went below its high-water mark.
    Drained,
    /// Redis went up or down: payload `up`/`down`, the detail as the one channel.
    Backend,
    /// A signal from a process of the Redis namespace (this one's own included): payload its
    /// text (untrusted: anything that may publish on the channel may have sent it).
    Signal,
    /// A watched publish was delivered here: its token as the id (0: an event from another
    /// process, traced), payload `complete` or `dropped`, its recipients as the events,
    /// microseconds from its append as the bytes, and as the channels its channel ('':
    /// broadcast) and its trace context ('': none).
    Delivered,
}

/// `(kind, clientId, payload, events, bytes, channels)` as JS receives it: the payload is the
/// close reason, Redis's state or a signal's text; the last three only with a close (what the
/// client got, and its subscriptions when it left).
pub type JsArgs = FnArgs<(
    HubEventKind,
    f64,
    Either4<CloseReason, BackendState, String, Null>,
    f64,
    f64,
    Option<Vec<String>>,
)>;

type EventFunction = ThreadsafeFunction<HubEvent, (), JsArgs, Status, false, true>;

/// Relayed batches (Node and Fetch transports) waiting for JS, in the order they were written.
#[derive(Default)]
pub struct Outbox {
    state: Mutex<OutboxState>,
}

#[derive(Default)]
struct OutboxState {
    ids: Vec<f64>,
    chunks: Vec<Bytes>,
    /// A flush call is queued and has not taken the outbox yet.
    flush_queued: bool,
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, OutboxState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Everything written since the last take; the next write queues a new flush.
    pub fn take(&self) -> (Vec<f64>, Vec<Bytes>) {
        let mut state = self.lock();
        state.flush_queued = false;
        (
            std::mem::take(&mut state.ids),
            std::mem::take(&mut state.chunks),
        )
    }
}

pub struct JsEvents {
    function: EventFunction,
    outbox: Arc<Outbox>,
}

impl JsEvents {
    pub fn new(callback: &Function<'_, JsArgs, ()>, outbox: Arc<Outbox>) -> Result<Self> {
        let function = callback
            .build_threadsafe_function::<HubEvent>()
            .weak::<true>()
            .callee_handled::<false>()
            .build_callback(|ctx: ThreadsafeCallContext<HubEvent>| {
                let (kind, id) = match ctx.value {
                    HubEvent::Closed(id, departure) => {
                        let channels = departure.channels.iter().map(|c| c.to_string()).collect();
                        return Ok(FnArgs::from((
                            HubEventKind::Closed,
                            id as f64,
                            Either4::A(CloseReason::from(departure.reason)),
                            departure.delivered.events as f64,
                            departure.delivered.bytes as f64,
                            Some(channels),
                        )));
                    }
                    HubEvent::Flush => (HubEventKind::Flush, 0),
                    HubEvent::End(id) => (HubEventKind::End, id),
                    HubEvent::Destroy(id) => (HubEventKind::Destroy, id),
                    HubEvent::Drained(id) => (HubEventKind::Drained, id),
                    HubEvent::Signal(payload) => {
                        return Ok(FnArgs::from((
                            HubEventKind::Signal,
                            0.0,
                            Either4::C(payload),
                            0.0,
                            0.0,
                            None,
                        )));
                    }
                    HubEvent::Delivered(report) => {
                        let outcome = if report.complete {
                            "complete"
                        } else {
                            "dropped"
                        };
                        // The channel ('' for broadcast: no channel has an empty name) and the
                        // trace context ('' for none).
                        let names = vec![
                            report.channel.as_deref().unwrap_or("").to_string(),
                            report.trace.as_deref().unwrap_or("").to_string(),
                        ];
                        return Ok(FnArgs::from((
                            HubEventKind::Delivered,
                            report.token as f64,
                            Either4::C(outcome.to_string()),
                            f64::from(report.recipients),
                            report.elapsed.as_micros() as f64,
                            Some(names),
                        )));
                    }
                    HubEvent::Backend(up, detail) => {
                        return Ok(FnArgs::from((
                            HubEventKind::Backend,
                            0.0,
                            Either4::B(if up {
                                BackendState::Up
                            } else {
                                BackendState::Down
                            }),
                            0.0,
                            0.0,
                            Some(vec![detail]),
                        )));
                    }
                };
                Ok(FnArgs::from((
                    kind,
                    id as f64,
                    Either4::D(Null),
                    0.0,
                    0.0,
                    None,
                )))
            })?;
        Ok(JsEvents { function, outbox })
    }

    fn send(&self, event: HubEvent) {
        // NonBlocking: called from runtime threads that must never wait on the JS thread. The
        // queue is unbounded, so this fails only while the function is being released
        // (environment teardown), when nobody is left to tell.
        let _ = self
            .function
            .call(event, ThreadsafeFunctionCallMode::NonBlocking);
    }
}

impl HubEvents for JsEvents {
    fn closed(&self, id: u64, departure: Departure) {
        self.send(HubEvent::Closed(id, departure));
    }

    fn write(&self, id: u64, bytes: Bytes) {
        let mut state = self.outbox.lock();
        state.ids.push(id as f64);
        state.chunks.push(bytes);
        if !state.flush_queued {
            state.flush_queued = true;
            // Under the lock: see the module comment.
            self.send(HubEvent::Flush);
        }
    }

    fn end(&self, id: u64) {
        self.send(HubEvent::End(id));
    }

    fn destroy(&self, id: u64) {
        self.send(HubEvent::Destroy(id));
    }

    fn drained(&self, id: u64) {
        self.send(HubEvent::Drained(id));
    }

    fn backend(&self, up: bool, detail: &str) {
        self.send(HubEvent::Backend(up, detail.to_string()));
    }

    fn signal(&self, payload: &str) {
        self.send(HubEvent::Signal(payload.to_string()));
    }

    fn delivered(&self, report: DeliveryReport) {
        self.send(HubEvent::Delivered(report));
    }
}
