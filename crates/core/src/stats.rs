//! Hub-wide counters. Relaxed atomics: they are read for metrics and tests, never to decide.
//! Each is bumped where its event happens (a register, a publish, a written batch), once per
//! call or batch, never per client on the publishing path: reading them is O(1).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::admission::Refusal;
use crate::close::CloseReason;
use crate::resume::{ResetReason, Resume};

/// Whom an accepted event was addressed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Audience {
    /// `broadcast`: every client.
    Broadcast = 0,
    /// `publish`: a channel's subscribers.
    Channel = 1,
    /// `send`: one client.
    Client = 2,
}

impl Audience {
    /// Who an event for `channel` (None: the broadcast log) reaches.
    pub(crate) fn of(channel: Option<&str>) -> Audience {
        match channel {
            Some(_) => Audience::Channel,
            None => Audience::Broadcast,
        }
    }
}

/// Which writer serves a client: what the connection gauges count it under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Transport {
    /// The runtime writes the socket it adopted.
    Native = 0,
    /// The embedder writes its batches (`HubEvents::write`) to an HTTP response it holds.
    Node = 1,
    /// The embedder writes its batches (`HubEvents::write`) into the body of a Fetch API
    /// `Response` it returned: no socket is known.
    Fetch = 2,
}

#[derive(Default)]
pub struct Stats {
    connections_opened: AtomicU64,
    closed: [AtomicU64; 6],
    bytes_written: AtomicU64,
    delivered: AtomicU64,
    heartbeats: AtomicU64,
    deadlines_extended: AtomicU64,
    events_dropped: AtomicU64,
    published: [AtomicU64; 3],
    refused: [AtomicU64; Refusal::ALL.len()],
    subscriptions_refused: AtomicU64,
    replayed: AtomicU64,
    resets: [AtomicU64; 5],
    /// Writers running, by transport: a gauge, raised when a writer starts and lowered when
    /// its client's departure is recorded.
    running: [AtomicU64; 3],
    /// The largest backlog of a log's slowest reader seen at an append.
    lag_max_events: AtomicU64,
    lag_max_bytes: AtomicU64,
    /// gzip streams (gzip.rs): the plain bytes encoded, and what they became on the wire
    /// (headers, heartbeats and trailers included).
    gzip_plain: AtomicU64,
    gzip_wire: AtomicU64,
}

/// A point-in-time copy of the counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub connections_opened: u64,
    pub closed_client: u64,
    pub closed_error: u64,
    pub closed_timeout: u64,
    pub closed_slow: u64,
    pub closed_server: u64,
    pub bytes_written: u64,
    /// Event frames written to clients, one per client per event (comments, heartbeats and
    /// the opening frame excluded).
    pub delivered: u64,
    pub heartbeats: u64,
    /// Times a blocked writer's deadline started again because its peer had acknowledged
    /// bytes meanwhile: a slow reader spared, where one that stopped would have been cut.
    pub deadlines_extended: u64,
    pub events_dropped: u64,
    pub published_broadcast: u64,
    pub published_channel: u64,
    pub published_client: u64,
    pub refused_hub_full: u64,
    pub refused_channel_full: u64,
    pub refused_closing: u64,
    pub refused_forbidden: u64,
    pub refused_authorization_failed: u64,
    pub subscriptions_refused: u64,
    pub resumes_replayed: u64,
    pub resets_unknown: u64,
    pub resets_foreign: u64,
    pub resets_expired: u64,
    /// Clients sent the reset signal mid-stream: events lost between the backend and this hub.
    pub resets_gap: u64,
    pub resets_ambiguous: u64,
    pub running_native: u64,
    pub running_node: u64,
    pub running_fetch: u64,
    pub lag_max_events: u64,
    pub lag_max_bytes: u64,
    /// Plain bytes encoded for gzip clients, and the bytes they became.
    pub gzip_plain_bytes: u64,
    pub gzip_wire_bytes: u64,
}

impl Stats {
    pub(crate) fn add_connection_opened(&self) {
        self.connections_opened.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_closed(&self, reason: CloseReason) {
        self.closed[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A written batch: its bytes, and the event frames among them.
    pub(crate) fn add_written(&self, bytes: usize, events: u64) {
        if bytes > 0 {
            self.bytes_written
                .fetch_add(bytes as u64, Ordering::Relaxed);
        }
        if events > 0 {
            self.delivered.fetch_add(events, Ordering::Relaxed);
        }
    }

    pub(crate) fn add_heartbeat(&self) {
        self.heartbeats.fetch_add(1, Ordering::Relaxed);
    }

    /// What a gzip client's batch encoded: `plain` bytes became `wire` bytes.
    pub(crate) fn add_gzip(&self, plain: u64, wire: u64) {
        if plain > 0 {
            self.gzip_plain.fetch_add(plain, Ordering::Relaxed);
        }
        if wire > 0 {
            self.gzip_wire.fetch_add(wire, Ordering::Relaxed);
        }
    }

    pub(crate) fn add_deadline_extended(&self) {
        self.deadlines_extended.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_dropped(&self, events: u64) {
        // Called for every batch, almost always with 0: skipping it keeps writers on different
        // threads off this shared cache line.
        if events > 0 {
            self.events_dropped.fetch_add(events, Ordering::Relaxed);
        }
    }

    pub(crate) fn add_published(&self, audience: Audience, events: u64) {
        self.published[audience as usize].fetch_add(events, Ordering::Relaxed);
    }

    /// Counts a refused attach (`Refusal` of a register) and hands the refusal back.
    pub fn add_refused(&self, refusal: Refusal) -> Refusal {
        self.refused[refusal as usize].fetch_add(1, Ordering::Relaxed);
        refusal
    }

    pub(crate) fn add_subscription_refused(&self) {
        self.subscriptions_refused.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_resume(&self, resume: Resume) {
        let counter = match resume {
            Resume::None => return,
            Resume::Replayed => &self.replayed,
            Resume::Reset(reason) => &self.resets[reason as usize],
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn writer_started(&self, transport: Transport) {
        self.running[transport as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn writer_ended(&self, transport: Transport) {
        self.running[transport as usize].fetch_sub(1, Ordering::Relaxed);
    }

    /// A log's slowest reader is `events` and `bytes` behind: kept if it is the most yet.
    pub(crate) fn saw_lag(&self, events: u64, bytes: u64) {
        // A load first: the maximum rarely moves, and a plain read leaves the line shared.
        if events > self.lag_max_events.load(Ordering::Relaxed) {
            self.lag_max_events.fetch_max(events, Ordering::Relaxed);
        }
        if bytes > self.lag_max_bytes.load(Ordering::Relaxed) {
            self.lag_max_bytes.fetch_max(bytes, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let closed = |r: CloseReason| load(&self.closed[r as usize]);
        StatsSnapshot {
            connections_opened: load(&self.connections_opened),
            closed_client: closed(CloseReason::Client),
            closed_error: closed(CloseReason::Error),
            closed_timeout: closed(CloseReason::Timeout),
            closed_slow: closed(CloseReason::Slow),
            closed_server: closed(CloseReason::Server),
            bytes_written: load(&self.bytes_written),
            delivered: load(&self.delivered),
            heartbeats: load(&self.heartbeats),
            deadlines_extended: load(&self.deadlines_extended),
            events_dropped: load(&self.events_dropped),
            published_broadcast: load(&self.published[Audience::Broadcast as usize]),
            published_channel: load(&self.published[Audience::Channel as usize]),
            published_client: load(&self.published[Audience::Client as usize]),
            refused_hub_full: load(&self.refused[Refusal::HubFull as usize]),
            refused_channel_full: load(&self.refused[Refusal::ChannelFull as usize]),
            refused_closing: load(&self.refused[Refusal::Closing as usize]),
            refused_forbidden: load(&self.refused[Refusal::Forbidden as usize]),
            refused_authorization_failed: load(
                &self.refused[Refusal::AuthorizationFailed as usize],
            ),
            subscriptions_refused: load(&self.subscriptions_refused),
            resumes_replayed: load(&self.replayed),
            resets_unknown: load(&self.resets[ResetReason::Unknown as usize]),
            resets_foreign: load(&self.resets[ResetReason::Foreign as usize]),
            resets_expired: load(&self.resets[ResetReason::Expired as usize]),
            resets_gap: load(&self.resets[ResetReason::Gap as usize]),
            resets_ambiguous: load(&self.resets[ResetReason::Ambiguous as usize]),
            running_native: load(&self.running[Transport::Native as usize]),
            running_node: load(&self.running[Transport::Node as usize]),
            running_fetch: load(&self.running[Transport::Fetch as usize]),
            lag_max_events: load(&self.lag_max_events),
            lag_max_bytes: load(&self.lag_max_bytes),
            gzip_plain_bytes: load(&self.gzip_plain),
            gzip_wire_bytes: load(&self.gzip_wire),
        }
    }
}
