//! The words that cross the seam as strings: why a client left or was refused, what its
//! `Last-Event-ID` resumed to, whether Redis is up. Each is a `#[napi(string_enum)]` that
//! mirrors a core enum, so JS receives exactly these values (binding.d.ts lists them and
//! index.d.ts documents them), a JS call that passes one is checked by napi, and the
//! conversions below are exhaustive: a new core variant does not compile until it has its
//! word here.
//!
//! napi still makes a JS string per crossing (`napi_create_string_utf8`): equal, not the same
//! heap string. lib/connection.js keeps one copy of the words a client holds for its life.

use napi_derive::napi;
use native_sse_core as core;

/// Why a client left (`native_sse_core::CloseReason`): `client.closeReason`, the `'close'`
/// event, `hub.metrics().closes`.
#[napi(string_enum = "lowercase")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    Client,
    Error,
    Timeout,
    Slow,
    Server,
}

/// Why a client was not registered (`native_sse_core::Refusal`): `client.refusal`.
#[napi(string_enum = "kebab-case")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    HubFull,
    ChannelFull,
    Closing,
    Forbidden,
    AuthorizationFailed,
}

/// What a client's `Last-Event-ID` resumed to (`native_sse_core::Resume`): `client.resume`.
#[napi(string_enum = "lowercase")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    None,
    Replayed,
    Reset,
}

/// Why a client was sent the reset event (`native_sse_core::ResetReason`):
/// `client.resetReason`.
#[napi(string_enum = "lowercase")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetReason {
    Unknown,
    Foreign,
    Expired,
    Ambiguous,
    Gap,
}

/// The state of the connection to Redis: the hub's `'backend'` event.
#[napi(string_enum = "lowercase")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendState {
    Up,
    Down,
}

impl From<core::CloseReason> for CloseReason {
    fn from(reason: core::CloseReason) -> Self {
        match reason {
            core::CloseReason::Client => CloseReason::Client,
            core::CloseReason::Error => CloseReason::Error,
            core::CloseReason::Timeout => CloseReason::Timeout,
            core::CloseReason::Slow => CloseReason::Slow,
            core::CloseReason::Server => CloseReason::Server,
        }
    }
}

impl From<CloseReason> for core::CloseReason {
    fn from(reason: CloseReason) -> Self {
        match reason {
            CloseReason::Client => core::CloseReason::Client,
            CloseReason::Error => core::CloseReason::Error,
            CloseReason::Timeout => core::CloseReason::Timeout,
            CloseReason::Slow => core::CloseReason::Slow,
            CloseReason::Server => core::CloseReason::Server,
        }
    }
}

impl From<core::Refusal> for Refusal {
    fn from(refusal: core::Refusal) -> Self {
        match refusal {
            core::Refusal::HubFull => Refusal::HubFull,
            core::Refusal::ChannelFull => Refusal::ChannelFull,
            core::Refusal::Closing => Refusal::Closing,
            core::Refusal::Forbidden => Refusal::Forbidden,
            core::Refusal::AuthorizationFailed => Refusal::AuthorizationFailed,
        }
    }
}

impl From<Refusal> for core::Refusal {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::HubFull => core::Refusal::HubFull,
            Refusal::ChannelFull => core::Refusal::ChannelFull,
            Refusal::Closing => core::Refusal::Closing,
            Refusal::Forbidden => core::Refusal::Forbidden,
            Refusal::AuthorizationFailed => core::Refusal::AuthorizationFailed,
        }
    }
}

impl From<core::ResetReason> for ResetReason {
    fn from(reason: core::ResetReason) -> Self {
        match reason {
            core::ResetReason::Unknown => ResetReason::Unknown,
            core::ResetReason::Foreign => ResetReason::Foreign,
            core::ResetReason::Expired => ResetReason::Expired,
            core::ResetReason::Ambiguous => ResetReason::Ambiguous,
            core::ResetReason::Gap => ResetReason::Gap,
        }
    }
}

/// A resume as it crosses: the outcome, and with a reset its reason.
pub(crate) fn resume(resume: core::Resume) -> (Resume, Option<ResetReason>) {
    match resume {
        core::Resume::None => (Resume::None, None),
        core::Resume::Replayed => (Resume::Replayed, None),
        core::Resume::Reset(reason) => (Resume::Reset, Some(reason.into())),
    }
}
