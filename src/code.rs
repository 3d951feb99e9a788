//! Stable error codes. The JS entry maps each code to the error class users expect
//! (`TypeError` for bad values, `RangeError` for sizes and ranges); the code itself reaches JS
//! as `err.code` through napi's error status.

use napi::Status;
use native_sse_core::SseError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    InvalidField,
    InvalidMessage,
    EventTooLarge,
    InvalidOption,
    InvalidRetry,
    ClientClosed,
    HubClosed,
    TransportUnavailable,
    BackendUnavailable,
    Internal,
    /// An error napi itself raised (argument conversion and the like), kept by name.
    Napi(Status),
}

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        match self {
            Code::InvalidField => "ERR_SSE_INVALID_FIELD",
            Code::InvalidMessage => "ERR_SSE_INVALID_MESSAGE",
            Code::EventTooLarge => "ERR_SSE_EVENT_TOO_LARGE",
            Code::InvalidOption => "ERR_SSE_INVALID_OPTION",
            Code::InvalidRetry => "ERR_SSE_INVALID_RETRY",
            Code::ClientClosed => "ERR_SSE_CLIENT_CLOSED",
            Code::HubClosed => "ERR_SSE_HUB_CLOSED",
            Code::TransportUnavailable => "ERR_SSE_TRANSPORT_UNAVAILABLE",
            Code::BackendUnavailable => "ERR_SSE_BACKEND_UNAVAILABLE",
            Code::Internal => "ERR_SSE_INTERNAL",
            Code::Napi(status) => status.as_ref(),
        }
    }
}

impl From<Status> for Code {
    fn from(status: Status) -> Self {
        Code::Napi(status)
    }
}

impl From<&SseError> for Code {
    fn from(error: &SseError) -> Self {
        match error {
            SseError::InvalidField { .. } => Code::InvalidField,
            SseError::MissingData => Code::InvalidMessage,
            SseError::EventTooLarge { .. } => Code::EventTooLarge,
            SseError::UnknownClient { .. } => Code::ClientClosed,
            // `register` answers refusals as a result, never as an error; should one surface
            // elsewhere, the closed hub is the nearest meaning.
            SseError::HubClosed | SseError::Refused(_) => Code::HubClosed,
            SseError::Adopt { .. } => Code::TransportUnavailable,
            SseError::BackendUnavailable { .. } => Code::BackendUnavailable,
        }
    }
}

impl Code {
    pub fn error(self, message: impl ToString) -> napi::Error<Code> {
        napi::Error::new(self, message)
    }

    pub fn of(self, error: SseError) -> napi::Error<Code> {
        napi::Error::new(self, error)
    }
}

/// A core error as the napi error JS receives, its code in `err.code`.
pub(crate) fn sse_error(error: SseError) -> napi::Error<Code> {
    Code::from(&error).of(error)
}
