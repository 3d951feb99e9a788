//! The `#[napi]` surface of native-sse: option conversion, the hub handle, and error mapping.
//! No protocol logic lives here; see `crates/core`.
//!
//! Argument types are checked in `index.js`, which knows the JS-side names and defaults; this
//! layer re-checks what could corrupt memory or the wire (ranges, fields) and reports each
//! failure with a stable `ERR_SSE_*` code in `err.code`.

#![deny(clippy::all)]

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use native_sse_core::stats::Stats;
use native_sse_core::{
    CloseReason, Delivery, History, Hub, HubConfig, Message, Metrics, OverflowPolicy, Refusal,
    Resume, SocketFd, SseError, StagedClose,
};

mod code;
mod events;
mod test_hooks;
mod uv;

use code::Code;
use events::{JsEvents, Outbox};
use native_sse_redis::{Bridge, RedisConfig};

/// Hub options after JS-side defaults were applied. Times in milliseconds.
#[napi(object)]
pub struct NativeHubOptions {
    pub heartbeat_ms: f64,
    pub write_timeout_ms: f64,
    pub max_queue_events: f64,
    pub max_queue_bytes: f64,
    pub max_event_bytes: f64,
    /// `'disconnect'` or `'drop-oldest'`.
    pub overflow: String,
    pub high_water_mark: f64,
    /// History per log; absent: off.
    pub history_max_events: Option<f64>,
    pub history_max_bytes: Option<f64>,
    /// 0: no age bound.
    pub history_max_age_ms: Option<f64>,
    pub reset_event: String,
    pub worker_threads: f64,
    /// Absent: no cap.
    pub max_clients: Option<f64>,
    /// Absent: the hub is on its own.
    pub redis: Option<NativeRedisOptions>,
}

/// `createHub({ redis })` after JS-side defaults.
#[napi(object)]
pub struct NativeRedisOptions {
    pub url: String,
    pub prefix: String,
    pub max_buffer_events: f64,
    pub max_buffer_bytes: f64,
    pub stream_events: f64,
    pub reconnect_min_ms: f64,
    pub reconnect_max_ms: f64,
}

impl TryFrom<NativeRedisOptions> for RedisConfig {
    type Error = napi::Error<Code>;

    fn try_from(options: NativeRedisOptions) -> Result<RedisConfig, Code> {
        if options.prefix.is_empty() || options.prefix.contains(['{', '}']) {
            return Err(Code::InvalidOption.error(format!(
                "redis.prefix must be a non-empty string without braces (it becomes the keys' \
                 hash tag), got {:?}",
                options.prefix
            )));
        }
        let reconnect_min = millis("redis.reconnectMinMs", options.reconnect_min_ms)?;
        let reconnect_max = millis("redis.reconnectMaxMs", options.reconnect_max_ms)?;
        if reconnect_max < reconnect_min {
            return Err(Code::InvalidOption
                .error("redis.reconnectMaxMs must be at least redis.reconnectMinMs"));
        }
        Ok(RedisConfig {
            url: options.url,
            prefix: options.prefix,
            max_buffer_events: whole_number(
                "redis.maxBufferEvents",
                options.max_buffer_events,
                1.0,
                1e9,
            )? as usize,
            max_buffer_bytes: whole_number(
                "redis.maxBufferBytes",
                options.max_buffer_bytes,
                1.0,
                1e12,
            )? as usize,
            stream_events: whole_number("redis.streamEvents", options.stream_events, 1.0, 1e9)?
                as usize,
            reconnect_min,
            reconnect_max,
        })
    }
}

/// `hub.metrics().redis`; see `native_sse_redis::BridgeMetrics`.
#[napi(object)]
pub struct NativeRedisMetrics {
    pub connected: bool,
    pub buffered_events: f64,
    pub buffered_bytes: f64,
    pub sent: f64,
    pub received: f64,
    pub recovered: f64,
    pub gaps: f64,
    pub gap_resets: f64,
    pub disconnects: f64,
}

/// Counters and queue levels of a hub (`hub.stats()`).
#[napi(object)]
pub struct NativeHubStats {
    /// Clients currently registered.
    pub clients: u32,
    /// Clients ever attached.
    pub attached: f64,
    /// Clients that left with reason `'client'` (FIN).
    pub closed_client: f64,
    /// Clients that left with reason `'error'` (RST, broken pipe).
    pub closed_error: f64,
    /// Clients that left with reason `'timeout'`.
    pub closed_timeout: f64,
    /// Clients that left with reason `'slow'` (queue overflow).
    pub closed_slow: f64,
    /// Clients that left with reason `'server'`.
    pub closed_server: f64,
    /// Bytes handed to the kernel, HTTP chunk framing included.
    pub bytes_written: f64,
    /// Heartbeat comments written.
    pub heartbeats: f64,
    /// Events discarded under `overflow: 'drop-oldest'`.
    pub events_dropped: f64,
    /// Frames queued or in flight, summed over clients.
    pub queued_events: f64,
    /// Bytes queued or in flight, summed over clients (a shared frame counts once per client).
    pub queued_bytes: f64,
    /// The largest byte level of a single client: the figure `maxQueueBytes` bounds.
    pub max_client_queued_bytes: f64,
    /// Frames the hub's channel logs hold (each once, however many clients read it).
    pub held_events: f64,
    /// Bytes the hub's channel logs hold: the memory shared frames take.
    pub held_bytes: f64,
}

/// A registered client: its id, and what its `Last-Event-ID` resumed to; or why it was refused.
#[napi(object)]
pub struct NativeRegistration {
    /// 0 when refused.
    pub id: f64,
    /// `'hub-full'`, `'channel-full'` or `'closing'` when the client was not registered.
    pub refused: Option<String>,
    /// `'none'`, `'replayed'` or `'reset'`.
    pub resume: String,
    /// With `'reset'`: `'unknown'`, `'foreign'` or `'expired'`.
    pub reset_reason: Option<String>,
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

/// `hub.metrics()` as the binding returns it; see `native_sse_core::Metrics`. Counters are
/// whole numbers below 2^53 in any realistic lifetime.
#[napi(object)]
pub struct NativeMetrics {
    pub connections_native: f64,
    pub connections_node: f64,
    pub connections_pending: f64,
    pub connections_opened: f64,
    pub closed_client: f64,
    pub closed_error: f64,
    pub closed_timeout: f64,
    pub closed_slow: f64,
    pub closed_server: f64,
    pub refused_hub_full: f64,
    pub refused_channel_full: f64,
    pub refused_closing: f64,
    pub subscriptions_refused: f64,
    pub published_broadcast: f64,
    pub published_channel: f64,
    pub published_client: f64,
    pub delivered: f64,
    pub bytes_written: f64,
    pub heartbeats: f64,
    pub events_dropped: f64,
    pub lag_events: f64,
    pub lag_bytes: f64,
    pub lag_max_events: f64,
    pub lag_max_bytes: f64,
    pub resumes_replayed: f64,
    pub resets_unknown: f64,
    pub resets_foreign: f64,
    pub resets_expired: f64,
    pub resets_gap: f64,
    pub held_events: f64,
    pub held_bytes: f64,
    pub channels: f64,
    pub worker_threads: f64,
    /// With `perChannel`: one entry per channel, by name.
    pub per_channel: Option<Vec<NativeChannelMetrics>>,
}

#[napi(object)]
pub struct NativeChannelMetrics {
    pub name: String,
    pub subscribers: f64,
    pub lag_events: f64,
    pub lag_bytes: f64,
    pub held_events: f64,
    pub held_bytes: f64,
}

impl NativeMetrics {
    fn of(metrics: Metrics, per_channel: bool) -> Self {
        let s = &metrics.stats;
        let running = s.running_native + s.running_node;
        NativeMetrics {
            connections_native: s.running_native as f64,
            connections_node: s.running_node as f64,
            connections_pending: metrics.clients.saturating_sub(running) as f64,
            connections_opened: s.attached as f64,
            closed_client: s.closed_client as f64,
            closed_error: s.closed_error as f64,
            closed_timeout: s.closed_timeout as f64,
            closed_slow: s.closed_slow as f64,
            closed_server: s.closed_server as f64,
            refused_hub_full: s.refused_hub_full as f64,
            refused_channel_full: s.refused_channel_full as f64,
            refused_closing: s.refused_closing as f64,
            subscriptions_refused: s.subscriptions_refused as f64,
            published_broadcast: s.published_broadcast as f64,
            published_channel: s.published_channel as f64,
            published_client: s.published_client as f64,
            delivered: s.delivered as f64,
            bytes_written: s.bytes_written as f64,
            heartbeats: s.heartbeats as f64,
            events_dropped: s.events_dropped as f64,
            lag_events: metrics.lag_events as f64,
            lag_bytes: metrics.lag_bytes as f64,
            lag_max_events: s.lag_max_events as f64,
            lag_max_bytes: s.lag_max_bytes as f64,
            resumes_replayed: s.resumes_replayed as f64,
            resets_unknown: s.resets_unknown as f64,
            resets_foreign: s.resets_foreign as f64,
            resets_expired: s.resets_expired as f64,
            resets_gap: s.resets_gap as f64,
            held_events: metrics.held_events as f64,
            held_bytes: metrics.held_bytes as f64,
            channels: metrics.channels as f64,
            worker_threads: metrics.worker_threads as f64,
            per_channel: per_channel.then(|| {
                metrics
                    .per_channel
                    .iter()
                    .map(|c| NativeChannelMetrics {
                        name: c.name.to_string(),
                        subscribers: c.subscribers as f64,
                        lag_events: c.lag_events as f64,
                        lag_bytes: c.lag_bytes as f64,
                        held_events: c.held_events as f64,
                        held_bytes: c.held_bytes as f64,
                    })
                    .collect()
            }),
        }
    }
}

/// Node-transport batches taken from the outbox: `chunks[which[i]]` goes to client `ids[i]`.
/// A frame broadcast to many clients is one Buffer, written to each of them.
#[napi(object)]
pub struct NodeWrites {
    pub ids: Float64Array,
    pub chunks: Vec<Buffer>,
    pub which: Uint32Array,
}

fn whole_number(name: &str, value: f64, min: f64, max: f64) -> Result<u64, Code> {
    if value.fract() != 0.0 || !(min..=max).contains(&value) {
        return Err(Code::InvalidOption.error(format!(
            "{name} must be a whole number from {min} to {max}, got {value}"
        )));
    }
    Ok(value as u64)
}

fn millis(name: &str, value: f64) -> Result<Duration, Code> {
    // Up to about 24 days, which keeps every deadline far from Instant overflow.
    Ok(Duration::from_millis(whole_number(
        name,
        value,
        1.0,
        2_147_483_647.0,
    )?))
}

/// History bounds (the defaults of `history: true` are JS's); absent events: off. 0 ms
/// means no age bound.
fn history(
    max_events: Option<f64>,
    max_bytes: Option<f64>,
    max_age_ms: Option<f64>,
) -> Result<History, Code> {
    let Some(max_events) = max_events else {
        return Ok(History::default());
    };
    let max_age_ms = whole_number(
        "history.maxAgeMs",
        max_age_ms.unwrap_or(0.0),
        0.0,
        2_147_483_647.0,
    )?;
    Ok(History {
        max_events: whole_number("history.maxEvents", max_events, 1.0, 1e9)? as usize,
        max_bytes: whole_number("history.maxBytes", max_bytes.unwrap_or(0.0), 1.0, 1e12)? as usize,
        max_age: (max_age_ms > 0).then(|| Duration::from_millis(max_age_ms)),
    })
}

impl TryFrom<NativeHubOptions> for HubConfig {
    type Error = napi::Error<Code>;

    fn try_from(options: NativeHubOptions) -> Result<HubConfig, Code> {
        let overflow = match options.overflow.as_str() {
            "disconnect" => OverflowPolicy::Disconnect,
            "drop-oldest" => OverflowPolicy::DropOldest,
            other => {
                return Err(Code::InvalidOption.error(format!(
                    "overflow must be 'disconnect' or 'drop-oldest', got '{other}'"
                )))
            }
        };
        let max_queue_bytes =
            whole_number("maxQueueBytes", options.max_queue_bytes, 64.0, 1e12)? as usize;
        let max_event_bytes =
            whole_number("maxEventBytes", options.max_event_bytes, 64.0, 1e12)? as usize;
        if max_event_bytes > max_queue_bytes {
            // An event the queue can never hold would be accepted and then cut every client.
            return Err(Code::InvalidOption.error(format!(
                "maxEventBytes ({max_event_bytes}) must not exceed maxQueueBytes \
                 ({max_queue_bytes}); raise maxQueueBytes or lower maxEventBytes"
            )));
        }
        let reset_event = options.reset_event;
        if reset_event.is_empty() || reset_event.contains(['\r', '\n']) {
            return Err(
                Code::InvalidOption.error("resetEvent must be a non-empty single-line event name")
            );
        }
        let history = history(
            options.history_max_events,
            options.history_max_bytes,
            options.history_max_age_ms,
        )?;
        Ok(HubConfig {
            history,
            reset_event,
            heartbeat: millis("heartbeatMs", options.heartbeat_ms)?,
            write_timeout: millis("writeTimeoutMs", options.write_timeout_ms)?,
            max_queue_events: whole_number("maxQueueEvents", options.max_queue_events, 1.0, 1e7)?
                as usize,
            max_queue_bytes,
            max_event_bytes,
            overflow,
            high_water_bytes: whole_number("highWaterMark", options.high_water_mark, 0.0, 1e12)?
                as usize,
            worker_threads: whole_number("workerThreads", options.worker_threads, 1.0, 64.0)?
                as usize,
            max_clients: match options.max_clients {
                Some(max) => whole_number("maxClients", max, 0.0, 1e9)? as usize,
                None => usize::MAX,
            },
        })
    }
}

fn client_id(id: f64) -> Result<u64, Code> {
    whole_number("client id", id, 1.0, 9_007_199_254_740_991.0)
}

/// The message fields as they arrive from JS, positional to avoid building an object per call.
struct MessageArgs {
    data: Option<Either<String, Buffer>>,
    event: Option<String>,
    id: Option<String>,
    retry: Option<f64>,
}

impl MessageArgs {
    fn new(
        data: Option<Either<String, Buffer>>,
        event: Option<String>,
        id: Option<String>,
        retry: Option<f64>,
    ) -> Self {
        MessageArgs {
            data,
            event,
            id,
            retry,
        }
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&Message<'_>) -> std::result::Result<T, SseError>,
    ) -> Result<T, Code> {
        let data = data_text(&self.data);
        f(&self.message(&data)?).map_err(sse_error)
    }

    /// The message, its data already as text (`data_text` of `self.data`).
    fn message<'a>(&'a self, data: &'a Option<Cow<'a, str>>) -> Result<Message<'a>, Code> {
        Ok(Message {
            data: data.as_deref(),
            event: self.event.as_deref(),
            id: self.id.as_deref(),
            retry: retry_value(self.retry)?,
        })
    }
}

/// The body of `data` as text (see `native_sse_core::text`).
fn data_text(data: &Option<Either<String, Buffer>>) -> Option<Cow<'_, str>> {
    data.as_ref().map(|d| match d {
        Either::A(text) => Cow::Borrowed(text.as_str()),
        Either::B(buffer) => native_sse_core::text::text_of_bytes(buffer),
    })
}

fn retry_value(retry: Option<f64>) -> Result<Option<u64>, Code> {
    retry
        .map(|r| {
            whole_number("message.retry", r, 0.0, 9_007_199_254_740_991.0)
                .map_err(|e| Code::InvalidRetry.error(e.reason))
        })
        .transpose()
}

#[napi]
impl NativeHub {
    /// `onEvent(kind, clientId, payload)` receives, in order: `0` closed (payload: the reason),
    /// `1` flush (take the Node-transport writes with `takeWrites()`), `2` end, `3` destroy,
    /// `4` drained. See `src/events.rs`.
    #[napi(
        constructor,
        catch_unwind,
        ts_args_type = "options: NativeHubOptions, onEvent: (kind: number, clientId: number, payload: string | null) => void"
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
        let events =
            JsEvents::new(&on_event, outbox.clone()).map_err(|e| Code::Internal.error(e.reason))?;
        let hub = Hub::new(config, Box::new(events))
            .map_err(|e| Code::Internal.error(format!("cannot start the runtime: {e}")))?;
        let bridge = redis
            .map(|redis| Bridge::start(&hub, redis).map_err(|e| Code::InvalidOption.error(e)))
            .transpose()?;
        Ok(NativeHub {
            stats: hub.stats_handle(),
            hub: Some(hub),
            outbox,
            worker_threads,
            bridge,
        })
    }

    /// The Redis bridge's figures; null without one.
    #[napi(catch_unwind)]
    pub fn redis_metrics(&self) -> Option<NativeRedisMetrics> {
        self.bridge.as_ref().map(|bridge| {
            let m = bridge.metrics();
            NativeRedisMetrics {
                connected: m.connected,
                buffered_events: m.buffered_events as f64,
                buffered_bytes: m.buffered_bytes as f64,
                sent: m.sent as f64,
                received: m.received as f64,
                recovered: m.recovered as f64,
                gaps: m.gaps as f64,
                gap_resets: m.gap_resets as f64,
                disconnects: m.disconnects as f64,
            }
        })
    }

    /// Events still waiting for Redis (0 without it).
    #[napi(catch_unwind)]
    pub fn redis_pending(&self) -> f64 {
        self.bridge.as_ref().map_or(0.0, |b| b.pending() as f64)
    }

    /// Takes every Node-transport batch written since the last take (after a flush event).
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

    /// The last batches written to these clients were accepted by their responses.
    #[napi(catch_unwind)]
    pub fn node_writable_many(&self, ids: Vec<f64>) -> Result<(), Code> {
        let hub = self.hub()?;
        for id in ids {
            hub.node_writable(client_id(id)?);
        }
        Ok(())
    }

    fn hub(&self) -> Result<&Hub, Code> {
        self.hub
            .as_ref()
            .ok_or_else(|| Code::from(&SseError::HubClosed).of(SseError::HubClosed))
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
        let retry = retry_value(retry)?;
        let refused = |refusal: Refusal| NativeRegistration {
            id: 0.0,
            refused: Some(refusal.as_str().to_string()),
            resume: "none".to_string(),
            reset_reason: None,
        };
        let Some(hub) = &self.hub else {
            return Ok(refused(self.stats.add_refused(Refusal::Closing)));
        };
        let (id, resume) = match hub.register(retry, channels, last_event_id.as_deref()) {
            Ok(registered) => registered,
            Err(SseError::Refused(refusal)) => return Ok(refused(refusal)),
            Err(error) => return Err(sse_error(error)),
        };
        let (resume, reset_reason) = match resume {
            Resume::None => ("none", None),
            Resume::Replayed => ("replayed", None),
            Resume::Reset(reason) => ("reset", Some(reason.as_str().to_string())),
        };
        Ok(NativeRegistration {
            id: id as f64,
            refused: None,
            resume: resume.to_string(),
            reset_reason,
        })
    }

    /// Takes over the socket `fd` for client `id`. Call after the response head is flushed and
    /// reading is stopped, then close Node's own handle. libuv's registration of `fd` is
    /// removed only once the hub has accepted the socket, so a refused adoption leaves Node's
    /// socket as it was.
    #[napi(catch_unwind)]
    pub fn adopt(&self, env: Env, id: f64, fd: i32, chunked: bool) -> Result<(), Code> {
        let hub = self.hub()?;
        let id = client_id(id)?;
        if let Some(reason) = uv::handoff_unavailable_reason() {
            return Err(Code::TransportUnavailable.error(reason));
        }
        hub.adopt(id, fd as SocketFd, chunked, |fd| uv::forget_fd(&env, fd))
            .map_err(sse_error)
    }

    /// Serves client `id` through JS: batches arrive as `write` events; call `nodeWritable`
    /// when the response accepts more. `socketFd` is the TCP socket under the response, when
    /// known: it is only looked at, to tell a peer that reads slowly from one that stopped.
    #[napi(catch_unwind)]
    pub fn start_node(&self, id: f64, socket_fd: Option<i32>) -> Result<(), Code> {
        let hub = self.hub()?;
        let socket_fd = socket_fd.filter(|fd| *fd >= 0).map(|fd| fd as SocketFd);
        hub.start_node(client_id(id)?, socket_fd).map_err(sse_error)
    }

    /// The last batch written to client `id` was accepted by its response.
    #[napi(catch_unwind)]
    pub fn node_writable(&self, id: f64) -> Result<bool, Code> {
        let hub = self.hub()?;
        Ok(hub.node_writable(client_id(id)?))
    }

    #[napi(catch_unwind)]
    pub fn publish(
        &self,
        channel: String,
        data: Option<Either<String, Buffer>>,
        event: Option<String>,
        event_id: Option<String>,
        retry: Option<f64>,
    ) -> Result<u32, Code> {
        let hub = self.hub()?;
        let args = MessageArgs::new(data, event, event_id, retry);
        Ok(args.with(|message| hub.publish(&channel, message))? as u32)
    }

    /// Subscribes client `id` to `channel` from now on; false if it is gone or was subscribed.
    #[napi(catch_unwind)]
    pub fn subscribe(&self, id: f64, channel: String) -> Result<bool, Code> {
        let hub = self.hub()?;
        Ok(hub.subscribe(client_id(id)?, &channel))
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

    /// Queues one message for client `id`. Returns `0` when the client is gone (nothing was
    /// queued), `1` queued, `2` queued and above the high-water mark (wait for `drained`).
    #[napi(catch_unwind)]
    pub fn send(
        &self,
        id: f64,
        data: Option<Either<String, Buffer>>,
        event: Option<String>,
        event_id: Option<String>,
        retry: Option<f64>,
    ) -> Result<u32, Code> {
        let hub = self.hub()?;
        let id = client_id(id)?;
        let args = MessageArgs::new(data, event, event_id, retry);
        args.with(|message| hub.send(id, message)).map(delivery)
    }

    /// Queues several messages for client `id` as one call, their fields in parallel arrays
    /// (`event`, `eventId`, `retry` absent: none has that field). All are checked first: an
    /// invalid one queues none and the error names its index. Returns what `send` returns.
    #[napi(catch_unwind)]
    pub fn send_many(
        &self,
        id: f64,
        data: Vec<Option<Either<String, Buffer>>>,
        event: Option<Vec<Option<String>>>,
        event_id: Option<Vec<Option<String>>>,
        retry: Option<Vec<Option<f64>>>,
    ) -> Result<u32, Code> {
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
    pub fn send_texts(&self, id: f64, joined: String, lengths: Uint32Array) -> Result<u32, Code> {
        let hub = self.hub()?;
        let id = client_id(id)?;
        let texts =
            native_sse_core::text::split_utf16_lengths(&joined, &lengths).map_err(|_| {
                Code::Internal.error("sendTexts: the lengths do not add up to the joined string")
            })?;
        let messages: Vec<Message> = texts
            .iter()
            .map(|text| Message {
                data: Some(text),
                ..Default::default()
            })
            .collect();
        send_many(hub, id, &messages)
    }

    #[napi(catch_unwind)]
    pub fn broadcast(
        &self,
        data: Option<Either<String, Buffer>>,
        event: Option<String>,
        event_id: Option<String>,
        retry: Option<f64>,
    ) -> Result<u32, Code> {
        let hub = self.hub()?;
        let args = MessageArgs::new(data, event, event_id, retry);
        Ok(args.with(|message| hub.broadcast(message))? as u32)
    }

    /// Queues a comment for client `id`; returns what `send` returns.
    #[napi(catch_unwind)]
    pub fn comment(&self, id: f64, text: String) -> Result<u32, Code> {
        let hub = self.hub()?;
        hub.comment(client_id(id)?, &text)
            .map(delivery)
            .map_err(sse_error)
    }

    #[napi(catch_unwind)]
    pub fn broadcast_comment(&self, text: String) -> Result<u32, Code> {
        Ok(self.hub()?.broadcast_comment(&text).map_err(sse_error)? as u32)
    }

    /// Closes one client; `reason` is one of the close reason names.
    #[napi(catch_unwind)]
    pub fn close_client(&self, id: f64, reason: String) -> Result<bool, Code> {
        let hub = self.hub()?;
        let reason = CloseReason::parse(&reason)
            .ok_or_else(|| Code::InvalidOption.error(format!("unknown close reason '{reason}'")))?;
        Ok(hub.close_client(client_id(id)?, reason))
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
        let hub = self.hub()?;
        let drain = millis("drainMs", drain_ms)?;
        let spread =
            Duration::from_millis(whole_number("spreadMs", spread_ms, 0.0, 2_147_483_647.0)?);
        let retry_ms = whole_number("retryMs", retry_ms, 0.0, 2_147_483_647.0)?;
        let retry_jitter_ms = whole_number("retryJitterMs", retry_jitter_ms, 0.0, 2_147_483_647.0)?;
        let farewell = data.is_some() || event.is_some() || event_id.is_some() || retry.is_some();
        let args = MessageArgs::new(data, event, event_id, retry);
        let text = data_text(&args.data);
        let message = args.message(&text)?;
        hub.close_staged(StagedClose {
            drain,
            spread,
            retry_ms,
            retry_jitter_ms,
            farewell: farewell.then_some(&message),
        })
        .map_err(sse_error)
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

    /// Counters and gauges, O(channels). After shutdown the counters remain, the gauges are 0.
    #[napi(catch_unwind)]
    pub fn metrics(&self, per_channel: bool) -> NativeMetrics {
        let metrics = match &self.hub {
            Some(hub) => hub.metrics(per_channel),
            None => Metrics {
                stats: self.stats.snapshot(),
                worker_threads: self.worker_threads,
                ..Default::default()
            },
        };
        NativeMetrics::of(metrics, per_channel)
    }

    #[napi(catch_unwind)]
    pub fn stats(&self) -> NativeHubStats {
        let (snapshot, levels) = match &self.hub {
            Some(hub) => (hub.stats(), hub.queue_levels()),
            None => (self.stats.snapshot(), Default::default()),
        };
        NativeHubStats {
            clients: levels.clients as u32,
            attached: snapshot.attached as f64,
            closed_client: snapshot.closed_client as f64,
            closed_error: snapshot.closed_error as f64,
            closed_timeout: snapshot.closed_timeout as f64,
            closed_slow: snapshot.closed_slow as f64,
            closed_server: snapshot.closed_server as f64,
            bytes_written: snapshot.bytes_written as f64,
            heartbeats: snapshot.heartbeats as f64,
            events_dropped: snapshot.events_dropped as f64,
            queued_events: levels.queued_events as f64,
            queued_bytes: levels.queued_bytes as f64,
            max_client_queued_bytes: levels.max_client_bytes as f64,
            held_events: levels.held_events as f64,
            held_bytes: levels.held_bytes as f64,
        }
    }
}

fn delivery(delivery: Delivery) -> u32 {
    match delivery {
        Delivery::Gone => 0,
        Delivery::Queued => 1,
        Delivery::AboveHighWater => 2,
    }
}

/// `Hub::send_many` as the binding's calls return it. Which item was refused is not told:
/// JS then sends the items one by one, so the caller gets the error `send` gives for it.
fn send_many(hub: &Hub, id: u64, messages: &[Message<'_>]) -> Result<u32, Code> {
    hub.send_many(id, messages)
        .map(delivery)
        .map_err(|(_, error)| sse_error(error))
}

fn sse_error(error: SseError) -> napi::Error<Code> {
    Code::from(&error).of(error)
}

/// The hub's defaults, the one place they are defined (`HubConfig::default`), in the units
/// of the JS options. `workerThreads` depends on the machine.
#[napi(catch_unwind)]
pub fn hub_defaults() -> NativeHubOptions {
    let config = HubConfig::default();
    NativeHubOptions {
        heartbeat_ms: config.heartbeat.as_millis() as f64,
        write_timeout_ms: config.write_timeout.as_millis() as f64,
        max_queue_events: config.max_queue_events as f64,
        max_queue_bytes: config.max_queue_bytes as f64,
        max_event_bytes: config.max_event_bytes as f64,
        overflow: match config.overflow {
            OverflowPolicy::Disconnect => "disconnect",
            OverflowPolicy::DropOldest => "drop-oldest",
        }
        .to_string(),
        high_water_mark: config.high_water_bytes as f64,
        // Off by default.
        history_max_events: None,
        history_max_bytes: None,
        history_max_age_ms: None,
        reset_event: config.reset_event.clone(),
        worker_threads: config.worker_threads as f64,
        max_clients: None,
        redis: None,
    }
}

/// Why this process cannot hand sockets to the native transport, or null when it can.
#[napi(catch_unwind)]
pub fn native_handoff_unavailable_reason() -> Option<&'static str> {
    uv::handoff_unavailable_reason()
}
