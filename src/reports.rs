//! What the hub reports to JS, in the shape JS users get: `hub.metrics()` (`HubMetrics`, with
//! the Redis bridge's `RedisMetrics`) and `hub.stats()` (`HubStats`). These structs are the one
//! definition of those objects: napi builds them nested as they are here, lib/metrics.js hands
//! them on unchanged, and index.d.ts re-exports their types from binding.d.ts, where these doc
//! comments land. Each figure is in one of them only. Counts are whole numbers below 2^53 in
//! any realistic lifetime.

use napi::bindgen_prelude::{Either, Null};
use napi_derive::napi;
use native_sse_core::{Metrics, QueueLevels, StatsSnapshot};
use native_sse_redis::BridgeMetrics;

/// `hub.metrics()`: counters since the hub started, gauges now. O(channels) to read.
#[napi(object, object_from_js = false)]
pub struct HubMetrics {
    /// Clients connected now, by transport.
    pub connections: ConnectionCounts,
    /// Clients attached since the hub started.
    pub connections_opened: f64,
    /// Clients that left, by reason (see `CloseReason` in index.d.ts).
    pub closes: CloseCounts,
    /// Attaches answered `503`, by refusal.
    pub refused: RefusalCounts,
    /// `client.subscribe()` calls refused by a channel's `maxClients`.
    pub subscriptions_refused: f64,
    /// Events accepted: `hub.broadcast()`, `hub.publish()`, and sends to one client.
    pub published: PublishCounts,
    /// Events written to clients, one per client per event (comments and heartbeats excluded).
    pub deliveries: f64,
    /// Body bytes written (native transport: HTTP chunk framing included).
    pub bytes_written: f64,
    /// gzip streams: the plain bytes encoded for their clients, and the bytes those became on
    /// the wire (in `bytesWritten` too).
    pub compression: CompressionCounts,
    /// Heartbeat comments written.
    pub heartbeats: f64,
    /// Events skipped under `overflow: 'drop-oldest'`.
    pub dropped: f64,
    /// How far the slowest reader of any channel is behind: now, and the most since start.
    pub lag: LagFigures,
    /// Attaches with a `Last-Event-ID`: replayed, or reset by reason.
    pub resumes: ResumeCounts,
    /// What the channel logs hold now: history, and what readers have not passed yet.
    pub held: EventsAndBytes,
    /// Channels that exist now.
    pub channels: f64,
    /// Threads of the hub's runtime.
    pub runtime_threads: f64,
    /// With `redis`: the bridge's state and counters; null without.
    pub redis: Either<RedisMetrics, Null>,
    /// With `{ perChannel }`: the most subscribed channels (1,000, or as many as asked), by name.
    pub per_channel: Option<Vec<ChannelMetrics>>,
}

/// `hub.metrics().connections`: clients connected now, by transport, as `client.transport`
/// names it.
#[napi(object, object_from_js = false)]
pub struct ConnectionCounts {
    /// Rust writes the socket.
    pub native: f64,
    /// Node writes the response.
    pub node: f64,
    /// The body of a `hub.response()`.
    pub fetch: f64,
    /// Attached, transport not started yet.
    pub pending: f64,
}

/// `hub.metrics().closes`: clients that left, by reason.
#[napi(object, object_from_js = false)]
pub struct CloseCounts {
    pub client: f64,
    pub error: f64,
    pub timeout: f64,
    pub slow: f64,
    pub server: f64,
}

/// `hub.metrics().refused`: attaches turned away (`503`, or `403` when forbidden), by refusal
/// (see `Refusal` in index.d.ts).
#[napi(object, object_from_js = false)]
pub struct RefusalCounts {
    /// The hub had `maxClients` clients.
    pub hub_full: f64,
    /// A channel asked for had its `maxClients` subscribers.
    pub channel_full: f64,
    /// The hub was closing, or closed.
    pub closing: f64,
    /// An authorization rule denied a channel asked for (`403`).
    pub forbidden: f64,
    /// An authorization check threw or did not answer within `authorizeTimeoutMs`.
    pub authorization_failed: f64,
}

/// `hub.metrics().published`: events accepted, by audience.
#[napi(object, object_from_js = false)]
pub struct PublishCounts {
    /// `hub.broadcast()`: every client.
    pub broadcast: f64,
    /// `hub.publish()`: a channel's subscribers.
    pub channel: f64,
    /// `client.send()`: one client.
    pub client: f64,
}

/// `hub.metrics().lag`: how far the slowest reader of any channel is behind.
#[napi(object, object_from_js = false)]
pub struct LagFigures {
    /// Events behind now.
    pub events: f64,
    /// Bytes behind now.
    pub bytes: f64,
    /// The most events behind since the hub started.
    pub max_events: f64,
    /// The most bytes behind since the hub started.
    pub max_bytes: f64,
}

/// `hub.metrics().resumes`: attaches with a `Last-Event-ID`, by outcome.
#[napi(object, object_from_js = false)]
pub struct ResumeCounts {
    /// Resumed: the client got every event after its id.
    pub replayed: f64,
    /// Sent the reset event, by reason.
    pub reset: ResetCounts,
}

/// `hub.metrics().resumes.reset`: clients sent the reset event, by reason.
#[napi(object, object_from_js = false)]
pub struct ResetCounts {
    /// An id this hub neither made nor keeps.
    pub unknown: f64,
    /// An id made by another hub, or by this process before a restart.
    pub foreign: f64,
    /// The history no longer reaches back to it.
    pub expired: f64,
    /// Mid-stream, not at attach: events lost on their way from Redis.
    pub gap: f64,
    /// An app id given to more than one event the history still holds.
    pub ambiguous: f64,
}

/// A number of events and their bytes.
#[napi(object, object_from_js = false)]
pub struct EventsAndBytes {
    pub events: f64,
    pub bytes: f64,
}

/// One entry of `hub.metrics({ perChannel: true }).perChannel`.
#[napi(object, object_from_js = false)]
pub struct ChannelMetrics {
    pub name: String,
    pub subscribers: f64,
    /// How far its slowest subscriber is behind.
    pub lag: EventsAndBytes,
    /// What its log holds.
    pub held: EventsAndBytes,
}

/// `hub.metrics().redis`: the Redis bridge's state and counters.
#[napi(object, object_from_js = false)]
pub struct RedisMetrics {
    /// Both connections (publishing, subscribed) are up.
    pub connected: bool,
    /// Events (and their bytes) published here and not yet applied by Redis.
    pub buffered: EventsAndBytes,
    /// Events published here that Redis applied.
    pub sent: f64,
    /// Events applied here from pub/sub.
    pub received: f64,
    /// Events applied here from the streams, after a reconnect or a gap.
    pub recovered: f64,
    /// Times a position skipped on pub/sub and the streams were read to fill it.
    pub gaps: f64,
    /// Channels whose clients got the reset signal (reason `gap`): the stream no longer held
    /// what they missed.
    pub gap_resets: f64,
    /// Connections to Redis lost (each followed by reconnecting).
    pub disconnects: f64,
    /// The signals between the namespace's processes (`sendSignal`).
    pub signals: SignalCounts,
}

/// `hub.metrics().redis.signals`: the signals sent from here and received here.
#[napi(object, object_from_js = false)]
pub struct SignalCounts {
    /// Signals (and their payload bytes) sent here and not yet taken by Redis.
    pub buffered: EventsAndBytes,
    /// Signals sent here that Redis took (one sent again after a lost connection counts again).
    pub sent: f64,
    /// Signals received here, this process's own included.
    pub received: f64,
    /// Signals dropped unsent, oldest first, because 1,024 signals or 1 MiB waited for Redis.
    pub dropped: f64,
    /// Messages on the signals channel that were not a signal (not UTF-8, or over 64 KiB),
    /// not passed on.
    pub ignored: f64,
}

/// `hub.metrics().compression`.
#[napi(object, object_from_js = false)]
pub struct CompressionCounts {
    pub plain_bytes: f64,
    pub wire_bytes: f64,
}

/// `hub.stats()`: what `metrics()` leaves out, for leak checks and tests. Chiefly how far
/// behind the clients are, which costs a visit of every client, so that no scrape pays for it;
/// monitor with `metrics()` (O(channels)), which alone has the counters and gauges.
#[napi(object, object_from_js = false)]
pub struct HubStats {
    /// Frames queued or in flight, summed over clients.
    pub queued_events: f64,
    /// Bytes queued or in flight, summed over clients (a shared frame counts once per client).
    pub queued_bytes: f64,
    /// The largest byte level of a single client: the figure `maxLagBytes` bounds.
    pub max_client_queued_bytes: f64,
    /// Times a blocked writer's deadline started again because the peer acknowledged bytes
    /// meanwhile: a slow reader spared (one that stopped would have been cut). A diagnostic
    /// of `writeTimeoutMs`, not one of the Prometheus series.
    pub deadlines_extended: f64,
}

fn amount(events: u64, bytes: u64) -> EventsAndBytes {
    EventsAndBytes {
        events: events as f64,
        bytes: bytes as f64,
    }
}

impl HubMetrics {
    pub(crate) fn of(metrics: Metrics, redis: Option<BridgeMetrics>, per_channel: bool) -> Self {
        let s = &metrics.stats;
        let running = s.running_native + s.running_node + s.running_fetch;
        HubMetrics {
            connections: ConnectionCounts {
                native: s.running_native as f64,
                node: s.running_node as f64,
                fetch: s.running_fetch as f64,
                pending: metrics.clients.saturating_sub(running) as f64,
            },
            connections_opened: s.connections_opened as f64,
            closes: CloseCounts {
                client: s.closed_client as f64,
                error: s.closed_error as f64,
                timeout: s.closed_timeout as f64,
                slow: s.closed_slow as f64,
                server: s.closed_server as f64,
            },
            refused: RefusalCounts {
                hub_full: s.refused_hub_full as f64,
                channel_full: s.refused_channel_full as f64,
                closing: s.refused_closing as f64,
                forbidden: s.refused_forbidden as f64,
                authorization_failed: s.refused_authorization_failed as f64,
            },
            subscriptions_refused: s.subscriptions_refused as f64,
            published: PublishCounts {
                broadcast: s.published_broadcast as f64,
                channel: s.published_channel as f64,
                client: s.published_client as f64,
            },
            deliveries: s.delivered as f64,
            bytes_written: s.bytes_written as f64,
            compression: CompressionCounts {
                plain_bytes: s.gzip_plain_bytes as f64,
                wire_bytes: s.gzip_wire_bytes as f64,
            },
            heartbeats: s.heartbeats as f64,
            dropped: s.events_dropped as f64,
            lag: LagFigures {
                events: metrics.lag_events as f64,
                bytes: metrics.lag_bytes as f64,
                max_events: s.lag_max_events as f64,
                max_bytes: s.lag_max_bytes as f64,
            },
            resumes: ResumeCounts {
                replayed: s.resumes_replayed as f64,
                reset: ResetCounts {
                    unknown: s.resets_unknown as f64,
                    foreign: s.resets_foreign as f64,
                    expired: s.resets_expired as f64,
                    gap: s.resets_gap as f64,
                    ambiguous: s.resets_ambiguous as f64,
                },
            },
            held: amount(metrics.held_events, metrics.held_bytes),
            channels: metrics.channels as f64,
            runtime_threads: metrics.worker_threads as f64,
            redis: match redis {
                Some(redis) => Either::A(redis.into()),
                None => Either::B(Null),
            },
            per_channel: per_channel.then(|| {
                metrics
                    .per_channel
                    .iter()
                    .map(|c| ChannelMetrics {
                        name: c.name.to_string(),
                        subscribers: c.subscribers as f64,
                        lag: amount(c.lag_events, c.lag_bytes),
                        held: amount(c.held_events, c.held_bytes),
                    })
                    .collect()
            }),
        }
    }
}

impl From<BridgeMetrics> for RedisMetrics {
    fn from(m: BridgeMetrics) -> Self {
        RedisMetrics {
            connected: m.connected,
            buffered: amount(m.buffered_events, m.buffered_bytes),
            sent: m.sent as f64,
            received: m.received as f64,
            recovered: m.recovered as f64,
            gaps: m.gaps as f64,
            gap_resets: m.gap_resets as f64,
            disconnects: m.disconnects as f64,
            signals: SignalCounts {
                buffered: amount(m.signals.buffered, m.signals.buffered_bytes),
                sent: m.signals.sent as f64,
                received: m.signals.received as f64,
                dropped: m.signals.dropped as f64,
                ignored: m.signals.ignored as f64,
            },
        }
    }
}

impl HubStats {
    pub(crate) fn of(snapshot: &StatsSnapshot, levels: &QueueLevels) -> Self {
        HubStats {
            queued_events: levels.queued_events as f64,
            queued_bytes: levels.queued_bytes as f64,
            max_client_queued_bytes: levels.max_client_bytes as f64,
            deadlines_extended: snapshot.deadlines_extended as f64,
        }
    }
}
