//! Hub events to JS through one weak ThreadsafeFunction per hub (DESIGN.md: one `uv_async_t`
//! for the hub instead of one per connection; weak so pending notifications alone do not keep
//! the process alive). Its queue is FIFO, which carries the core's ordering guarantee (a
//! client's writes, then its end or destroy, then its close) through to JS.

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{
    ThreadsafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode,
};
use native_sse_core::{CloseReason, HubEvents};

pub enum HubEvent {
    Closed(u64, CloseReason),
    Write(u64, Vec<u8>),
    End(u64),
    Destroy(u64),
    Drained(u64),
}

/// `(kind, clientId, payload)` as JS receives it.
pub type JsArgs = FnArgs<(u32, f64, Either3<Buffer, &'static str, Null>)>;

type EventFunction = ThreadsafeFunction<HubEvent, (), JsArgs, Status, false, true>;

pub struct JsEvents {
    function: EventFunction,
}

impl JsEvents {
    pub fn new(callback: &Function<'_, JsArgs, ()>) -> Result<Self> {
        let function = callback
            .build_threadsafe_function::<HubEvent>()
            .weak::<true>()
            .callee_handled::<false>()
            .build_callback(|ctx: ThreadsafeCallContext<HubEvent>| {
                Ok(FnArgs::from(match ctx.value {
                    HubEvent::Closed(id, reason) => (0u32, id as f64, Either3::B(reason.as_str())),
                    HubEvent::Write(id, bytes) => (1, id as f64, Either3::A(Buffer::from(bytes))),
                    HubEvent::End(id) => (2, id as f64, Either3::C(Null)),
                    HubEvent::Destroy(id) => (3, id as f64, Either3::C(Null)),
                    HubEvent::Drained(id) => (4, id as f64, Either3::C(Null)),
                }))
            })?;
        Ok(JsEvents { function })
    }

    fn send(&self, event: HubEvent) {
        // NonBlocking: called from runtime threads that must never wait on the JS thread. The
        // queue is unbounded, so this fails only while the function is being released
        // (environment teardown), when nobody is left to tell.
        let _ = self
            .function
            .call(event, ThreadsafeFunctionCallMode::NonBlocking);
    }
}

impl HubEvents for JsEvents {
    fn closed(&self, id: u64, reason: CloseReason) {
        self.send(HubEvent::Closed(id, reason));
    }

    fn write(&self, id: u64, bytes: Vec<u8>) {
        self.send(HubEvent::Write(id, bytes));
    }

    fn end(&self, id: u64) {
        self.send(HubEvent::End(id));
    }

    fn destroy(&self, id: u64) {
        self.send(HubEvent::Destroy(id));
    }

    fn drained(&self, id: u64) {
        self.send(HubEvent::Drained(id));
    }
}
