//! Fan-out of native-sse hubs across processes (and machines) through Redis.
//!
//! Every hub of a namespace publishes through one Lua script that numbers the event (one
//! counter per namespace), appends it to its channel's stream (trimmed like the channel's
//! history), and announces it on one pub/sub channel. Every hub, the publisher's included,
//! applies the announcements in position order, so all deliver the same events with the same
//! ids in the same order. Pub/sub is at-most-once: a hub that sees a position skip, or that
//! lost its subscription, reads what it missed from the streams before going on, and where a
//! stream no longer holds it, sends the channel's clients the reset signal.
//!
//! Two tasks on the hub's runtime, each with its own connection and reconnect loop (backoff
//! with jitter): the sender (`sender`) empties the bounded outbound buffer (`outbound`) in
//! order, and the receiver (`receiver`) subscribes, catches up and applies.
//!
//! Why the `redis` crate: it is the maintained, tokio-native client (multiplexed pipelined
//! connection, pub/sub stream, `EVALSHA` scripts); its `ConnectionManager` reconnects but
//! fails the commands sent meanwhile and does not resubscribe by default, so the bridge owns
//! its retries (the outbound buffer) and its resubscription (the receiver's loop), and the
//! stream catch-up covers whatever pub/sub dropped in between.

mod announcement;
mod backoff;
mod keys;
mod outbound;
mod receiver;
mod scripts;
mod sender;
mod supervisor;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use native_sse_core::Hub;
use native_sse_core::HubHandle;
use redis::io::tcp::{socket2, TcpSettings};
use redis::{ConnectionAddr, IntoConnectionInfo};

use keys::Keys;
use outbound::Outbound;
use supervisor::Task;

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

/// The bridge's counters, for `hub.metrics().redis`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgeMetrics {
    pub connected: bool,
    pub buffered_events: u64,
    pub buffered_bytes: u64,
    /// Events Redis applied from this hub.
    pub sent: u64,
    /// Events applied here from pub/sub.
    pub received: u64,
    /// Events applied here from the streams after a gap or a reconnect.
    pub recovered: u64,
    /// Times the receiver read the streams to fill a gap.
    pub gaps: u64,
    /// Channels whose clients got the reset signal because a stream no longer held a gap.
    pub gap_resets: u64,
    /// Connections lost (either task), each followed by reconnecting.
    pub disconnects: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    sent: AtomicU64,
    received: AtomicU64,
    recovered: AtomicU64,
    gaps: AtomicU64,
    gap_resets: AtomicU64,
    disconnects: AtomicU64,
}

pub struct Bridge {
    hub: HubHandle,
    config: RedisConfig,
    keys: Keys,
    /// Where to connect: the URL's node, or the one Redis Cluster redirected to (MOVED).
    client: Mutex<redis::Client>,
    outbound: Arc<Outbound>,
    counters: Counters,
    /// This hub's publisher id (random), naming its idempotence key.
    publisher: u64,
    sender_up: AtomicBool,
    receiver_up: AtomicBool,
    /// What was last reported to the hub (None: nothing yet), so each change is told once.
    reported: Mutex<Option<bool>>,
    /// The first catch-up (history loaded) is done.
    loaded: AtomicBool,
}

/// Small writes leave at once (without `TCP_NODELAY`, Nagle's algorithm and the peer's
/// delayed ACK hold an announcement or a publish up to 40 ms), and a Redis host that vanished
/// without closing is noticed within seconds by keepalive probes and the unacknowledged-data
/// timeout, as the hub notices vanished clients, rather than by the kernel's defaults (hours).
fn tcp_settings() -> TcpSettings {
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(5))
        .with_interval(Duration::from_secs(2));
    let settings = TcpSettings::default()
        .set_nodelay(true)
        .set_keepalive(keepalive);
    // Linux's TCP_USER_TIMEOUT; elsewhere keepalive alone finds a vanished host.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let settings = settings.set_user_timeout(Duration::from_secs(10));
    settings
}

impl Bridge {
    /// Connects `hub` to Redis: publishes go through it from now on; the tasks connect in the
    /// background (a publish meanwhile waits in the buffer). Fails on an unusable URL.
    pub fn start(hub: &Hub, config: RedisConfig) -> Result<Arc<Bridge>, String> {
        let invalid = |e: redis::RedisError| format!("redis.url {:?}: {e}", config.url);
        let info = config
            .url
            .as_str()
            .into_connection_info()
            .map_err(invalid)?
            .set_tcp_settings(tcp_settings());
        let client = Mutex::new(redis::Client::open(info).map_err(invalid)?);
        let outbound = Arc::new(Outbound::new(
            config.max_buffer_events,
            config.max_buffer_bytes,
        ));
        let random = native_sse_core::resume::random_epoch;
        let publisher = (u64::from(random()) << 32) | u64::from(random());
        let bridge = Arc::new(Bridge {
            hub: hub.handle(),
            keys: Keys::new(&config.prefix),
            config,
            client,
            outbound: outbound.clone(),
            counters: Counters::default(),
            publisher,
            sender_up: AtomicBool::new(false),
            receiver_up: AtomicBool::new(false),
            reported: Mutex::new(None),
            loaded: AtomicBool::new(false),
        });
        hub.set_backend(outbound);
        hub.spawn(supervisor::supervise(
            bridge.clone(),
            Task::Sender,
            sender::run,
        ));
        hub.spawn(supervisor::supervise(
            bridge.clone(),
            Task::Receiver,
            receiver::run,
        ));
        Ok(bridge)
    }

    /// The client of the node to connect to now.
    pub(crate) fn client(&self) -> redis::Client {
        self.client
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Redis Cluster answered MOVED: the namespace's slot is served by another node (after a
    /// failover or a resharding, or the URL named another node). Connects there from now on;
    /// returns what to report when `error` was such a redirect.
    pub(crate) fn follow_redirect(&self, error: &redis::RedisError) -> Option<String> {
        // `(address, slot)`, the address `host:port` (an IPv6 host keeps its colons).
        let (address, _slot) = error.redirect_node()?;
        let (host, port) = address.rsplit_once(':')?;
        let port: u16 = port.parse().ok()?;
        let mut client = self.client.lock().unwrap_or_else(|e| e.into_inner());
        let info = client.get_connection_info().clone();
        let addr = match info.addr().clone() {
            ConnectionAddr::TcpTls {
                insecure,
                tls_params,
                ..
            } => ConnectionAddr::TcpTls {
                host: host.to_string(),
                port,
                insecure,
                tls_params,
            },
            _ => ConnectionAddr::Tcp(host.to_string(), port),
        };
        let redirected = redis::Client::open(info.set_addr(addr)).ok()?;
        *client = redirected;
        Some(format!("redirected by Redis Cluster to {host}:{port}"))
    }

    pub fn metrics(&self) -> BridgeMetrics {
        let (events, bytes) = self.outbound.pending();
        let c = &self.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        BridgeMetrics {
            connected: self.sender_up.load(Ordering::Acquire)
                && self.receiver_up.load(Ordering::Acquire),
            buffered_events: events as u64,
            buffered_bytes: bytes as u64,
            sent: load(&c.sent),
            received: load(&c.received),
            recovered: load(&c.recovered),
            gaps: load(&c.gaps),
            gap_resets: load(&c.gap_resets),
            disconnects: load(&c.disconnects),
        }
    }

    /// Events still waiting for Redis.
    pub fn pending(&self) -> usize {
        self.outbound.pending().0
    }

    /// The first catch-up is done: the history Redis holds is in this hub's logs.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// One task's connection came up or went down; the hub hears when the pair changes.
    pub(crate) fn set_up(&self, which: &AtomicBool, up: bool, detail: &str) {
        if !up && which.swap(false, Ordering::AcqRel) {
            self.counters.disconnects.fetch_add(1, Ordering::Relaxed);
        }
        which.store(up, Ordering::Release);
        let connected =
            self.sender_up.load(Ordering::Acquire) && self.receiver_up.load(Ordering::Acquire);
        // Either connection lost means Redis is away as far as a publisher is told: an idle
        // sender notices only at its next send, while the receiver's subscription notices
        // at once.
        self.outbound.connected.store(connected, Ordering::Release);
        let both = connected && self.is_loaded();
        let mut reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
        let changed = match *reported {
            // Down is first reported once a connection failed, not while it is still coming up.
            None => both || !up,
            Some(previous) => previous != both,
        };
        if changed {
            *reported = Some(both);
            drop(reported);
            self.hub.report_backend(both, detail);
        }
    }
}
