//! Reading a request head off a freshly accepted socket without taking it: the front door
//! (`hub.listen(server, path)` in JS) looks at each new connection's first request before
//! Node does, and only a `GET` for the hub's path is served from here. Everything else must
//! reach Node exactly as it arrived, so the bytes are only peeked (`MSG_PEEK`), never read:
//! the kernel keeps them for whoever takes the connection. An adopted socket's writer later
//! reads and discards them with anything else the client sends (socket_sink.rs).

use crate::socket::SocketFd;

/// The most a head may take here: Node's default `maxHeaderSize` (16 KiB); the embedder may
/// ask for less (its server's own `maxHeaderSize`). A longer one goes to Node, which answers
/// it `431`.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Headers beyond this many: the request goes to Node.
const MAX_HEADERS: usize = 64;

/// A complete, well-formed HTTP/1.1 request head without a body, as peeked.
#[derive(Debug, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    /// The request target as sent (`/events?room=a`).
    pub target: String,
    /// Names lowercased; values as Node gives them (each byte one Latin-1 character).
    pub headers: Vec<(String, String)>,
}

/// Why a peeked connection is not taken (it goes to Node as it came).
#[derive(Debug, PartialEq, Eq)]
pub enum NotTaken {
    /// Nothing, or only part of a head, has arrived yet.
    Incomplete,
    /// Not a head this front door serves: malformed, too long, HTTP/1.0, with a body, an
    /// upgrade or an expectation. Node answers or serves it.
    Other,
}

/// Parses `bytes` (what the peer sent so far, at most `limit` bytes of head) as the front
/// door takes a request. Only what Node's parser would take as it is: anything it answers
/// itself (400, 431) or treats specially goes to it.
pub fn parse_request_head(bytes: &[u8], limit: usize) -> Result<RequestHead, NotTaken> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let length = match request.parse(bytes) {
        Ok(httparse::Status::Complete(length)) if length <= limit => length,
        Ok(httparse::Status::Partial) if bytes.len() < limit => return Err(NotTaken::Incomplete),
        _ => return Err(NotTaken::Other),
    };
    let target = request.path.unwrap_or_default();
    if request.version != Some(1) || has_bare_line_feed(&bytes[..length]) || !visible_ascii(target)
    {
        return Err(NotTaken::Other);
    }
    let mut taken = Vec::with_capacity(request.headers.len());
    let mut host = false;
    let mut length_seen = false;
    for header in request.headers.iter() {
        let name = header.name.to_ascii_lowercase();
        // A body, a protocol switch or an interim answer is Node's to handle, as is a length
        // given twice (a 400 there).
        let refused = match name.as_str() {
            "transfer-encoding" | "upgrade" | "expect" => true,
            "content-length" => std::mem::replace(&mut length_seen, true) || header.value != b"0",
            "host" => {
                host = true;
                false
            }
            _ => false,
        };
        if refused {
            return Err(NotTaken::Other);
        }
        taken.push((name, latin1(header.value)));
    }
    // HTTP/1.1 requires Host; Node answers its absence 400 (requireHostHeader).
    if !host {
        return Err(NotTaken::Other);
    }
    Ok(RequestHead {
        method: request.method.unwrap_or_default().to_owned(),
        target: target.to_owned(),
        headers: taken,
    })
}

/// Lines ended by LF alone, which httparse allows and Node's parser refuses.
fn has_bare_line_feed(head: &[u8]) -> bool {
    head.iter()
        .enumerate()
        .any(|(at, &byte)| byte == b'\n' && (at == 0 || head[at - 1] != b'\r'))
}

/// A target of visible ASCII only: httparse takes bytes past 0x7F (UTF-8) in it, which Node's
/// parser answers 400.
fn visible_ascii(target: &str) -> bool {
    target.bytes().all(|byte| byte.is_ascii_graphic())
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&byte| byte as char).collect()
}

/// Peeks at what `fd` received and parses it as a request head of at most `limit` bytes (see
/// `parse_request_head`; capped at MAX_HEAD_BYTES). The socket is non-blocking (libuv
/// accepted it): nothing arrived yet is `Incomplete`.
#[cfg(unix)]
pub fn peek_request_head(fd: SocketFd, limit: usize) -> Result<RequestHead, NotTaken> {
    let limit = limit.min(MAX_HEAD_BYTES);
    let mut buffer = [0u8; MAX_HEAD_BYTES + 1];
    // SAFETY: `fd` is the caller's open socket for the duration of this call; the buffer is
    // ours and as long as the length given.
    // One byte past the limit tells a head too long from one that fits exactly.
    let received = unsafe {
        libc::recv(
            fd,
            buffer.as_mut_ptr().cast(),
            limit + 1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if received < 0 {
        return Err(NotTaken::Incomplete);
    }
    if received == 0 {
        // The peer closed before sending anything: Node sees the end itself.
        return Err(NotTaken::Other);
    }
    parse_request_head(&buffer[..received as usize], limit)
}

#[cfg(not(unix))]
pub fn peek_request_head(_fd: SocketFd, _limit: usize) -> Result<RequestHead, NotTaken> {
    Err(NotTaken::Other)
}

/// Sets the accept queue of listener `fd` (already listening) to `backlog`: `listen()` again
/// on a listening socket only changes its queue. The kernel caps it at `net.core.somaxconn`.
/// A reconnect wave's handshakes then wait in the queue instead of being dropped, which costs
/// each dropped one the client's SYN retry (1 s).
#[cfg(unix)]
pub fn set_backlog(fd: SocketFd, backlog: u32) -> bool {
    let backlog = backlog.min(libc::c_int::MAX as u32) as libc::c_int;
    // SAFETY: listen() on the caller's descriptor; a non-listening one fails with an error.
    unsafe { libc::listen(fd, backlog) == 0 }
}

#[cfg(not(unix))]
pub fn set_backlog(_fd: SocketFd, _backlog: u32) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<RequestHead, NotTaken> {
        parse_request_head(bytes, MAX_HEAD_BYTES)
    }

    #[test]
    fn takes_a_plain_get_with_lowercased_names() {
        let head = parse(
            b"GET /events?room=a HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 41\r\nAccept: text/event-stream\r\n\r\n",
        )
        .unwrap();
        assert_eq!(head.method, "GET");
        assert_eq!(head.target, "/events?room=a");
        assert_eq!(
            head.headers,
            vec![
                ("host".into(), "x".into()),
                ("last-event-id".into(), "41".into()),
                ("accept".into(), "text/event-stream".into()),
            ]
        );
    }

    #[test]
    fn a_head_still_arriving_is_incomplete() {
        assert_eq!(
            parse(b"GET /events HTTP/1.1\r\nHost: x\r\n"),
            Err(NotTaken::Incomplete)
        );
        assert_eq!(parse(b""), Err(NotTaken::Incomplete));
    }

    #[test]
    fn what_node_must_answer_is_not_taken() {
        for head in [
            &b"GET /events HTTP/1.0\r\nHost: x\r\n\r\n"[..],
            b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
            b"GET /events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET /events HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n",
            b"GET /events HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
            b"GET /ev ents HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /events HTTP/1.1\r\n\r\n",
            b"GET /events HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
            b"GET /events HTTP/1.1\nHost: x\n\n",
            b"GET /events HTTP/1.1\r\nHost: x\nX: y\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            "GET /events?q=\u{e9} HTTP/1.1\r\nHost: x\r\n\r\n".as_bytes(),
        ] {
            assert_eq!(parse(head), Err(NotTaken::Other), "{head:?}");
        }
    }

    #[test]
    fn a_zero_length_body_is_no_body() {
        assert!(parse(b"GET /e HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").is_ok());
    }

    #[test]
    fn a_head_longer_than_node_takes_is_not_taken() {
        let mut head = b"GET /e HTTP/1.1\r\nHost: x\r\nX: ".to_vec();
        head.resize(MAX_HEAD_BYTES, b'a');
        assert_eq!(parse(&head), Err(NotTaken::Other));
        // The server's own, smaller limit (its maxHeaderSize).
        let small = b"GET /e HTTP/1.1\r\nHost: x\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        assert_eq!(parse_request_head(small, 40), Err(NotTaken::Other));
        assert!(parse_request_head(small, small.len()).is_ok());
    }

    #[test]
    fn values_keep_each_byte_as_one_character() {
        let head = parse(b"GET /e HTTP/1.1\r\nHost: x\r\nX-Name: caf\xe9\r\n\r\n").unwrap();
        assert_eq!(head.headers[1].1, "caf\u{e9}");
    }

    #[cfg(unix)]
    #[test]
    fn peeking_leaves_the_bytes_for_the_next_reader() {
        use std::io::{Read, Write};
        use std::os::fd::AsRawFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        assert_eq!(
            peek_request_head(server.as_raw_fd(), MAX_HEAD_BYTES),
            Err(NotTaken::Incomplete)
        );
        let sent = b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n";
        client.write_all(sent).unwrap();
        server.set_nonblocking(false).unwrap();
        let mut first = [0u8; 1];
        // Wait for the bytes with a blocking peek of one, then peek the head.
        // SAFETY: our own socket and buffer.
        unsafe {
            libc::recv(
                server.as_raw_fd(),
                first.as_mut_ptr().cast(),
                1,
                libc::MSG_PEEK,
            )
        };
        server.set_nonblocking(true).unwrap();
        let mut head = peek_request_head(server.as_raw_fd(), MAX_HEAD_BYTES);
        for _ in 0..1000 {
            if head != Err(NotTaken::Incomplete) {
                break;
            }
            std::thread::yield_now();
            head = peek_request_head(server.as_raw_fd(), MAX_HEAD_BYTES);
        }
        assert_eq!(head.unwrap().target, "/events");
        server.set_nonblocking(false).unwrap();
        let mut read = vec![0u8; sent.len()];
        server.read_exact(&mut read).unwrap();
        assert_eq!(&read[..], &sent[..]);
    }
}
