//! Panics on demand, so the tests can prove that a panic in a hub call or in a writer task
//! never takes the process down. Compiled only with the `test-hooks` feature: release builds
//! contain none of it, and without the feature these are empty inline functions.

/// A comment with this text, passed to `Hub::broadcast_comment`, panics inside the hub call.
#[cfg(feature = "test-hooks")]
const PANIC_IN_HUB_CALL: &str = "native-sse:test-hooks:panic-in-hub-call";
/// A comment with this text panics in the writer task that takes it from its queue.
#[cfg(feature = "test-hooks")]
const PANIC_IN_WRITER: &str = "native-sse:test-hooks:panic-in-writer";

/// A client registered with a channel of this name panics inside `Hub::register`.
#[cfg(feature = "test-hooks")]
const PANIC_IN_REGISTER: &str = "native-sse:test-hooks:panic-in-register";

#[cfg(feature = "test-hooks")]
pub fn on_register(channels: &[String]) {
    if channels.iter().any(|c| c == PANIC_IN_REGISTER) {
        panic!("deliberate panic in register (test-hooks)");
    }
}

#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub fn on_register(_channels: &[String]) {}

#[cfg(feature = "test-hooks")]
pub fn on_hub_comment(text: &str) {
    if text == PANIC_IN_HUB_CALL {
        panic!("deliberate panic in a hub call (test-hooks)");
    }
}

#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub fn on_hub_comment(_text: &str) {}

#[cfg(feature = "test-hooks")]
pub fn on_writer_frame(frame: &[u8]) {
    let text = frame
        .strip_prefix(b": ")
        .and_then(|rest| rest.strip_suffix(b"\n\n"));
    if text == Some(PANIC_IN_WRITER.as_bytes()) {
        panic!("deliberate panic in a writer task (test-hooks)");
    }
}

#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub fn on_writer_frame(_frame: &[u8]) {}
