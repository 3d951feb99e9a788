//! Hub-wide settings, already validated by the caller (the binding checks types and ranges
//! and reports them with `ERR_SSE_*` codes).

use std::time::Duration;

/// What happens when a client's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverflowPolicy {
    /// Close the client with reason `slow`: it would otherwise miss events silently.
    Disconnect,
    /// Discard the oldest queued frames to make room, and count them.
    DropOldest,
}

/// How much of a log's tail is kept for resuming clients (`Last-Event-ID`). Off when either
/// count is 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct History {
    pub max_events: usize,
    pub max_bytes: usize,
    pub max_age: Option<Duration>,
}

impl History {
    /// What `history: true` keeps, each bound replaceable on its own: enough for a client
    /// that reconnects within seconds on a busy channel, 16 MiB at most per log.
    pub const DEFAULT_ON: History = History {
        max_events: 1000,
        max_bytes: 16 << 20,
        max_age: None,
    };

    pub fn is_on(&self) -> bool {
        self.max_events > 0 && self.max_bytes > 0
    }
}

#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Idle time after which a heartbeat comment is written.
    pub heartbeat: Duration,
    /// How long a connection may accept no bytes at all while data is pending.
    pub write_timeout: Duration,
    /// How far a client may lag, in frames: each log keeps at most this many (its window),
    /// and a client's mailbox holds at most this many.
    pub max_lag_events: usize,
    /// How far a client may lag, in bytes: each log's window and each mailbox's bound.
    pub max_lag_bytes: usize,
    /// The largest encoded frame (event or comment) accepted; at most `max_lag_bytes`.
    pub max_event_bytes: usize,
    pub overflow: OverflowPolicy,
    /// Bytes sent to one client (`send`, `comment`) and not yet written above which a send
    /// reports that the producer should wait for `drain`.
    pub high_water_bytes: usize,
    /// History kept by every log (broadcast and channels); off by default.
    pub history: History,
    /// The event a client gets when its `Last-Event-ID` cannot be resumed from.
    pub reset_event: String,
    /// Runtime worker threads.
    pub worker_threads: usize,
    /// Clients registered at once; past it `register` refuses (`Refusal::HubFull`).
    pub max_clients: usize,
    /// Channels one client may be subscribed to at once; more is the caller's error
    /// (`SseError::TooManyChannels`).
    pub max_channels_per_client: usize,
    /// How the logs compress for clients whose streams are gzip (gzip.rs); None: no client's
    /// stream may be (`Hub::use_gzip` refuses).
    pub gzip: Option<crate::gzip::GzipSettings>,
}

/// Accepts any 1 MiB payload whatever its line structure: each line break of `data` costs a
/// `data: ` prefix, so a payload made only of line breaks encodes to 7 bytes per input byte
/// (7 MiB + 7); the last MiB leaves room for `event` and `id`.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 8 << 20;
/// The lag window. A publisher burst may run this far ahead of clients that keep reading
/// without cutting them: measured on one server core, 20,000 events of 1 KB published one per
/// event-loop turn ran up to 32 MB ahead of 100 readers with a 16 MiB window (35 of them were
/// cut) and stayed within 16 MB with this one (none were). A log holds at most this much,
/// once, whatever the number of readers, and releases what every reader has passed.
pub const DEFAULT_MAX_LAG_BYTES: usize = 32 << 20;
/// The lag window in frames: the same burst of small events (100 B: 65,536 of them is 6.5 MB).
pub const DEFAULT_MAX_LAG_EVENTS: usize = 1 << 16;

/// Enough for a few thousand small tokens between two drains, small enough that a producer
/// feeding one client waits long before any bound applies.
pub const DEFAULT_HIGH_WATER_BYTES: usize = 64 << 10;

/// A peer that acknowledged nothing for this long while data waited for it is cut. Progress is
/// judged by what the peer acknowledges, never by how fast it reads, so a slow reader is never
/// cut; and a cut client resumes exactly, so cutting a stalled one costs a well-behaved client
/// one reconnect. At 30 s, a reader that stopped with 16 MB queued and a peer whose network
/// vanished with 4 MB queued were still connected 10 s later, holding 27 MB between them; at
/// 8 s (also the TCP user timeout) both are gone within 10 s.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_millis(8_000);

/// A client's writer merges its channels' logs by sequence number, so every event it is woken
/// for costs it O(its channels): about 33 ns a channel (60,000 channels: 2 ms an event, measured).
/// At this bound that is 33 us, and subscribing and leaving stay well under a millisecond; an
/// app that fans one client into more channels than this wants a channel per audience instead.
pub const DEFAULT_MAX_CHANNELS_PER_CLIENT: usize = 1000;

/// Named so it cannot be mistaken for an application's event. native-sse/client listens for
/// it by this name (a bundle cannot read this constant; a test holds the two together).
pub const DEFAULT_RESET_EVENT: &str = "sse-reset";

/// The query parameter native-sse/client carries the last event id in when it reconnects an
/// EventSource itself (a new EventSource cannot set the `Last-Event-ID` header); the hub reads
/// it where the header is missing. Same pact with the client as `DEFAULT_RESET_EVENT`.
pub const DEFAULT_LAST_EVENT_ID_QUERY: &str = "lastEventId";

/// `Retry-After` of a refused request (a full or closing hub): long enough that a crowd of
/// refused clients does not come straight back, short enough that a restarted node fills.
pub const DEFAULT_RETRY_AFTER_SECONDS: u32 = 5;

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            heartbeat: Duration::from_millis(15_000),
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            max_lag_events: DEFAULT_MAX_LAG_EVENTS,
            max_lag_bytes: DEFAULT_MAX_LAG_BYTES,
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            overflow: OverflowPolicy::Disconnect,
            high_water_bytes: DEFAULT_HIGH_WATER_BYTES,
            history: History::default(),
            reset_event: DEFAULT_RESET_EVENT.to_string(),
            worker_threads: default_worker_threads(),
            max_clients: usize::MAX,
            max_channels_per_client: DEFAULT_MAX_CHANNELS_PER_CLIENT,
            gzip: None,
        }
    }
}

/// Leaves the JS thread a core of its own: one worker on a two-core machine, never fewer than
/// one, and no more than four (the writers are I/O-bound; more threads only add wakeups).
pub fn default_worker_threads() -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    cores.saturating_sub(1).clamp(1, 4)
}
