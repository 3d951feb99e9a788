//! Binding-side switches for the tests, compiled only with the `test-hooks` feature (which
//! also turns on the core's deliberate panics). Release builds contain none of it.

/// `NATIVE_SSE_TEST_HIDE_UV_BACKEND_FD=1` makes the process look like an embedder that does
/// not export `uv_backend_fd`, to test the fallback to the Node transport.
#[cfg(feature = "test-hooks")]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub fn hide_uv_backend_fd() -> bool {
    std::env::var_os("NATIVE_SSE_TEST_HIDE_UV_BACKEND_FD").is_some_and(|v| v == "1")
}

#[cfg(not(feature = "test-hooks"))]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
#[inline(always)]
pub fn hide_uv_backend_fd() -> bool {
    false
}

/// Bytes the C allocator has handed out and not taken back, in every arena and in its own
/// mmaps, after returning what is free to the kernel. The churn test's measure of native
/// memory kept: RSS also counts freed memory glibc holds fragmented in its arenas, which on
/// the Node transport steps up by tens of MB between rounds with nothing leaked.
#[cfg(all(feature = "test-hooks", target_os = "linux", target_env = "gnu"))]
#[napi_derive::napi]
// Called from JS only; a `cargo test` build of this crate registers no napi functions.
#[cfg_attr(test, allow(dead_code))]
pub fn allocator_in_use() -> f64 {
    // SAFETY: both are plain glibc calls with no pointer arguments; malloc_trim(0) only
    // releases free pages and mallinfo2 reads the arenas' counters under their locks.
    let info = unsafe {
        libc::malloc_trim(0);
        libc::mallinfo2()
    };
    (info.uordblks + info.hblkhd) as f64
}
