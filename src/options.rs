//! The hub's options as they cross from JS: DTOs, their range checks (`TryFrom`, each failure
//! an `ERR_SSE_INVALID_OPTION` naming the option), and the defaults JS reads back from the one
//! place they are defined (`HubConfig::default`).

use std::time::Duration;

use napi::Result;
use napi_derive::napi;
use native_sse_core::config::{DEFAULT_LAST_EVENT_ID_QUERY, DEFAULT_RETRY_AFTER_SECONDS};
use native_sse_core::{
    ChannelCompression, ErrorCode, GzipSettings, History, HubConfig, OverflowPolicy, StagedClose,
};
use native_sse_redis::RedisConfig;

use crate::code::{Code, Raise};

/// Hub options after JS-side defaults were applied. Times in milliseconds.
#[napi(object)]
pub struct NativeHubOptions {
    pub heartbeat_ms: f64,
    pub write_timeout_ms: f64,
    pub max_lag_events: f64,
    pub max_lag_bytes: f64,
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
    pub max_channels_per_client: f64,
    /// Absent: the hub is on its own.
    pub redis: Option<NativeRedisOptions>,
    /// Absent: no client's stream is compressed.
    pub compression: Option<NativeCompressionOptions>,
}

/// `createHub({ compression })` after JS-side defaults.
#[napi(object)]
pub struct NativeCompressionOptions {
    pub level: f64,
    pub keyframe_every: f64,
}

impl TryFrom<NativeCompressionOptions> for GzipSettings {
    type Error = napi::Error<Code>;

    fn try_from(options: NativeCompressionOptions) -> Result<GzipSettings, Code> {
        Ok(GzipSettings {
            level: whole_number("compression.level", options.level, 1.0, 9.0)? as u32,
            keyframe_every: whole_number(
                "compression.keyframeEvery",
                options.keyframe_every,
                1.0,
                65536.0,
            )? as u32,
        })
    }
}

/// What a traced publish asks of its delivery (lib/publish-trace.js): a token reported when
/// this process has delivered it (0: none), and a trace context that goes with the event to
/// every process.
#[napi(object)]
pub struct NativeWatch {
    pub token: f64,
    pub trace: Option<String>,
}

impl NativeWatch {
    pub fn token(&self) -> u64 {
        self.token as u64
    }

    pub fn trace(&self) -> Option<&str> {
        self.trace.as_deref().filter(|t| !t.is_empty())
    }
}

/// One entry of `createHub({ channels })` after JS-side checks.
#[napi(object)]
pub struct NativeStandingChannel {
    /// Its own history (the bounds below; all absent: off) rather than the hub's.
    pub own_history: bool,
    pub history_max_events: Option<f64>,
    pub history_max_bytes: Option<f64>,
    pub history_max_age_ms: Option<f64>,
    /// Absent: no cap.
    pub max_clients: Option<f64>,
    /// Absent: the hub's.
    pub compression: Option<NativeChannelCompression>,
}

/// A channel's `compression` after JS-side defaults: `false` is `off`; `true` or an object is
/// `settings` merged over the hub's.
#[napi(object)]
pub struct NativeChannelCompression {
    pub off: bool,
    pub settings: Option<NativeCompressionOptions>,
}

impl TryFrom<NativeChannelCompression> for ChannelCompression {
    type Error = napi::Error<Code>;

    fn try_from(options: NativeChannelCompression) -> Result<ChannelCompression, Code> {
        Ok(match (options.off, options.settings) {
            (true, _) => ChannelCompression::Off,
            (false, None) => ChannelCompression::Hub,
            (false, Some(settings)) => ChannelCompression::With(settings.try_into()?),
        })
    }
}

/// `createHub({ redis })` after JS-side defaults.
#[napi(object)]
pub struct NativeRedisOptions {
    pub url: String,
    pub prefix: String,
    pub max_buffer_events: f64,
    pub max_buffer_bytes: f64,
    pub stream_events: f64,
    pub recovery_ms: f64,
    pub reconnect_min_ms: f64,
    pub reconnect_max_ms: f64,
}

impl TryFrom<NativeRedisOptions> for RedisConfig {
    type Error = napi::Error<Code>;

    fn try_from(options: NativeRedisOptions) -> Result<RedisConfig, Code> {
        if options.prefix.is_empty() || options.prefix.contains(['{', '}']) {
            return Err(ErrorCode::InvalidOption.error(format!(
                "redis.prefix must be a non-empty string without braces (it becomes the keys' \
                 hash tag), got {:?}",
                options.prefix
            )));
        }
        let reconnect_min = millis("redis.reconnectMinMs", options.reconnect_min_ms)?;
        let reconnect_max = millis("redis.reconnectMaxMs", options.reconnect_max_ms)?;
        if reconnect_max < reconnect_min {
            return Err(ErrorCode::InvalidOption
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
            recovery: millis("redis.recoveryMs", options.recovery_ms)?,
            stream_events: whole_number("redis.streamEvents", options.stream_events, 1.0, 1e9)?
                as usize,
            reconnect_min,
            reconnect_max,
        })
    }
}

pub(crate) fn whole_number(name: &str, value: f64, min: f64, max: f64) -> Result<u64, Code> {
    if value.fract() != 0.0 || !(min..=max).contains(&value) {
        return Err(ErrorCode::InvalidOption.error(format!(
            "{name} must be a whole number from {min} to {max}, got {value}"
        )));
    }
    Ok(value as u64)
}

pub(crate) fn millis(name: &str, value: f64) -> Result<Duration, Code> {
    // Up to about 24 days, which keeps every deadline far from Instant overflow.
    Ok(Duration::from_millis(whole_number(
        name,
        value,
        1.0,
        2_147_483_647.0,
    )?))
}

/// History bounds (JS fills in `History::DEFAULT_ON` for `history: true`); absent events: off. 0 ms
/// means no age bound.
pub(crate) fn history(
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
        // The names are the JS API's, checked there (a wrong one is a TypeError); reaching
        // here with another is a bug in native-sse.
        let overflow = match options.overflow.as_str() {
            "disconnect" => OverflowPolicy::Disconnect,
            "drop-oldest" => OverflowPolicy::DropOldest,
            other => {
                return Err(ErrorCode::Internal
                    .error(format!("overflow '{other}' reached the core unchecked")))
            }
        };
        let max_lag_bytes =
            whole_number("maxLagBytes", options.max_lag_bytes, 64.0, 1e12)? as usize;
        let max_event_bytes =
            whole_number("maxEventBytes", options.max_event_bytes, 64.0, 1e12)? as usize;
        if max_event_bytes > max_lag_bytes {
            // An event the queue can never hold would be accepted and then cut every client.
            return Err(ErrorCode::InvalidOption.error(format!(
                "maxEventBytes ({max_event_bytes}) must not exceed maxLagBytes ({max_lag_bytes}); \
                 raise maxLagBytes or lower maxEventBytes"
            )));
        }
        let reset_event = options.reset_event;
        if reset_event.is_empty() || reset_event.contains(['\r', '\n']) {
            return Err(ErrorCode::InvalidOption.error(format!(
                "resetEvent must be a non-empty single-line event name (no CR or LF), got \
                     {reset_event:?}"
            )));
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
            max_lag_events: whole_number("maxLagEvents", options.max_lag_events, 1.0, 1e7)?
                as usize,
            max_lag_bytes,
            max_event_bytes,
            overflow,
            high_water_bytes: whole_number("highWaterMark", options.high_water_mark, 0.0, 1e12)?
                as usize,
            worker_threads: whole_number("workerThreads", options.worker_threads, 1.0, 64.0)?
                as usize,
            max_channels_per_client: whole_number(
                "maxChannelsPerClient",
                options.max_channels_per_client,
                1.0,
                1e6,
            )? as usize,
            max_clients: match options.max_clients {
                Some(max) => whole_number("maxClients", max, 0.0, 1e9)? as usize,
                None => usize::MAX,
            },
            gzip: options
                .compression
                .map(GzipSettings::try_from)
                .transpose()?,
        })
    }
}

/// What `history: true` keeps (`History::DEFAULT_ON`).
#[napi(object)]
pub struct NativeHistoryDefaults {
    pub max_events: f64,
    pub max_bytes: f64,
    /// 0: no age bound.
    pub max_age_ms: f64,
}

/// What `hub.close(options)` leaves out.
#[napi(object)]
pub struct NativeCloseDefaults {
    pub drain_ms: f64,
    pub spread_ms: f64,
    /// The `retry:` base when neither the close nor the hub sets one.
    pub retry_ms: f64,
    pub retry_jitter_ms: f64,
}

/// Every default of the JS API, each read from where the core defines it.
#[napi(object)]
pub struct NativeDefaults {
    pub hub: NativeHubOptions,
    pub history: NativeHistoryDefaults,
    /// `url` is empty: it has no default.
    pub redis: NativeRedisOptions,
    pub close: NativeCloseDefaults,
    /// What `compression: true` does.
    pub compression: NativeCompressionOptions,
    /// The query parameter that carries the last event id (shared with native-sse/client).
    pub last_event_id_query: String,
    pub retry_after_seconds: u32,
}

/// The defaults of every option, in the units of the JS options. `workerThreads` depends on
/// the machine.
#[napi(catch_unwind)]
pub fn defaults() -> NativeDefaults {
    let config = HubConfig::default();
    let history = History::DEFAULT_ON;
    let redis = RedisConfig::with_url(String::new());
    NativeDefaults {
        hub: NativeHubOptions {
            heartbeat_ms: config.heartbeat.as_millis() as f64,
            write_timeout_ms: config.write_timeout.as_millis() as f64,
            max_lag_events: config.max_lag_events as f64,
            max_lag_bytes: config.max_lag_bytes as f64,
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
            max_channels_per_client: config.max_channels_per_client as f64,
            redis: None,
            compression: None,
        },
        history: NativeHistoryDefaults {
            max_events: history.max_events as f64,
            max_bytes: history.max_bytes as f64,
            max_age_ms: history.max_age.map_or(0.0, |age| age.as_millis() as f64),
        },
        redis: NativeRedisOptions {
            url: redis.url,
            prefix: redis.prefix,
            max_buffer_events: redis.max_buffer_events as f64,
            max_buffer_bytes: redis.max_buffer_bytes as f64,
            stream_events: redis.stream_events as f64,
            recovery_ms: redis.recovery.as_millis() as f64,
            reconnect_min_ms: redis.reconnect_min.as_millis() as f64,
            reconnect_max_ms: redis.reconnect_max.as_millis() as f64,
        },
        close: NativeCloseDefaults {
            drain_ms: StagedClose::DEFAULT_DRAIN.as_millis() as f64,
            spread_ms: 0.0,
            retry_ms: StagedClose::DEFAULT_RETRY_MS as f64,
            retry_jitter_ms: StagedClose::DEFAULT_RETRY_JITTER_MS as f64,
        },
        compression: {
            let gzip = GzipSettings::default();
            NativeCompressionOptions {
                level: f64::from(gzip.level),
                keyframe_every: f64::from(gzip.keyframe_every),
            }
        },
        last_event_id_query: DEFAULT_LAST_EVENT_ID_QUERY.to_string(),
        retry_after_seconds: DEFAULT_RETRY_AFTER_SECONDS,
    }
}
