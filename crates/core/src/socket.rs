//! Taking over a connected TCP socket from its owner (Node) by file descriptor.

use std::io;
use std::os::fd::{FromRawFd, RawFd};
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};

/// Duplicates `fd` and returns a non-blocking std stream for the copy. The caller's fd stays
/// valid and is the caller's to close: closing it later sends nothing to the peer while this
/// copy is open (a FIN goes out only when the last descriptor of the socket is closed).
///
/// Keepalive probes and `TCP_USER_TIMEOUT` catch peers that vanished without FIN or RST: such a
/// peer is otherwise noticed only once the send buffer fills, which an idle stream never does.
pub fn adopt_fd(fd: RawFd, write_timeout: Duration) -> io::Result<std::net::TcpStream> {
    // SAFETY: F_DUPFD_CLOEXEC only reads `fd`; an invalid fd yields EBADF, handled below.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `dup` is a fresh descriptor this function owns; the stream takes ownership.
    let stream = unsafe { std::net::TcpStream::from_raw_fd(dup) };
    let sock = SockRef::from(&stream);
    // Rejects descriptors that are not connected TCP sockets (a pipe, a listener) before any
    // data is written to them.
    sock.peer_addr()?;
    match sock.r#type()? {
        socket2::Type::STREAM => {}
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a stream socket",
            ))
        }
    }
    stream.set_nonblocking(true)?;
    stream.set_nodelay(true)?;
    let probe = Duration::from_secs(15);
    let keepalive = TcpKeepalive::new().with_time(probe).with_interval(probe);
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "macos"))]
    let keepalive = keepalive.with_retries(4);
    sock.set_tcp_keepalive(&keepalive)?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    sock.set_tcp_user_timeout(Some(write_timeout))?;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = write_timeout;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn adopted_sockets_have_keepalive_nodelay_and_nonblocking_set() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let adopted = adopt_fd(accepted.as_raw_fd(), Duration::from_secs(5)).unwrap();
        assert_ne!(adopted.as_raw_fd(), accepted.as_raw_fd());
        let sock = SockRef::from(&adopted);
        assert!(sock.keepalive().unwrap());
        assert!(sock.tcp_nodelay().unwrap());
        assert!(sock.nonblocking().unwrap());
        #[cfg(target_os = "linux")]
        assert_eq!(
            sock.tcp_user_timeout().unwrap(),
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn non_sockets_and_listeners_are_refused() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(adopt_fd(listener.as_raw_fd(), Duration::from_secs(1)).is_err());
        assert!(adopt_fd(-1, Duration::from_secs(1)).is_err());
        let file = std::fs::File::open("/dev/null").unwrap();
        assert!(adopt_fd(file.as_raw_fd(), Duration::from_secs(1)).is_err());
    }
}
