//! Errors a caller can cause. Each carries a stable `ERR_SSE_*` code that the binding exposes as
//! `err.code`, and a message that tells the caller what to change.

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

impl SseError {
    pub fn code(&self) -> &'static str {
        match self {
            SseError::InvalidField { .. } => "ERR_SSE_INVALID_FIELD",
            SseError::MissingData => "ERR_SSE_INVALID_MESSAGE",
            SseError::EventTooLarge { .. } => "ERR_SSE_EVENT_TOO_LARGE",
            SseError::UnknownClient { .. } => "ERR_SSE_CLIENT_CLOSED",
            SseError::HubClosed => "ERR_SSE_HUB_CLOSED",
            SseError::Refused(_) => "ERR_SSE_REFUSED",
            SseError::Adopt { .. } => "ERR_SSE_TRANSPORT_UNAVAILABLE",
            SseError::BackendUnavailable { .. } => "ERR_SSE_BACKEND_UNAVAILABLE",
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
                 send smaller events or raise maxEventBytes (and maxQueueBytes) in createHub()"
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
