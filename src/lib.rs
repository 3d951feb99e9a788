//! The `#[napi]` surface of native-sse: the hub handle JS holds (`NativeHub`) and its calls.
//! Options are converted in `options`, reports in `reports`, message arguments in `messages`,
//! errors in `code`, events back to JS in `events`. No protocol logic lives here; see
//! `crates/core`.
//!
//! Argument types are checked in `lib/options.js`, which knows the JS-side names and defaults;
//! this layer re-checks what could corrupt memory or the wire (ranges, fields) and reports each
//! failure with a stable `ERR_SSE_*` code in `err.code`.

#![deny(clippy::all)]

use std::collections::HashMap;
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use native_sse_core::stats::Stats;
use native_sse_core::{
    ChannelCompression, ErrorCode, Hub, HubConfig, Metrics, Refusal, SocketFd, SseError,
    StagedClose,
};

mod code;
mod events;
mod messages;
mod options;
mod reasons;
mod reports;
mod test_hooks;
mod uv;

use code::{sse_error, Code, Raise};
use events::{JsEvents, Outbox};
use messages::{
    client_id, data_text, delivery, retry_value, send_many, send_texts, sent, DeliveryCode,
    MessageArgs, Sent,
};
use native_sse_redis::{Bridge, RedisConfig};
use options::{
    history, millis, whole_number, NativeChannelCompression, NativeHubOptions,
    NativeStandingChannel, NativeWatch,
};

pub use code::error_codes;
pub use options::defaults;
use reports::{HubMetrics, HubStats};

/// Bytes a Fetch body may have been handed and not have had acknowledged: its sink
/// acknowledges once half of it is used (relay-credit.js).
#[napi]
pub const RELAY_CREDIT_BYTES: u32 = native_sse_core::RELAY_CREDIT_BYTES as u32;

/// A registered client: its id, and what its `Last-Event-ID` resumed to; or why it was refused.
#[napi(object, object_from_js = false)]
pub struct NativeRegistration {
    /// 0 when refused.
    pub id: f64,
    /// Why the client was not registered; absent when it was.
    pub refused: Option<reasons::Refusal>,
    pub resume: reasons::Resume,
    /// With `'reset'`: why (`'unknown'`, `'foreign'`, `'expired'` or `'ambiguous'`).
    pub reset_reason: Option<reasons::ResetReason>,
}

#[napi]
pub struct NativeHub {
    hub: Option<Hub>,
    outbox: std::sync::Arc<Outbox>,
    /// The hub's counters, kept past its shutdown so metrics still read after close.
    stats: std::sync::Arc<Stats>,
    worker_threads: u64,
    /// The Redis bridge, when the hub has one.
    bridge: Option<std::sync::Arc<Bridge>>,
}

/// Relayed batches taken from the outbox: `chunks[which[i]]` goes to client `ids[i]`.
/// A frame broadcast to many clients is one Buffer, written to each of them.
#[napi(object)]
pub struct NodeWrites {
    pub ids: Float64Array,
    pub chunks: Vec<Buffer>,
    pub which: Uint32Array,
}

#[napi]
impl NativeHub {
    /// `onEvent(kind, clientId, payload, events, bytes, channels)` receives a `HubEventKind`:
    /// closed (payload the reason; events and bytes what the client got, channels its
    /// subscriptions), flush (take the relayed writes with `takeWrites()`), end, destroy,
    /// drained, backend (payload `up`/`down`, the detail as the one channel). See `src/events.rs`.
    #[napi(
        constructor,
        catch_unwind,
        ts_args_type = "options: NativeHubOptions, onEvent: (kind: HubEventKind, clientId: number, payload: string | null, events: number, bytes: number, channels: string[] | null) => void"
    )]
    pub fn new(
        options: NativeHubOptions,
        on_event: Function<'_, events::JsArgs, ()>,
    ) -> Result<Self, Code> {
        let redis = options.redis.map(RedisConfig::try_from).transpose()?;
        let config = HubConfig::try_from(NativeHubOptions {
            redis: None,
            ..options
        })?;
        let worker_threads = config.worker_threads as u64;
        let outbox = std::sync::Arc::new(Outbox::default());
        let events = JsEvents::new(&on_event, outbox.clone())
            .map_err(|e| ErrorCode::Internal.error(e.reason))?;
        let hub = Hub::new(config, Box::new(events))
            .map_err(|e| ErrorCode::Internal.error(format!("cannot start the runtime: {e}")))?;
        let bridge = redis
            .map(|redis| Bridge::start(&hub, redis).map_err(|e| ErrorCode::InvalidOption.error(e)))
            .transpose()?;
        Ok(NativeHub {
            stats: hub.stats_handle(),
            hub: Some(hub),
            outbox,
            worker_threads,
            bridge,
        })
    }

    /// Events and signals still waiting for Redis (0 without it).
    #[napi(catch_unwind)]
    pub fn redis_pending(&self) -> f64 {
        self.bridge.as_ref().map_or(0.0, |b| b.pending() as f64)
    }

    /// Publishes `payload` to every process of the Redis namespace, this one included: each
    /// hub's `onEvent` gets a `Signal` event with it as payload, in the order this hub sent
    /// them, if its subscription is up then (a `backend` down says signals may be missed until
    /// the next up). Queues and returns at once; while Redis is away the signals wait, the
    /// oldest dropped past 1,024 signals or 1 MiB (`metrics().redis.signals.dropped`). False
    /// without Redis: nothing is sent. A payload over 64 KiB of UTF-8 throws
    /// `ERR_SSE_EVENT_TOO_LARGE`.
    #[napi(catch_unwind)]
    pub fn send_signal(&self, payload: String) -> Result<bool, Code> {
        let too_large = |size: usize, limit: usize| {
            ErrorCode::EventTooLarge.error(format!(
                "the signal is {size} bytes of UTF-8, more than {limit}; send what identifies \
                 the change, not its data"
            ))
        };
        self.hub()?;
        // Checked with or without Redis, so that a payload too large fails in development too.
        let limit = native_sse_redis::MAX_SIGNAL_BYTES;
        if payload.len() > limit {
            return Err(too_large(payload.len(), limit));
        }
        let Some(bridge) = &self.bridge else {
            return Ok(false);
        };
        bridge
            .send_signal(&payload)
            .map_err(|e| too_large(e.size, e.limit))?;
        Ok(true)
    }

    /// Takes every relayed batch written since the last take (after a flush event).
    #[napi(catch_unwind)]
    pub fn take_writes(&self) -> NodeWrites {
        let (ids, chunks) = self.outbox.take();
        let mut distinct: Vec<Buffer> = Vec::new();
        let mut seen: HashMap<(usize, usize), u32> = HashMap::new();
        let which: Vec<u32> = chunks
            .iter()
            .map(|chunk| {
                *seen
                    .entry((chunk.as_ptr() as usize, chunk.len()))
                    .or_insert_with(|| {
                        distinct.push(Buffer::from(chunk.to_vec()));
                        distinct.len() as u32 - 1
                    })
            })
            .collect();
        NodeWrites {
            ids: Float64Array::new(ids),
            chunks: distinct,
            which: Uint32Array::new(which),
        }
    }

    /// These clients' responses took their batches up to `bytes[i]` (counted from the start)
    /// and accept more: one call for every acknowledgement of a flush.
    #[napi(catch_unwind)]
    pub fn relay_acknowledged_many(&self, ids: Vec<f64>, bytes: Vec<f64>) -> Result<(), Code> {
        let hub = self.hub()?;
        for (id, bytes) in ids.into_iter().zip(bytes) {
            hub.relay_acknowledged(client_id(id)?, bytes as u64);
        }
        Ok(())
    }

    fn hub(&self) -> Result<&Hub, Code> {
        self.hub
            .as_ref()
            .ok_or_else(|| sse_error(SseError::HubClosed))
    }

    /// Registers a client, subscribed to `channels`, before its transport starts. Its stream
    /// opens with `retry:` when given, a comment otherwise; with `lastEventId` it resumes just
    /// past that event where history allows, or gets the reset event.
    #[napi(catch_unwind)]
    pub fn register(
        &self,
        retry: Option<f64>,
        channels: Vec<String>,
        last_event_id: Option<String>,
    ) -> Result<NativeRegistration, Code> {
        self.enrol(retry, channels, last_event_id, false)
    }

    /// `register`, held while an asynchronous authorization decides: not counted as opened
    /// until `admit(id)`; `withdraw(id, refusal)` takes it back.
    #[napi(catch_unwind)]
    pub fn register_held(
        &self,
        retry: Option<f64>,
        channels: Vec<String>,
        last_event_id: Option<String>,
    ) -> Result<NativeRegistration, Code> {
        self.enrol(retry, channels, last_event_id, true)
    }

    /// A held client was let in (its transport starts next). False when it is gone.
    #[napi(catch_unwind)]
    pub fn admit(&self, id: f64) -> Result<bool, Code> {
        Ok(self.hub()?.admit(client_id(id)?))
    }

    /// A held client was refused: it leaves without a `closed` event, counted as `refusal`.
    #[napi(catch_unwind)]
    pub fn withdraw(&self, id: f64, refusal: reasons::Refusal) -> Result<bool, Code> {
        let id = client_id(id)?;
        Ok(match &self.hub {
            Some(hub) => hub.withdraw(id, refusal.into()),
            None => false,
        })
    }

    /// Counts a request refused in JS before it was registered (an authorization rule).
    #[napi(catch_unwind)]
    pub fn count_refusal(&self, refusal: reasons::Refusal) {
        match &self.hub {
            Some(hub) => hub.count_refusal(refusal.into()),
            None => {
                self.stats.add_refused(refusal.into());
            }
        }
    }

    fn enrol(
        &self,
        retry: Option<f64>,
        channels: Vec<String>,
        last_event_id: Option<String>,
        held: bool,
    ) -> Result<NativeRegistration, Code> {
        let retry = retry_value(retry)?;
        let refused = |refusal: Refusal| NativeRegistration {
            id: 0.0,
            refused: Some(refusal.into()),
            resume: reasons::Resume::None,
            reset_reason: None,
        };
        let Some(hub) = &self.hub else {
            return Ok(refused(self.stats.add_refused(Refusal::Closing)));
        };
        let registered = if held {
            hub.register_held(retry, channels, last_event_id.as_deref())
        } else {
            hub.register(retry, channels, last_event_id.as_deref())
        };
        let (id, resume) = match registered {
            Ok(registered) => registered,
            Err(SseError::Refused(refusal)) => return Ok(refused(refusal)),
            Err(error) => return Err(sse_error(error)),
        };
        let (resume, reset_reason) = reasons::resume(resume);
        Ok(NativeRegistration {
            id: id as f64,
            refused: None,
            resume,
            reset_reason,
        })
    }

    /// Why a client subscribed to `channels` would be refused now (a closed hub: closing), or
    /// null: the answer to a `HEAD`, which registers and counts nothing.
    #[napi(catch_unwind)]
    pub fn admission(&self, channels: Vec<String>) -> Result<Option<reasons::Refusal>, Code> {
        match &self.hub {
            None => Ok(Some(Refusal::Closing.into())),
            Some(hub) => Ok(hub.admission(&channels).map_err(sse_error)?.map(Into::into)),
        }
    }

    /// Takes over the socket `fd` for client `id`. Call once everything Node was given for
    /// the socket reached the kernel and reading is stopped, then close Node's own handle.
    /// `head`: the response head Node rendered but did not send (latin1 bytes), sent with the
    /// first body bytes; absent when Node sent it. libuv's registration of `fd` is removed
    /// only once the hub has accepted the socket, so a refused adoption leaves Node's socket
    /// as it was.
    #[napi(catch_unwind)]
    pub fn adopt(
        &self,
        env: Env,
        id: f64,
        fd: i32,
        chunked: bool,
        head: Option<Buffer>,
    ) -> Result<(), Code> {
        let hub = self.hub()?;
        let id = client_id(id)?;
        if let Some(reason) = uv::handoff_unavailable_reason() {
            return Err(ErrorCode::TransportUnavailable.error(reason));
        }
        let head = head.map_or_else(bytes::Bytes::new, |head| {
            bytes::Bytes::copy_from_slice(&head)
        });
        hub.adopt_with_head(id, fd as SocketFd, chunked, head, |fd| {
            uv::forget_fd(&env, fd)
        })
        .map_err(sse_error)
    }

    /// Takes over a connection the front door accepted (`hub.route()`): as `adopt` with the
    /// rendered `head`, for a socket Node never read, whose request is dropped here.
    #[napi(catch_unwind)]
    pub fn adopt_request(&self, id: f64, fd: i32, chunked: bool, head: Buffer) -> Result<(), Code> {
        let hub = self.hub()?;
        let id = client_id(id)?;
        hub.adopt_request(
            id,
            fd as SocketFd,
            chunked,
            bytes::Bytes::copy_from_slice(&head),
        )
        .map_err(sse_error)
    }

    /// Serves client `id` through JS: batches arrive as `write` events, acknowledged with
    /// `relayAcknowledged` and refused with `relayRefused` (see `RELAY_CREDIT_BYTES`). `socketFd` is the TCP socket under the response, when
    /// known: it is only looked at, to tell a peer that reads slowly from one that stopped.
    #[napi(catch_unwind)]
    pub fn start_node(&self, id: f64, socket_fd: Option<i32>) -> Result<(), Code> {
        let hub = self.hub()?;
        let socket_fd = socket_fd.filter(|fd| *fd >= 0).map(|fd| fd as SocketFd);
        hub.start_node(client_id(id)?, socket_fd).map_err(sse_error)
    }

    /// Serves client `id` through JS into the body of a Fetch API `Response`
    /// (`hub.response()`): as `startNode` without a socket, counted as a Fetch client.
    /// `heartbeatMs`: its own heartbeat period (absent: the hub's).
    #[napi(catch_unwind)]
    pub fn start_fetch(&self, id: f64, heartbeat_ms: Option<f64>) -> Result<(), Code> {
        let hub = self.hub()?;
        let heartbeat = heartbeat_ms.map(|ms| std::time::Duration::from_millis(ms as u64));
        hub.start_fetch(client_id(id)?, heartbeat)
            .map_err(sse_error)
    }

    /// Client `id`'s transport starts on the next turn: the server's close drains through it.
    #[napi(catch_unwind)]
    pub fn will_start(&self, id: f64) -> Result<bool, Code> {
        let hub = self.hub()?;
        Ok(hub.will_start(client_id(id)?))
    }

    /// Client `id`'s own heartbeat period (`response()`'s `heartbeatMs` where the request is
    /// served from Node's own response); before its transport starts.
    #[napi(catch_unwind)]
    pub fn set_heartbeat(&self, id: f64, heartbeat_ms: f64) -> Result<bool, Code> {
        let hub = self.hub()?;
        let period = std::time::Duration::from_millis(heartbeat_ms as u64);
        Ok(hub.set_heartbeat(client_id(id)?, period))
    }

    /// Makes client `id`'s stream gzip, before its transport starts: the head says
    /// `Content-Encoding: gzip`. False when the hub does not compress or the client is not
    /// waiting to start.
    #[napi(catch_unwind)]
    pub fn use_gzip(&self, id: f64) -> Result<bool, Code> {
        let hub = self.hub()?;
        Ok(hub.use_gzip(client_id(id)?))
    }

    /// Client `id`'s response took its batches up to `bytes` (counted from the start) and
    /// accepts more (after a refusal: it drained). False if the client is gone.
    #[napi(catch_unwind)]
    pub fn relay_acknowledged(&self, id: f64, bytes: f64) -> Result<bool, Code> {
        let hub = self.hub()?;
        Ok(hub.relay_acknowledged(client_id(id)?, bytes as u64))
    }

    /// Client `id`'s response refused the batch it took last: no more until it acknowledges.
    #[napi(catch_unwind)]
    pub fn relay_refused(&self, id: f64) -> Result<bool, Code> {
        let hub = self.hub()?;
        Ok(hub.relay_refused(client_id(id)?))
    }

    #[napi(catch_unwind)]
    pub fn publish(
        &self,
        channel: String,
        data: Option<Either<String, Buffer>>,
        event: Option<String>,
        event_id: Option<String>,
        retry: Option<f64>,
        watch: Option<NativeWatch>,
    ) -> Result<u32, Code> {
        let hub = self.hub()?;
        let args = MessageArgs::new(data, event, event_id, retry);
        Ok(args.with(|message| match watch {
            None => hub.publish(&channel, message),
            Some(watch) => {
                hub.publish_watched(Some(&channel), message, watch.token(), watch.trace())
            }
        })? as u32)
    }

    /// Subscribes client `id` to `channel` from now on; false if it is gone, was subscribed or
    /// the channel is full; throws past `maxChannelsPerClient`.
    #[napi(catch_unwind)]
    pub fn subscribe(&self, id: f64, channel: String) -> Result<bool, Code> {
        let hub = self.hub()?;
        hub.subscribe(client_id(id)?, &channel).map_err(sse_error)
    }

    /// Ends client `id`'s subscription to `channel`; false if it was not subscribed.
    #[napi(catch_unwind)]
    pub fn unsubscribe(&self, id: f64, channel: String) -> Result<bool, Code> {
        let hub = self.hub()?;
        Ok(hub.unsubscribe(client_id(id)?, &channel))
    }

    /// Gives `channel` its own history, same fields as the hub's (absent: off).
    #[napi(catch_unwind)]
    pub fn set_channel_history(
        &self,
        channel: String,
        max_events: Option<f64>,
        max_bytes: Option<f64>,
        max_age_ms: Option<f64>,
    ) -> Result<(), Code> {
        let hub = self.hub()?;
        let own = history(max_events, max_bytes, max_age_ms)?;
        hub.set_channel_history(&channel, Some(own));
        Ok(())
    }

    /// Gives `channel` settings for good (`createHub({ channels })`).
    #[napi(catch_unwind)]
    pub fn set_standing_channel(
        &self,
        channel: String,
        settings: NativeStandingChannel,
    ) -> Result<(), Code> {
        let hub = self.hub()?;
        let own = settings
            .own_history
            .then(|| {
                history(
                    settings.history_max_events,
                    settings.history_max_bytes,
                    settings.history_max_age_ms,
                )
            })
            .transpose()?;
        let cap = settings
            .max_clients
            .map(|max| whole_number("maxClients", max, 0.0, 1e9))
            .transpose()?;
        let compression = settings
            .compression
            .map(ChannelCompression::try_from)
            .transpose()?
            .unwrap_or_default();
        hub.set_standing_channel(&channel, own, cap.map(|cap| cap as usize), compression);
        Ok(())
    }

    /// Makes `channel` compress as `compression` says from its next event on.
    #[napi(catch_unwind)]
    pub fn set_channel_compression(
        &self,
        channel: String,
        compression: NativeChannelCompression,
    ) -> Result<(), Code> {
        let hub = self.hub()?;
        hub.set_channel_compression(&channel, compression.try_into()?);
        Ok(())
    }

    /// Makes `channel` keep at least this history while a stream runs in it; returns the
    /// hold's id for `releaseChannelHistory`.
    #[napi(catch_unwind)]
    pub fn hold_channel_history(
        &self,
        channel: String,
        max_events: Option<f64>,
        max_bytes: Option<f64>,
        max_age_ms: Option<f64>,
    ) -> Result<f64, Code> {
        let hub = self.hub()?;
        let held = history(max_events, max_bytes, max_age_ms)?;
        Ok(hub.hold_history(&channel, held) as f64)
    }

    /// Whether `channel`'s history still holds events of the resumable stream `stream`: its
    /// numbered ones, or any of `closing` (its end and error ids).
    #[napi(catch_unwind)]
    pub fn channel_holds_stream(
        &self,
        channel: String,
        stream: String,
        closing: Vec<String>,
    ) -> Result<bool, Code> {
        let hub = self.hub()?;
        Ok(hub.channel_holds_stream(&channel, &stream, &closing))
    }

    /// The stream behind hold `hold` ended: the channel keeps it for its age bound, then
    /// goes back to its own history.
    #[napi(catch_unwind)]
    pub fn release_channel_history(&self, channel: String, hold: f64) -> Result<(), Code> {
        if let Some(hub) = &self.hub {
            hub.release_history(&channel, hold as u64);
        }
        Ok(())
    }

    /// Caps `channel`'s subscribers from now on (absent: no cap).
    #[napi(catch_unwind)]
    pub fn set_channel_cap(&self, channel: String, max_clients: Option<f64>) -> Result<(), Code> {
        let hub = self.hub()?;
        let cap = max_clients
            .map(|max| whole_number("maxClients", max, 0.0, 1e9))
            .transpose()?;
        hub.set_channel_cap(&channel, cap.map(|cap| cap as usize));
        Ok(())
    }

    /// Subscribers of `channel`.
    #[napi(catch_unwind)]
    pub fn channel_size(&self, channel: String) -> u32 {
        self.hub
            .as_ref()
            .map_or(0, |hub| hub.channel_size(&channel) as u32)
    }

    /// Queues one message for client `id`; says whether it was queued and what its queue
    /// holds now (`Sent`).
    #[napi(catch_unwind)]
    pub fn send(
        &self,
        id: f64,
        data: Option<Either<String, Buffer>>,
        event: Option<String>,
        event_id: Option<String>,
        retry: Option<f64>,
    ) -> Result<Sent, Code> {
        let hub = self.hub()?;
        let id = client_id(id)?;
        let args = MessageArgs::new(data, event, event_id, retry);
        args.with(|message| hub.send(id, message))
            .map(|outcome| sent(hub, id, outcome))
    }

    /// Queues several messages for client `id` as one call, their fields in parallel arrays
    /// (`event`, `eventId`, `retry` absent: none has that field). All are checked first: an
    /// invalid one queues none, and the error is that item's (which one is not told: JS sends
    /// them one by one then, so each caller gets its own). Returns what `send` returns.
    #[napi(catch_unwind)]
    pub fn send_many(
        &self,
        id: f64,
        data: Vec<Option<Either<String, Buffer>>>,
        event: Option<Vec<Option<String>>>,
        event_id: Option<Vec<Option<String>>>,
        retry: Option<Vec<Option<f64>>>,
    ) -> Result<Sent, Code> {
        let hub = self.hub()?;
        let id = client_id(id)?;
        let mut events = event.unwrap_or_default().into_iter();
        let mut event_ids = event_id.unwrap_or_default().into_iter();
        let mut retries = retry.unwrap_or_default().into_iter();
        let args: Vec<MessageArgs> = data
            .into_iter()
            .map(|data| {
                let event = events.next().flatten();
                let event_id = event_ids.next().flatten();
                MessageArgs::new(data, event, event_id, retries.next().flatten())
            })
            .collect();
        let texts: Vec<_> = args.iter().map(|a| data_text(&a.data)).collect();
        let messages = args
            .iter()
            .zip(&texts)
            .map(|(args, text)| args.message(text))
            .collect::<Result<Vec<_>, _>>()?;
        send_many(hub, id, &messages)
    }

    /// Queues one event per string for client `id`, the strings joined into `joined` with
    /// their UTF-16 lengths in `lengths`: one string conversion for the lot. Returns what
    /// `send` returns.
    #[napi(catch_unwind)]
    pub fn send_texts(&self, id: f64, joined: String, lengths: Uint32Array) -> Result<Sent, Code> {
        let hub = self.hub()?;
        let id = client_id(id)?;
        let texts =
            native_sse_core::text::split_utf16_lengths(&joined, &lengths).map_err(|_| {
                ErrorCode::Internal
                    .error("sendTexts: the lengths do not add up to the joined string")
            })?;
        send_texts(hub, id, &texts)
    }

    #[napi(catch_unwind)]
    pub fn broadcast(
        &self,
        data: Option<Either<String, Buffer>>,
        event: Option<String>,
        event_id: Option<String>,
        retry: Option<f64>,
        watch: Option<NativeWatch>,
    ) -> Result<u32, Code> {
        let hub = self.hub()?;
        let args = MessageArgs::new(data, event, event_id, retry);
        Ok(args.with(|message| match watch {
            None => hub.broadcast(message),
            Some(watch) => hub.publish_watched(None, message, watch.token(), watch.trace()),
        })? as u32)
    }

    /// Queues a comment for client `id`; returns what `send` returns.
    #[napi(catch_unwind)]
    pub fn comment(&self, id: f64, text: String) -> Result<DeliveryCode, Code> {
        let hub = self.hub()?;
        hub.comment(client_id(id)?, &text)
            .map(delivery)
            .map_err(sse_error)
    }

    #[napi(catch_unwind)]
    pub fn broadcast_comment(&self, text: String) -> Result<u32, Code> {
        Ok(self.hub()?.broadcast_comment(&text).map_err(sse_error)? as u32)
    }

    /// Closes one client, which leaves with `reason`.
    #[napi(catch_unwind)]
    pub fn close_client(&self, id: f64, reason: reasons::CloseReason) -> Result<bool, Code> {
        let hub = self.hub()?;
        Ok(hub.close_client(client_id(id)?, reason.into()))
    }

    /// Closes every client (draining their queues) and refuses new ones.
    #[napi(catch_unwind)]
    pub fn close_all(&self) -> Result<(), Code> {
        self.hub()?.close_all();
        Ok(())
    }

    /// Starts a staged close (see `native_sse_core::shutdown`): refuses new clients now, and
    /// closes each client at its turn within `spreadMs`, after a `retry:` drawn from
    /// `retryMs ..= retryMs + retryJitterMs` and the farewell event when one is given.
    #[napi(catch_unwind)]
    #[allow(clippy::too_many_arguments)]
    pub fn close_staged(
        &self,
        drain_ms: f64,
        spread_ms: f64,
        retry_ms: f64,
        retry_jitter_ms: f64,
        data: Option<Either<String, Buffer>>,
        event: Option<String>,
        event_id: Option<String>,
        retry: Option<f64>,
    ) -> Result<(), Code> {
        let timing = StagedTiming::new(drain_ms, spread_ms, retry_ms, retry_jitter_ms)?;
        let farewell = MessageArgs::new(data, event, event_id, retry);
        self.with_staged_plan(timing, farewell, |hub, plan| hub.close_staged(plan))
    }

    /// Checks `closeStaged`'s arguments as it would, and starts nothing: a plan it would
    /// refuse is refused before the caller stops anything of its own (or, in a framework's
    /// plugin, at registration rather than at shutdown).
    #[napi(catch_unwind)]
    #[allow(clippy::too_many_arguments)]
    pub fn check_close_staged(
        &self,
        drain_ms: f64,
        spread_ms: f64,
        retry_ms: f64,
        retry_jitter_ms: f64,
        data: Option<Either<String, Buffer>>,
        event: Option<String>,
        event_id: Option<String>,
        retry: Option<f64>,
    ) -> Result<(), Code> {
        let timing = StagedTiming::new(drain_ms, spread_ms, retry_ms, retry_jitter_ms)?;
        let farewell = MessageArgs::new(data, event, event_id, retry);
        self.with_staged_plan(timing, farewell, |hub, plan| hub.check_staged_close(&plan))
    }

    /// Runs `act` on the staged close `timing` and `farewell` make (none when no field of it
    /// is given), with the hub.
    fn with_staged_plan(
        &self,
        timing: StagedTiming,
        farewell: MessageArgs,
        act: impl FnOnce(
            &native_sse_core::Hub,
            StagedClose<'_>,
        ) -> std::result::Result<(), native_sse_core::SseError>,
    ) -> Result<(), Code> {
        let hub = self.hub()?;
        let given = !farewell.is_empty();
        farewell.with(|message| act(hub, timing.plan(given.then_some(message))))
    }

    /// Stops the runtime. Writer tasks get up to `graceMs` to finish; the rest are cut.
    #[napi(catch_unwind)]
    pub fn shutdown(&mut self, grace_ms: f64) -> Result<(), Code> {
        let grace = Duration::from_millis(whole_number("graceMs", grace_ms, 0.0, 60_000.0)?);
        if let Some(mut hub) = self.hub.take() {
            hub.shutdown(grace);
        }
        Ok(())
    }

    #[napi(getter, catch_unwind)]
    pub fn size(&self) -> u32 {
        self.hub.as_ref().map_or(0, |hub| hub.size() as u32)
    }

    /// `hub.metrics()` as JS users get it: counters and gauges, with the Redis bridge's,
    /// O(channels). After shutdown the counters remain, the gauges are 0. `per_channel`: how
    /// many channels `perChannel` lists at most, the most subscribed (absent: no list).
    #[napi(catch_unwind)]
    pub fn metrics(&self, per_channel: Option<u32>) -> HubMetrics {
        let limit = per_channel.map(|limit| limit as usize);
        let metrics = match &self.hub {
            Some(hub) => hub.metrics(limit),
            None => Metrics {
                stats: self.stats.snapshot(),
                worker_threads: self.worker_threads,
                ..Default::default()
            },
        };
        let redis = self.bridge.as_ref().map(|bridge| bridge.metrics());
        HubMetrics::of(metrics, redis, limit.is_some())
    }

    /// `hub.stats()`: the queue levels, O(clients), and what else `metrics()` leaves out.
    #[napi(catch_unwind)]
    pub fn stats(&self) -> HubStats {
        let (snapshot, levels) = match &self.hub {
            Some(hub) => (hub.stats(), hub.queue_levels()),
            None => (self.stats.snapshot(), Default::default()),
        };
        HubStats::of(&snapshot, &levels)
    }
}

/// Why this process cannot hand sockets to the native transport, or null when it can.
#[napi(catch_unwind)]
pub fn native_handoff_unavailable_reason() -> Option<&'static str> {
    uv::handoff_unavailable_reason()
}

/// The front door's look at a connection Node just accepted (`hub.route()`): its first
/// request head as `[method, target, name, value, ...]` (names lowercased) when it arrived
/// whole and is a bodiless HTTP/1.1 request; `[]` while it has not all arrived; null for
/// anything else, which goes to Node as it came. `maxHeadBytes`: the server's own limit
/// (`maxHeaderSize`). The bytes are peeked, never read (native-sse-core's request_head).
#[napi(catch_unwind)]
pub fn peek_request(fd: i32, max_head_bytes: u32) -> Option<Vec<String>> {
    use native_sse_core::request_head::{peek_request_head, NotTaken};
    let head = match peek_request_head(fd as SocketFd, max_head_bytes as usize) {
        Ok(head) => head,
        Err(NotTaken::Incomplete) => return Some(Vec::new()),
        Err(NotTaken::Other) => return None,
    };
    let mut parts = Vec::with_capacity(2 + head.headers.len() * 2);
    parts.push(head.method);
    parts.push(head.target);
    for (name, value) in head.headers {
        parts.push(name);
        parts.push(value);
    }
    Some(parts)
}

/// Sets the accept queue of the listening socket `fd` to `backlog` (capped by the kernel's
/// `somaxconn`): `hub.route()` raises Node's default of 511 so a reconnect wave's handshakes
/// wait instead of being dropped. False where the descriptor refused it.
#[napi(catch_unwind)]
pub fn set_listen_backlog(fd: i32, backlog: u32) -> bool {
    native_sse_core::request_head::set_backlog(fd as SocketFd, backlog)
}

/// A staged close's timing, checked: its fields as `closeStaged` takes them.
struct StagedTiming {
    drain: Duration,
    spread: Duration,
    retry_ms: u64,
    retry_jitter_ms: u64,
}

impl StagedTiming {
    fn new(
        drain_ms: f64,
        spread_ms: f64,
        retry_ms: f64,
        retry_jitter_ms: f64,
    ) -> Result<Self, Code> {
        Ok(StagedTiming {
            drain: millis("drainMs", drain_ms)?,
            spread: Duration::from_millis(whole_number(
                "spreadMs",
                spread_ms,
                0.0,
                2_147_483_647.0,
            )?),
            retry_ms: whole_number("retryMs", retry_ms, 0.0, 2_147_483_647.0)?,
            retry_jitter_ms: whole_number("retryJitterMs", retry_jitter_ms, 0.0, 2_147_483_647.0)?,
        })
    }

    fn plan<'a>(&self, farewell: Option<&'a native_sse_core::Message<'a>>) -> StagedClose<'a> {
        StagedClose {
            drain: self.drain,
            spread: self.spread,
            retry_ms: self.retry_ms,
            retry_jitter_ms: self.retry_jitter_ms,
            farewell,
        }
    }
}
