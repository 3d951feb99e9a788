//! The bridge's shared state: one `Bridge` per hub, held by the sender, the receiver and the
//! signaler (each through its supervisor) and by the binding, which reads `metrics()` and
//! queues signals (`send_signal`). It owns where to connect (following Redis Cluster's
//! redirects), the state of the sender's and the receiver's connections, and what the hub was
//! last told of them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use native_sse_core::HubHandle;
use redis::io::tcp::{socket2, TcpSettings};
use redis::{ConnectionAddr, IntoConnectionInfo};

use crate::config::RedisConfig;
use crate::keys::Keys;
use crate::outbound::Outbound;
use crate::signals::{
    SignalTooLarge, Signals, MAX_BUFFERED_SIGNALS, MAX_BUFFERED_SIGNAL_BYTES, MAX_SIGNAL_BYTES,
};

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
    pub signals: SignalMetrics,
}

/// The signals' counters (`Bridge::send_signal`, `HubEvents::signal`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignalMetrics {
    /// Signals (and their payload bytes) waiting for Redis.
    pub buffered: u64,
    pub buffered_bytes: u64,
    /// Signals Redis took from this hub (one resent after a lost connection counts again).
    pub sent: u64,
    /// Signals handed to the hub's embedder, this hub's own included.
    pub received: u64,
    /// Signals dropped unsent, oldest first, because the buffer was full.
    pub dropped: u64,
    /// Messages on the signals channel that were no signal (not UTF-8, or over the size
    /// limit), not handed on.
    pub ignored: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) sent: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) recovered: AtomicU64,
    pub(crate) gaps: AtomicU64,
    pub(crate) gap_resets: AtomicU64,
    pub(crate) disconnects: AtomicU64,
    pub(crate) signals_sent: AtomicU64,
    pub(crate) signals_received: AtomicU64,
    pub(crate) signals_ignored: AtomicU64,
}

/// A hub's link to Redis: what the sender and the receiver share (where to connect, the
/// outbound buffer, the namespace's keys), the state of both connections and what the hub was
/// last told of it, and the counters `metrics()` reads.
pub struct Bridge {
    pub(crate) hub: HubHandle,
    pub(crate) config: RedisConfig,
    pub(crate) keys: Keys,
    /// Where to connect: the URL's node, or the one Redis Cluster redirected to (MOVED).
    client: Mutex<redis::Client>,
    pub(crate) outbound: Arc<Outbound>,
    /// Signals waiting for the signaler.
    pub(crate) signals: Signals,
    pub(crate) counters: Counters,
    /// This hub's publisher id (random), naming its idempotence key.
    pub(crate) publisher: u64,
    pub(crate) sender_up: AtomicBool,
    pub(crate) receiver_up: AtomicBool,
    /// What was last reported to the hub (None: nothing yet), so each change is told once.
    reported: Mutex<Option<bool>>,
    /// The first catch-up (history loaded) is done.
    pub(crate) loaded: AtomicBool,
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
    /// The link of `hub` to the Redis that `config` names, its tasks not started yet. Fails on
    /// an unusable URL.
    pub(crate) fn new(hub: HubHandle, config: RedisConfig) -> Result<Bridge, String> {
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
        Ok(Bridge {
            hub,
            keys: Keys::new(&config.prefix),
            config,
            client,
            outbound,
            signals: Signals::new(MAX_BUFFERED_SIGNALS, MAX_BUFFERED_SIGNAL_BYTES),
            counters: Counters::default(),
            publisher,
            sender_up: AtomicBool::new(false),
            receiver_up: AtomicBool::new(false),
            reported: Mutex::new(None),
            loaded: AtomicBool::new(false),
        })
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
        let (signals, signal_bytes) = self.signals.pending();
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
            signals: SignalMetrics {
                buffered: signals as u64,
                buffered_bytes: signal_bytes as u64,
                sent: load(&c.signals_sent),
                received: load(&c.signals_received),
                dropped: self.signals.dropped(),
                ignored: load(&c.signals_ignored),
            },
        }
    }

    /// Publishes `payload` to every hub of the namespace subscribed now, this one included
    /// (their embedders get `HubEvents::signal`), after the signals sent before it: queues it
    /// and returns. While Redis is away it waits, within the buffer's bound, whose oldest are
    /// dropped (counted) to make room. Refused over `MAX_SIGNAL_BYTES` of UTF-8.
    pub fn send_signal(&self, payload: &str) -> Result<(), SignalTooLarge> {
        self.signals.push(payload)
    }

    /// A message on the signals channel: handed to the embedder when it is a signal (UTF-8,
    /// within the size limit), counted as ignored otherwise. It crossed Redis: anything with
    /// the right to publish there may have sent it, so it is passed on as text only.
    pub(crate) fn receive_signal(&self, payload: &[u8]) {
        let text = (payload.len() <= MAX_SIGNAL_BYTES)
            .then(|| std::str::from_utf8(payload).ok())
            .flatten();
        let Some(text) = text else {
            self.counters
                .signals_ignored
                .fetch_add(1, Ordering::Relaxed);
            return;
        };
        self.counters
            .signals_received
            .fetch_add(1, Ordering::Relaxed);
        self.hub.report_signal(text);
    }

    /// Events and signals still waiting for Redis: what `hub.close()` gives its time to leave
    /// (a revoke or a presence goodbye sent just before it would be lost otherwise).
    pub fn pending(&self) -> usize {
        self.outbound.pending().0 + self.signals.pending().0
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
