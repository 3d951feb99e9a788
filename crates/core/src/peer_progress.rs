//! Telling a peer that stopped reading from one that reads slowly.
//!
//! A socket is reported writable only once a good part of its send buffer is free (Linux: a
//! third of it, and the buffer autotunes to megabytes), so a peer that reads steadily but
//! slowly can leave the socket unwritable for longer than the write timeout. Counting our own
//! writes would cut such a client. The kernel counts the bytes the peer has acknowledged
//! (`TCP_INFO`'s `tcpi_bytes_acked`, Linux 4.1+), and the peer acknowledges only what its
//! receive buffer can take, which frees up only as it reads: a count that moved since the last
//! look is proof of life; only a peer that acknowledged nothing for a whole write timeout has
//! stopped reading. The count only grows, so it stays right while someone else (Node, on its
//! transport) keeps writing to the socket between two looks.

use crate::socket::SocketFd;

/// Bytes the peer of TCP socket `fd` has acknowledged so far, where the platform says.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn acknowledged_bytes(fd: SocketFd) -> Option<u64> {
    // SAFETY: tcp_info is plain data; all zeroes is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `info` and updates `len`; an fd that
    // is not a TCP socket makes the call fail, which is handled.
    let result = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    // A kernel older than the field returns a shorter struct without it.
    let needed = std::mem::offset_of!(libc::tcp_info, tcpi_bytes_acked) + 8;
    (result == 0 && len as usize >= needed).then_some(info.tcpi_bytes_acked)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn acknowledged_bytes(_fd: SocketFd) -> Option<u64> {
    None
}

/// Remembers what the peer had acknowledged at the last look.
pub(crate) struct PeerProgress {
    fd: Option<SocketFd>,
    acknowledged: Option<u64>,
}

impl PeerProgress {
    /// `fd`: the connection's TCP socket, or None where there is none to ask (then a write
    /// deadline is judged by our own writes alone).
    pub fn new(fd: Option<SocketFd>) -> Self {
        PeerProgress {
            fd,
            acknowledged: None,
        }
    }

    /// Starts watching from now (the writer just became blocked).
    pub fn mark(&mut self) {
        self.acknowledged = self.fd.and_then(acknowledged_bytes);
    }

    /// True if the peer acknowledged bytes since the last look; looks again either way.
    pub fn advanced(&mut self) -> bool {
        let before = self.acknowledged;
        self.mark();
        matches!((before, self.acknowledged), (Some(before), Some(now)) if now > before)
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;

    #[test]
    fn reading_on_the_peer_side_shows_as_progress() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut ours, _) = listener.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        let chunk = vec![7u8; 64 * 1024];
        // Fill both directions' buffers until the kernel takes no more.
        while ours.write(&chunk).is_ok() {}
        let mut progress = PeerProgress::new(Some(ours.as_raw_fd()));
        progress.mark();
        // Once the peer's receive buffer is full, nothing more is acknowledged.
        let settled = (0..100).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            !progress.advanced()
        });
        assert!(settled, "the peer kept acknowledging without reading");
        let mut sink = vec![0u8; 1 << 20];
        peer.read_exact(&mut sink).unwrap();
        // The kernel acknowledges as the window reopens; give it a moment, bounded.
        let advanced = (0..200).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(5));
            progress.advanced()
        });
        assert!(advanced);
        assert!(!PeerProgress::new(None).advanced());
    }
}
