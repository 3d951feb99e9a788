//! Detaching a socket from libuv's poller before Node closes its handle.
//!
//! Rust keeps the socket open through a duplicate descriptor. An epoll registration belongs to
//! the open socket, not to the fd number, and is dropped automatically only when the last
//! descriptor closes. libuv normally removes it while closing the handle, but on its io_uring
//! path that removal can be deferred past the close, where it fails and leaves a stale
//! registration that reports our socket's events under a number libuv may reuse. Removing it
//! ourselves, while Node's fd is still open, makes the handoff independent of that path.

use std::os::fd::RawFd;

use napi::Env;

#[cfg(target_os = "linux")]
extern "C" {
    // Exported by the Node executable, which the addon is loaded into.
    fn uv_backend_fd(event_loop: *const std::ffi::c_void) -> std::ffi::c_int;
}

#[cfg(target_os = "linux")]
pub fn forget_fd(env: &Env, fd: RawFd) {
    let Ok(event_loop) = env.get_uv_event_loop() else {
        return;
    };
    // SAFETY: the loop pointer comes from Node for this thread's environment and is alive for
    // the duration of this call.
    let epoll = unsafe { uv_backend_fd(event_loop as *const std::ffi::c_void) };
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
pub fn forget_fd(_env: &Env, _fd: RawFd) {}
