//! The error type the binding's methods return: a core error code (the one table,
//! `native_sse_core::ErrorCode`) or a failure napi raised itself, which reaches JS as
//! `err.code` through napi's error status. `errorCodes()` gives JS the table.

use napi::Status;
use napi_derive::napi;
use native_sse_core::{ErrorCode, SseError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Sse(ErrorCode),
    /// An error napi itself raised (argument conversion and the like), kept by name.
    Napi(Status),
}

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        match self {
            Code::Sse(code) => code.as_str(),
            Code::Napi(status) => status.as_ref(),
        }
    }
}

impl From<Status> for Code {
    fn from(status: Status) -> Self {
        Code::Napi(status)
    }
}

/// Raising a coded error with a message; implemented for the table's codes.
pub(crate) trait Raise {
    fn error(self, message: impl ToString) -> napi::Error<Code>;
}

impl Raise for ErrorCode {
    fn error(self, message: impl ToString) -> napi::Error<Code> {
        napi::Error::new(Code::Sse(self), message)
    }
}

/// A core error as the napi error JS receives, its code in `err.code`.
pub(crate) fn sse_error(error: SseError) -> napi::Error<Code> {
    error.code().error(error)
}

/// One entry of the error table: a code and the JS class (`TypeError`, `RangeError`,
/// `Error`) an error with that code raised by the core surfaces as.
#[napi(object, object_to_js = true, object_from_js = false)]
pub struct NativeErrorCode {
    pub code: &'static str,
    pub class: &'static str,
}

/// Every `ERR_SSE_*` code native-sse raises, from its one table.
#[napi(catch_unwind)]
pub fn error_codes() -> Vec<NativeErrorCode> {
    ErrorCode::ALL
        .iter()
        .map(|code| NativeErrorCode {
            code: code.as_str(),
            class: code.class().js_name(),
        })
        .collect()
}
