//! Taking over a connected TCP socket from its owner (Node) by file descriptor, and setting the
//! same vanished-peer detection on the sockets Node keeps.
//!
//! Both need a POSIX descriptor. Windows has none to give (Node reports `_handle.fd` as -1),
//! so there nothing is adopted or configured, and every client takes the Node transport.

use std::io;
use std::time::Duration;

#[cfg(unix)]
use socket2::{SockRef, TcpKeepalive};

/// A socket as Node names it (`_handle.fd`): a descriptor on POSIX systems. On Windows it
/// only carries "no socket" through the same signatures.
#[cfg(unix)]
pub type SocketFd = std::os::fd::RawFd;
#[cfg(not(unix))]
pub type SocketFd = i32;

#[cfg(unix)]
const KEEPALIVE_IDLE: Duration = Duration::from_secs(5);
#[cfg(unix)]
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
#[cfg(any(target_os = "linux", target_os = "android", target_os = "macos"))]
const KEEPALIVE_PROBES: u32 = 2;

/// Keepalive probes and `TCP_USER_TIMEOUT` catch peers that vanished without FIN or RST: such a
/// peer is otherwise noticed only once the send buffer fills, which an idle stream never does,
/// or after the kernel's retransmissions give up (about 15 minutes). With the user timeout, data
/// (a heartbeat, an event) left unacknowledged for `write_timeout` ends the connection with
/// `ETIMEDOUT`. Keepalive covers the quiet time between heartbeats: a first probe after 5 s of
/// silence, then 2 probes 2 s apart, so an idle peer that vanished is gone after about 9 s
/// rather than at the next heartbeat plus the timeout. The price is two 52-byte probes (and
/// their answers) per idle connection per 15 s heartbeat, sent and answered by the kernels.
///
/// A peer on loopback (a proxy on the same host, a load test) gets no keepalive: it cannot
/// vanish without its kernel, which is ours, sending FIN or RST; and probes are not free there.
/// Connections that arrived in one wave probe in step (the kernel fires timers due within the
/// same half second together), and each probe and its answer pass the receiving CPU's backlog
/// (`net.core.netdev_max_backlog`, 1,000 by default): 17,952 idle clients through 127.0.0.1
/// overflowed it by 35,000 packets in 10 s, and the user timeout then closed a third of those
/// clients, all of them reading.
///
/// `peer` is the peer's address as the caller read it, None for one that reset already (it
/// has no address any more): that one gets the probes, and its first write finds it gone.
#[cfg(unix)]
fn detect_vanished_peer(
    sock: &SockRef<'_>,
    peer: Option<std::net::IpAddr>,
    write_timeout: Duration,
) -> io::Result<()> {
    if peer.is_none_or(can_vanish) {
        set_keepalive(sock)?;
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    sock.set_tcp_user_timeout(Some(write_timeout))?;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = write_timeout;
    Ok(())
}

/// A first probe after KEEPALIVE_IDLE of silence, then KEEPALIVE_PROBES more.
#[cfg(unix)]
fn set_keepalive(sock: &SockRef<'_>) -> io::Result<()> {
    let keepalive = TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL);
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "macos"))]
    let keepalive = keepalive.with_retries(KEEPALIVE_PROBES);
    sock.set_tcp_keepalive(&keepalive)
}

/// The peer's IP address, None when it has none (it reset, or this is not an IP socket).
#[cfg(unix)]
fn peer_ip(sock: &SockRef<'_>) -> Option<std::net::IpAddr> {
    ip_of(&sock.peer_addr().ok()?)
}

#[cfg(unix)]
fn ip_of(address: &socket2::SockAddr) -> Option<std::net::IpAddr> {
    address.as_socket().map(|address| address.ip())
}

/// Whether a peer at `ip` can go silent without a FIN or an RST: any but one on loopback
/// (127.0.0.0/8, ::1, and 127.x as an IPv4-mapped IPv6 address, as a dual-stack listener
/// sees it).
#[cfg(unix)]
fn can_vanish(ip: std::net::IpAddr) -> bool {
    !ip.to_canonical().is_loopback()
}

/// The same vanished-peer detection on a socket Node keeps (the Node transport's HTTP/1
/// connection, or an HTTP/2 session's, where a peer silent for `write_timeout` is gone for
/// every stream). The fd is only configured, never owned or closed.
#[cfg(unix)]
pub fn watch_node_socket(fd: SocketFd, write_timeout: Duration) -> io::Result<()> {
    // SAFETY: the caller vouches that `fd` stays open for this call (it is Node's socket,
    // open while its response is); nothing is kept past it.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let sock = SockRef::from(&borrowed);
    require_stream(&sock)?;
    detect_vanished_peer(&sock, peer_ip(&sock), write_timeout)
}

#[cfg(not(unix))]
pub fn watch_node_socket(_fd: SocketFd, _write_timeout: Duration) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Refuses descriptors that are not stream sockets (a pipe, a file, a datagram socket) before
/// anything is set on them or written to them.
#[cfg(unix)]
fn require_stream(sock: &SockRef<'_>) -> io::Result<()> {
    match sock.r#type()? {
        socket2::Type::STREAM => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a stream socket",
        )),
    }
}

/// Whether `sock` is listening (`SO_ACCEPTCONN`): a listener is not connected either.
#[cfg(unix)]
fn is_listener(sock: &SockRef<'_>) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for writes of the sizes given, for this call only.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value != 0)
}

/// Duplicates `fd` and returns a non-blocking std stream for the copy. The caller's fd stays
/// valid and is the caller's to close: closing it later sends nothing to the peer while this
/// copy is open (a FIN goes out only when the last descriptor of the socket is closed).
#[cfg(unix)]
pub fn adopt_fd(fd: SocketFd, write_timeout: Duration) -> io::Result<std::net::TcpStream> {
    use std::os::fd::FromRawFd;
    // SAFETY: F_DUPFD_CLOEXEC only reads `fd`; an invalid fd yields EBADF, handled below.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `dup` is a fresh descriptor this function owns; the stream takes ownership.
    let stream = unsafe { std::net::TcpStream::from_raw_fd(dup) };
    let sock = SockRef::from(&stream);
    // Rejects descriptors that are not connected TCP sockets (a pipe, a listener) before any
    // data is written to them. A connection its peer reset while the head was flushing is
    // connected no longer, yet is taken all the same: the writer's first write sees the reset
    // and reports the peer's departure (`client`), as it would have a moment later, rather
    // than a failed handoff (`error`, a failure on our side).
    let peer = match sock.peer_addr() {
        Ok(address) => Some(address),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => None,
        Err(e) => return Err(e),
    };
    require_stream(&sock)?;
    if peer.is_none() && is_listener(&sock)? {
        return Err(io::ErrorKind::NotConnected.into());
    }
    stream.set_nonblocking(true)?;
    stream.set_nodelay(true)?;
    detect_vanished_peer(&sock, peer.as_ref().and_then(ip_of), write_timeout)?;
    Ok(stream)
}

/// As `adopt_fd`, for a connection the embedder's event loop accepted a moment ago and never
/// used (the front door: `hub.route()`): it is a connected TCP stream and non-blocking
/// already (libuv accepts with `SOCK_NONBLOCK`, which the duplicate shares), so only what an
/// adopted socket needs is set: three system calls fewer per connection in a wave.
#[cfg(unix)]
pub fn adopt_accepted_fd(fd: SocketFd, write_timeout: Duration) -> io::Result<std::net::TcpStream> {
    use std::os::fd::FromRawFd;
    // SAFETY: F_DUPFD_CLOEXEC only reads `fd`; an invalid fd yields EBADF, handled below.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `dup` is a fresh descriptor this function owns; the stream takes ownership.
    let stream = unsafe { std::net::TcpStream::from_raw_fd(dup) };
    stream.set_nodelay(true)?;
    let sock = SockRef::from(&stream);
    detect_vanished_peer(&sock, peer_ip(&sock), write_timeout)?;
    Ok(stream)
}

/// Reads and drops what `stream` (non-blocking) received so far: a request that was only
/// peeked at, which means nothing on an event stream. Bounded: a peer still sending is
/// drained by the writer as it goes (socket_sink.rs).
#[cfg(unix)]
pub fn discard_received(stream: &std::net::TcpStream) {
    use std::io::Read;
    let mut buffer = [0u8; 4096];
    let mut reader = stream;
    for _ in 0..4 {
        match reader.read(&mut buffer) {
            Ok(n) if n == buffer.len() => continue,
            _ => return,
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn adopted_sockets_get_nodelay_nonblocking_and_the_write_deadline() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let adopted = adopt_fd(accepted.as_raw_fd(), Duration::from_secs(5)).unwrap();
        assert_ne!(adopted.as_raw_fd(), accepted.as_raw_fd());
        let sock = SockRef::from(&adopted);
        assert!(sock.tcp_nodelay().unwrap());
        assert!(sock.nonblocking().unwrap());
        // A loopback peer: no probes (see detect_vanished_peer), the write deadline all the same.
        assert!(!sock.keepalive().unwrap());
        #[cfg(target_os = "linux")]
        assert_eq!(
            sock.tcp_user_timeout().unwrap(),
            Some(Duration::from_secs(5))
        );
        // What a peer off loopback gets (the netns suites see it end to end): an idle peer
        // that vanished is gone after 5 s + 2 x 2 s, well within 10 s.
        set_keepalive(&sock).unwrap();
        assert!(sock.keepalive().unwrap());
        #[cfg(target_os = "linux")]
        {
            assert_eq!(sock.tcp_keepalive_time().unwrap(), KEEPALIVE_IDLE);
            assert_eq!(sock.tcp_keepalive_interval().unwrap(), KEEPALIVE_INTERVAL);
            assert_eq!(sock.tcp_keepalive_retries().unwrap(), KEEPALIVE_PROBES);
        }
    }

    #[test]
    fn only_peers_off_loopback_can_vanish() {
        for loopback in ["127.0.0.1", "127.8.0.3", "::1", "::ffff:127.0.0.1"] {
            assert!(!can_vanish(loopback.parse().unwrap()), "{loopback}");
        }
        for elsewhere in ["10.0.0.2", "192.168.1.20", "2001:db8::1", "::ffff:10.0.0.2"] {
            assert!(can_vanish(elsewhere.parse().unwrap()), "{elsewhere}");
        }
    }

    #[test]
    fn node_sockets_get_the_same_detection_and_stay_the_callers() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut accepted, _) = listener.accept().unwrap();
        watch_node_socket(accepted.as_raw_fd(), Duration::from_millis(2500)).unwrap();
        let sock = SockRef::from(&accepted);
        // A loopback peer (see detect_vanished_peer).
        assert!(!sock.keepalive().unwrap());
        #[cfg(target_os = "linux")]
        assert_eq!(
            sock.tcp_user_timeout().unwrap(),
            Some(Duration::from_millis(2500))
        );
        // Still open and usable by its owner: nothing was taken over or closed.
        use std::io::{Read, Write};
        accepted.write_all(b"x").unwrap();
        let mut byte = [0u8; 1];
        peer.read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"x");
        let file = std::fs::File::open("/dev/null").unwrap();
        assert!(watch_node_socket(file.as_raw_fd(), Duration::from_secs(1)).is_err());
    }

    #[test]
    fn a_connection_its_peer_reset_is_adopted_and_its_first_write_says_the_peer_left() {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        // Closing with a zero linger sends RST.
        SockRef::from(&peer)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(peer);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while accepted.peer_addr().is_ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "the reset never arrived"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut adopted = adopt_fd(accepted.as_raw_fd(), Duration::from_secs(5)).unwrap();
        let error = adopted.write_all(b"0\r\n\r\n").unwrap_err();
        assert!(
            matches!(
                error.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
            ),
            "{error:?}"
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
