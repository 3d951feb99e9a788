//! `createHub({ redis })`: what the bridge is told, and what it assumes where it is told
//! nothing (`RedisConfig::with_url`, the defaults JS reads).

use std::time::Duration;

/// `createHub({ redis })` after defaults.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`.
    pub url: String,
    /// Namespace: hubs with the same prefix share events.
    pub prefix: String,
    /// Bound of the outbound buffer, in events and bytes.
    pub max_buffer_events: usize,
    pub max_buffer_bytes: usize,
    /// Events a stream keeps for a channel without history: what a hub can recover after
    /// losing pub/sub messages.
    pub stream_events: usize,
    /// How long the stream of a channel without history is kept after its last event: what
    /// a hub away (or behind) can recover from. After it the stream and its bookkeeping go,
    /// so one-off channels do not pile up in Redis.
    pub recovery: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
}

impl RedisConfig {
    /// What `redis: 'redis://...'` leaves out. The buffer holds what is published while Redis
    /// is away (and what is on its way); streams of channels without history keep
    /// `stream_events`, what a hub can recover after a lost pub/sub message.
    pub fn with_url(url: String) -> RedisConfig {
        RedisConfig {
            url,
            prefix: "sse".to_string(),
            max_buffer_events: 100_000,
            max_buffer_bytes: 64 << 20,
            stream_events: 1000,
            recovery: Duration::from_secs(300),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_millis(5000),
        }
    }
}
