//! Detaching a socket from libuv's poller before Node closes its handle.
//!
//! Rust keeps the socket open through a duplicate descriptor. An epoll registration belongs to
//! the open socket, not to the fd number, and is dropped automatically only when the last
//! descriptor closes. libuv normally removes it while closing the handle, but on its io_uring
//! path that removal can be deferred past the close, where it fails and leaves a stale
//! registration that reports our socket's events under a number libuv may reuse. Removing it
//! ourselves, while Node's fd is still open, makes the handoff independent of that path.
//!
//! `uv_backend_fd` is looked up at run time rather than linked: a Node executable exports it,
//! but an embedder that does not would otherwise abort the process at the first handoff with
//! a symbol lookup error. Without it the handoff is unsafe, so attach falls back to the Node
//! transport (see `handoff_unavailable_reason`).

use native_sse_core::SocketFd;

use napi::Env;

#[cfg(target_os = "linux")]
mod backend {
    use std::ffi::{c_int, c_void};
    use std::sync::OnceLock;

    pub type BackendFd = unsafe extern "C" fn(*const c_void) -> c_int;

    /// The process-wide `uv_backend_fd`, if the process exports it.
    pub fn function() -> Option<BackendFd> {
        static FUNCTION: OnceLock<Option<BackendFd>> = OnceLock::new();
        *FUNCTION.get_or_init(|| {
            if crate::test_hooks::hide_uv_backend_fd() {
                return None;
            }
            // SAFETY: dlsym with RTLD_DEFAULT searches the symbols already loaded into the
            // process; the name is a valid NUL-terminated string.
            let symbol = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"uv_backend_fd".as_ptr()) };
            if symbol.is_null() {
                None
            } else {
                // SAFETY: libuv declares `int uv_backend_fd(const uv_loop_t*)`, which is this
                // signature; the symbol was found under that name.
                Some(unsafe { std::mem::transmute::<*mut c_void, BackendFd>(symbol) })
            }
        })
    }
}

/// Why sockets cannot be handed off in this process, or None when they can.
#[cfg(target_os = "linux")]
pub fn handoff_unavailable_reason() -> Option<&'static str> {
    match backend::function() {
        Some(_) => None,
        None => Some("this Node executable does not export libuv's uv_backend_fd"),
    }
}

/// macOS and the BSDs: kqueue forgets a descriptor's registrations when it is closed, so the
/// handoff needs nothing from libuv there.
#[cfg(all(unix, not(target_os = "linux")))]
pub fn handoff_unavailable_reason() -> Option<&'static str> {
    None
}

#[cfg(not(unix))]
pub fn handoff_unavailable_reason() -> Option<&'static str> {
    Some("Windows sockets have no file descriptor to hand over")
}

#[cfg(target_os = "linux")]
pub fn forget_fd(env: &Env, fd: SocketFd) {
    let Some(backend_fd) = backend::function() else {
        return;
    };
    let Ok(event_loop) = env.get_uv_event_loop() else {
        return;
    };
    // SAFETY: the loop pointer comes from Node for this thread's environment and is alive for
    // the duration of this call.
    let epoll = unsafe { backend_fd(event_loop as *const std::ffi::c_void) };
    if epoll < 0 {
        return;
    }
    // ENOENT (not registered, e.g. reading was already stopped and removed) is the common and
    // harmless outcome; nothing else can go wrong that the caller could act on.
    // SAFETY: plain syscall on descriptors owned by this process; a null event is allowed for
    // EPOLL_CTL_DEL since Linux 2.6.9.
    unsafe {
        libc::epoll_ctl(epoll, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut());
    }
}

#[cfg(not(target_os = "linux"))]
pub fn forget_fd(_env: &Env, _fd: SocketFd) {}
