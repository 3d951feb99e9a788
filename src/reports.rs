//! What the hub reports to JS: `hub.metrics()`, `hub.stats()` and the Redis bridge's figures,
//! as plain objects of numbers (counters stay below 2^53 in any realistic lifetime).

use napi_derive::napi;
use native_sse_core::{Metrics, QueueLevels, StatsSnapshot};
use native_sse_redis::BridgeMetrics;

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
    /// Clients attached since the hub started (`connectionsOpened` in `metrics()`,
    /// `sse_connections_opened_total` in Prometheus).
    pub connections_opened: f64,
    /// Deprecated: the former name of `connectionsOpened`, same figure.
    pub attached: f64,
    /// Clients that left with reason `'client'` (see `CloseReason` in index.d.ts).
    pub closed_client: f64,
    /// Clients that left with reason `'error'`.
    pub closed_error: f64,
    /// Clients that left with reason `'timeout'`.
    pub closed_timeout: f64,
    /// Clients that left with reason `'slow'`.
    pub closed_slow: f64,
    /// Clients that left with reason `'server'`.
    pub closed_server: f64,
    /// Bytes handed to the kernel, HTTP chunk framing included.
    pub bytes_written: f64,
    /// Heartbeat comments written.
    pub heartbeats: f64,
    /// Times a blocked writer's deadline started again because the peer acknowledged bytes
    /// meanwhile: a slow reader spared (one that stopped would have been cut).
    pub deadlines_extended: f64,
    /// Events discarded under `overflow: 'drop-oldest'`.
    pub events_dropped: f64,
    /// Frames queued or in flight, summed over clients.
    pub queued_events: f64,
    /// Bytes queued or in flight, summed over clients (a shared frame counts once per client).
    pub queued_bytes: f64,
    /// The largest byte level of a single client: the figure `maxLagBytes` bounds.
    pub max_client_queued_bytes: f64,
    /// Frames the hub's channel logs hold (each once, however many clients read it).
    pub held_events: f64,
    /// Bytes the hub's channel logs hold: the memory shared frames take.
    pub held_bytes: f64,
}

/// `hub.metrics()` as the binding returns it; see `native_sse_core::Metrics`. Counters are
/// whole numbers below 2^53 in any realistic lifetime.
#[napi(object)]
pub struct NativeMetrics {
    pub connections_native: f64,
    pub connections_node: f64,
    pub connections_fetch: f64,
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
    pub resets_ambiguous: f64,
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
    pub(crate) fn of(metrics: Metrics, per_channel: bool) -> Self {
        let s = &metrics.stats;
        let running = s.running_native + s.running_node + s.running_fetch;
        NativeMetrics {
            connections_native: s.running_native as f64,
            connections_node: s.running_node as f64,
            connections_fetch: s.running_fetch as f64,
            connections_pending: metrics.clients.saturating_sub(running) as f64,
            connections_opened: s.connections_opened as f64,
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
            resets_ambiguous: s.resets_ambiguous as f64,
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

impl From<BridgeMetrics> for NativeRedisMetrics {
    fn from(m: BridgeMetrics) -> Self {
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
    }
}

impl NativeHubStats {
    pub(crate) fn of(snapshot: &StatsSnapshot, levels: &QueueLevels) -> Self {
        NativeHubStats {
            clients: levels.clients as u32,
            connections_opened: snapshot.connections_opened as f64,
            attached: snapshot.connections_opened as f64,
            closed_client: snapshot.closed_client as f64,
            closed_error: snapshot.closed_error as f64,
            closed_timeout: snapshot.closed_timeout as f64,
            closed_slow: snapshot.closed_slow as f64,
            closed_server: snapshot.closed_server as f64,
            bytes_written: snapshot.bytes_written as f64,
            heartbeats: snapshot.heartbeats as f64,
            deadlines_extended: snapshot.deadlines_extended as f64,
            events_dropped: snapshot.events_dropped as f64,
            queued_events: levels.queued_events as f64,
            queued_bytes: levels.queued_bytes as f64,
            max_client_queued_bytes: levels.max_client_bytes as f64,
            held_events: levels.held_events as f64,
            held_bytes: levels.held_bytes as f64,
        }
    }
}
