//! Errors a caller can cause, and the one table of the package's error codes. Each error
//! carries a stable `ERR_SSE_*` code that JS sees as `err.code`, and a message that tells the
//! caller what to change.

use std::fmt;

use crate::admission::Refusal;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseError {
    /// `event` or `id` would break the line structure of the stream.
    InvalidField { field: &'static str, reason: String },
    /// A message without `data` (other than one that only sets `retry`): clients dispatch no
    /// event for it, so it would be lost silently.
    MissingData,
    /// The encoded frame is larger than `max_event_bytes`.
    EventTooLarge { size: usize, limit: usize },
    /// More channels for one client than `max_channels_per_client`.
    TooManyChannels { count: usize, limit: usize },
    /// The client id names no connected client (it left, or was never attached).
    UnknownClient { id: u64 },
    /// The hub was closed; it accepts no new clients and no events.
    HubClosed,
    /// A new client was not accepted: the hub or a channel is full, or the hub is closing.
    Refused(Refusal),
    /// The socket could not be taken over (dup, non-blocking mode or registration failed).
    Adopt { reason: String },
    /// The shared backend (Redis) has been unreachable long enough that the bounded buffer of
    /// events waiting for it is full: this event was not taken.
    BackendUnavailable {
        events: usize,
        bytes: usize,
        /// Redis was connected (and not keeping up) rather than away.
        connected: bool,
    },
}

/// The JS class an error surfaces as: wrong values are `TypeError`s, sizes and ranges
/// `RangeError`s, states (a closed hub, a gone client, a missing transport) plain `Error`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Type,
    Range,
    Plain,
}

impl ErrorClass {
    pub fn js_name(self) -> &'static str {
        match self {
            ErrorClass::Type => "TypeError",
            ErrorClass::Range => "RangeError",
            ErrorClass::Plain => "Error",
        }
    }
}

macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $code:literal, $class:ident;)*) => {
        /// Every `ERR_SSE_*` code native-sse raises, from Rust or from its JS layer: the one
        /// table, exported to JS (`errorCodes()`), so neither side can spell a code the other
        /// does not know.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $variant,)*
        }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            /// The class of an error with this code raised by the core or the binding. JS-side
            /// checks raise the same code as a `TypeError` for a value of the wrong type and
            /// as a `RangeError` for one out of range.
            pub fn class(self) -> ErrorClass {
                match self {
                    $(ErrorCode::$variant => ErrorClass::$class,)*
                }
            }
        }
    };
}

error_codes! {
    /// `event` or `id` would break the stream's line structure, or has the wrong type.
    InvalidField = "ERR_SSE_INVALID_FIELD", Type;
    /// A message that is not `{ data, event?, id?, retry? }`, or has no `data`.
    InvalidMessage = "ERR_SSE_INVALID_MESSAGE", Type;
    /// `data` that is neither a string, bytes nor JSON-serializable.
    InvalidData = "ERR_SSE_INVALID_DATA", Type;
    /// A comment that is not a string.
    InvalidComment = "ERR_SSE_INVALID_COMMENT", Type;
    /// A channel name that is empty, too long or not well-formed Unicode.
    InvalidChannel = "ERR_SSE_INVALID_CHANNEL", Type;
    /// An argument of the wrong type (a request, a response, a callback).
    InvalidArgument = "ERR_SSE_INVALID_ARGUMENT", Type;
    /// An option object with a key no option has.
    UnknownOption = "ERR_SSE_UNKNOWN_OPTION", Type;
    /// An option out of its range (from Rust) or of the wrong type (from JS).
    InvalidOption = "ERR_SSE_INVALID_OPTION", Range;
    /// A `retry` that is not a non-negative whole number of milliseconds.
    InvalidRetry = "ERR_SSE_INVALID_RETRY", Range;
    /// An encoded event larger than `maxEventBytes`.
    EventTooLarge = "ERR_SSE_EVENT_TOO_LARGE", Range;
    /// More channels for one client than `maxChannelsPerClient`.
    TooManyChannels = "ERR_SSE_TOO_MANY_CHANNELS", Range;
    /// The client left.
    ClientClosed = "ERR_SSE_CLIENT_CLOSED", Plain;
    /// The hub is closed.
    HubClosed = "ERR_SSE_HUB_CLOSED", Plain;
    /// A new client was not accepted (the hub or a channel is full, or the hub is closing).
    Refused = "ERR_SSE_REFUSED", Plain;
    /// `transport: 'native'` where the socket cannot be handed over.
    TransportUnavailable = "ERR_SSE_TRANSPORT_UNAVAILABLE", Plain;
    /// Redis is away (or slow) and its bounded buffer is full.
    BackendUnavailable = "ERR_SSE_BACKEND_UNAVAILABLE", Plain;
    /// `attach` on a response whose head went out already.
    HeadersSent = "ERR_SSE_HEADERS_SENT", Plain;
    /// `attach` on a response already attached.
    AlreadyAttached = "ERR_SSE_ALREADY_ATTACHED", Plain;
    /// `attach` on a response whose status is not 200.
    InvalidStatus = "ERR_SSE_INVALID_STATUS", Plain;
    /// A stream that was stopped before its end.
    Stopped = "ERR_SSE_STOPPED", Plain;
    /// `publishStream` with the id of a stream that is still running.
    StreamLive = "ERR_SSE_STREAM_LIVE", Plain;
    /// `publishStream` with the id of an earlier stream its channel still holds.
    StreamHeld = "ERR_SSE_STREAM_HELD", Plain;
    /// `sharedHub(name, options)` with other options than the hub of that name was made with.
    HubOptionsChanged = "ERR_SSE_HUB_OPTIONS_CHANGED", Plain;
    /// An authorization rule denied a channel (`client.subscribe()`; at attach a `403`).
    Forbidden = "ERR_SSE_FORBIDDEN", Plain;
    /// An authorization check threw, or did not answer within `authorizeTimeoutMs`.
    AuthorizationFailed = "ERR_SSE_AUTHORIZATION_FAILED", Plain;
    /// An optional peer package (`prom-client`) that is not installed.
    MissingDependency = "ERR_SSE_MISSING_DEPENDENCY", Plain;
    /// No binary for this platform (raised before this table can be read).
    NoBinary = "ERR_SSE_NO_BINARY", Plain;
    /// A binary that is there but does not load (raised before this table can be read).
    BinaryLoadFailed = "ERR_SSE_BINARY_LOAD_FAILED", Plain;
    /// A bug in native-sse (a caught panic, a failed napi call), never the caller's.
    Internal = "ERR_SSE_INTERNAL", Plain;
}

impl SseError {
    pub fn code(&self) -> ErrorCode {
        match self {
            SseError::InvalidField { .. } => ErrorCode::InvalidField,
            SseError::MissingData => ErrorCode::InvalidMessage,
            SseError::EventTooLarge { .. } => ErrorCode::EventTooLarge,
            SseError::TooManyChannels { .. } => ErrorCode::TooManyChannels,
            SseError::UnknownClient { .. } => ErrorCode::ClientClosed,
            SseError::HubClosed => ErrorCode::HubClosed,
            SseError::Refused(_) => ErrorCode::Refused,
            SseError::Adopt { .. } => ErrorCode::TransportUnavailable,
            SseError::BackendUnavailable { .. } => ErrorCode::BackendUnavailable,
        }
    }
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SseError::InvalidField { field, reason } => write!(
                f,
                "message.{field} {reason}; `{field}` must be a single line (no CR or LF{}), \
                 so remove or encode those characters before sending",
                if *field == "id" { ", no NUL" } else { "" }
            ),
            SseError::MissingData => f.write_str(
                "message has no `data`; clients never dispatch an event without a data line, \
                 so pass `data: ''` for an empty event (only a message with `retry` alone may \
                 omit it)",
            ),
            SseError::EventTooLarge { size, limit } => write!(
                f,
                "encoded event is {size} bytes, more than maxEventBytes ({limit}); \
                 send smaller events or raise maxEventBytes (and maxLagBytes) in createHub()"
            ),
            SseError::TooManyChannels { count, limit } => write!(
                f,
                "a client may be subscribed to at most {limit} channels \
                 (maxChannelsPerClient), this would make {count}; publish to a channel per \
                 audience rather than subscribing one client to many, or raise \
                 maxChannelsPerClient in createHub()"
            ),
            SseError::UnknownClient { id } => write!(
                f,
                "client {id} is closed; listen for its 'close' event and stop sending to it"
            ),
            SseError::HubClosed => f.write_str(
                "the hub is closed; create a new hub with createHub() to serve more clients",
            ),
            SseError::Refused(refusal) => write!(
                f,
                "the client was refused ({}): answer 503 with Retry-After",
                refusal.as_str()
            ),
            SseError::Adopt { reason } => write!(
                f,
                "the socket could not be handed to the native transport: {reason}"
            ),
            SseError::BackendUnavailable {
                events,
                bytes,
                connected,
            } => write!(
                f,
                "{} and {events} events ({bytes} bytes) already wait for it, the most \
                 redis.maxBufferEvents / redis.maxBufferBytes allow; this event was not \
                 published: retry later (once the hub's 'backend' event says 'up'), publish \
                 less at once, or raise the limits",
                if *connected {
                    "Redis is not keeping up"
                } else {
                    "Redis is unreachable"
                }
            ),
        }
    }
}

impl std::error::Error for SseError {}
