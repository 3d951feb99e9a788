//! Binding-side switches for the tests, compiled only with the `test-hooks` feature (which
//! also turns on the core's deliberate panics). Release builds contain none of it.

/// `NATIVE_SSE_TEST_HIDE_UV_BACKEND_FD=1` makes the process look like an embedder that does
/// not export `uv_backend_fd`, to test the fallback to the Node transport.
#[cfg(feature = "test-hooks")]
pub fn hide_uv_backend_fd() -> bool {
    std::env::var_os("NATIVE_SSE_TEST_HIDE_UV_BACKEND_FD").is_some_and(|v| v == "1")
}

#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub fn hide_uv_backend_fd() -> bool {
    false
}
