//! Messages as they cross from JS: positional arguments (no object built per call), their
//! data as text, `retry` checked, and what a send did, as the number JS reads.

use std::borrow::Cow;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use native_sse_core::{Delivery, ErrorCode, Hub, Message, SseError};

use crate::code::{sse_error, Code, Raise};
use crate::options::whole_number;

pub(crate) fn client_id(id: f64) -> Result<u64, Code> {
    whole_number("client id", id, 1.0, 9_007_199_254_740_991.0)
}

/// The message fields as they arrive from JS, positional to avoid building an object per call.
pub(crate) struct MessageArgs {
    pub(crate) data: Option<Either<String, Buffer>>,
    event: Option<String>,
    id: Option<String>,
    retry: Option<f64>,
}

impl MessageArgs {
    pub(crate) fn new(
        data: Option<Either<String, Buffer>>,
        event: Option<String>,
        id: Option<String>,
        retry: Option<f64>,
    ) -> Self {
        MessageArgs {
            data,
            event,
            id,
            retry,
        }
    }

    /// No field given at all (a staged close without a farewell).
    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_none() && self.event.is_none() && self.id.is_none() && self.retry.is_none()
    }

    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&Message<'_>) -> std::result::Result<T, SseError>,
    ) -> Result<T, Code> {
        let data = data_text(&self.data);
        f(&self.message(&data)?).map_err(sse_error)
    }

    /// The message, its data already as text (`data_text` of `self.data`).
    pub(crate) fn message<'a>(
        &'a self,
        data: &'a Option<Cow<'a, str>>,
    ) -> Result<Message<'a>, Code> {
        Ok(Message {
            data: data.as_deref(),
            event: self.event.as_deref(),
            id: self.id.as_deref(),
            retry: retry_value(self.retry)?,
        })
    }
}

/// The body of `data` as text (see `native_sse_core::text`).
pub(crate) fn data_text(data: &Option<Either<String, Buffer>>) -> Option<Cow<'_, str>> {
    data.as_ref().map(|d| match d {
        Either::A(text) => Cow::Borrowed(text.as_str()),
        Either::B(buffer) => native_sse_core::text::text_of_bytes(buffer),
    })
}

pub(crate) fn retry_value(retry: Option<f64>) -> Result<Option<u64>, Code> {
    retry
        .map(|r| {
            // A browser's timer holds 2^31 - 1 ms at most; past it, it fires at once.
            whole_number("message.retry", r, 0.0, 2_147_483_647.0)
                .map_err(|e| ErrorCode::InvalidRetry.error(e.reason))
        })
        .transpose()
}

/// What a send to one client did, by name on both sides (`DeliveryCode.Queued` in JS).
#[napi]
pub enum DeliveryCode {
    /// The client is gone; nothing was queued.
    Gone,
    Queued,
    /// Queued, and the client's queue is above its high-water mark: wait for `drained`.
    AboveHighWater,
}

pub(crate) fn delivery(delivery: Delivery) -> DeliveryCode {
    match delivery {
        Delivery::Gone => DeliveryCode::Gone,
        Delivery::Queued => DeliveryCode::Queued,
        Delivery::AboveHighWater => DeliveryCode::AboveHighWater,
    }
}

/// What a send to one client did and what its queue holds after it: JS keeps that count to
/// tell, without another call, whether a send it holds back may cross the high-water mark.
#[napi(object)]
pub struct Sent {
    pub delivery: DeliveryCode,
    /// Bytes in the client's own queue after the send; 0 once it is gone.
    pub queued_bytes: f64,
}

pub(crate) fn sent(hub: &Hub, id: u64, outcome: Delivery) -> Sent {
    Sent {
        delivery: delivery(outcome),
        queued_bytes: hub.queued_bytes(id).unwrap_or(0) as f64,
    }
}

/// `Hub::send_many` as the binding's calls return it. Which item was refused is not told:
/// JS then sends the items one by one, so the caller gets the error `send` gives for it.
pub(crate) fn send_many(hub: &Hub, id: u64, messages: &[Message<'_>]) -> Result<Sent, Code> {
    hub.send_many(id, messages)
        .map(|outcome| sent(hub, id, outcome))
        .map_err(|(_, error)| sse_error(error))
}

/// `send_many` of events with data alone.
pub(crate) fn send_texts<T: AsRef<str>>(hub: &Hub, id: u64, texts: &[T]) -> Result<Sent, Code> {
    hub.send_texts(id, texts)
        .map(|outcome| sent(hub, id, outcome))
        .map_err(|(_, error)| sse_error(error))
}
