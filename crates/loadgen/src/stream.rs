//! One connection's bytes, as they come: the HTTP/1.1 response head, chunked framing when the
//! server uses it, then the SSE stream per the WHATWG algorithm (lines end in CRLF, LF or CR; a
//! blank line dispatches; `:` starts a comment), gzip-decoded first when the head says
//! `Content-Encoding: gzip`. Only what the benchmark needs is kept from each
//! event: the first two numbers of its data, the sequence number and the publish timestamp.

use crate::gunzip::Gunzip;

/// What the caller learns from each event and comment.
pub trait Sink {
    /// An event with data; `numbers` are the first two integers in its data, if present.
    fn event(&mut self, numbers: [Option<u64>; 2]);
    fn comment(&mut self);
}

#[derive(Debug, PartialEq, Eq)]
pub enum Head {
    Pending,
    Streaming,
    Refused(u16),
}

#[derive(Default)]
pub struct StreamParser {
    head: Vec<u8>,
    head_done: bool,
    chunked: bool,
    /// The body is gzip: its decoder (boxed: most streams are plain).
    gunzip: Option<Box<Gunzip>>,
    chunk_left: usize,
    size_line: Vec<u8>,
    crlf_to_skip: usize,
    /// The terminating zero-size chunk arrived: the response is over.
    pub ended: bool,
    line: Vec<u8>,
    /// The last line ended in CR: an LF right after it belongs to that line ending.
    after_cr: bool,
    numbers: [Option<u64>; 2],
    has_data: bool,
}

impl StreamParser {
    /// Feeds bytes read from the socket; returns the state of the response head.
    pub fn feed(&mut self, mut input: &[u8], sink: &mut impl Sink) -> Head {
        if !self.head_done {
            let from = self.head.len().saturating_sub(3);
            self.head.extend_from_slice(input);
            let Some(end) = find(&self.head[from..], b"\r\n\r\n").map(|at| at + from) else {
                return Head::Pending;
            };
            let status = parse_status(&self.head[..end]);
            if status != 200 {
                return Head::Refused(status);
            }
            let head = String::from_utf8_lossy(&self.head[..end]).to_ascii_lowercase();
            self.chunked = head.contains("\r\ntransfer-encoding: chunked");
            if head.contains("\r\ncontent-encoding: gzip") {
                self.gunzip = Some(Box::default());
            }
            let body_start = input.len() - (self.head.len() - (end + 4));
            input = &input[body_start..];
            self.head_done = true;
            self.head = Vec::new();
        }
        if self.chunked {
            self.dechunk(input, sink);
        } else {
            self.body(input, sink);
        }
        Head::Streaming
    }

    fn dechunk(&mut self, mut input: &[u8], sink: &mut impl Sink) {
        while !input.is_empty() && !self.ended {
            if self.crlf_to_skip > 0 {
                let n = self.crlf_to_skip.min(input.len());
                self.crlf_to_skip -= n;
                input = &input[n..];
            } else if self.chunk_left > 0 {
                let n = self.chunk_left.min(input.len());
                self.body(&input[..n], sink);
                self.chunk_left -= n;
                input = &input[n..];
                if self.chunk_left == 0 {
                    self.crlf_to_skip = 2;
                }
            } else {
                let Some(lf) = memchr::memchr(b'\n', input) else {
                    self.size_line.extend_from_slice(input);
                    return;
                };
                self.size_line.extend_from_slice(&input[..lf]);
                input = &input[lf + 1..];
                let hex: String = self
                    .size_line
                    .iter()
                    .take_while(|b| b.is_ascii_hexdigit())
                    .map(|&b| b as char)
                    .collect();
                self.size_line.clear();
                self.chunk_left = usize::from_str_radix(&hex, 16).unwrap_or(0);
                if self.chunk_left == 0 {
                    self.ended = true;
                }
            }
        }
    }

    /// The body's bytes, decoded if it is gzip; a stream that does not decode ends.
    fn body(&mut self, input: &[u8], sink: &mut impl Sink) {
        let Some(mut gunzip) = self.gunzip.take() else {
            return self.lines(input, sink);
        };
        gunzip.feed(input, |plain| self.lines(plain, sink));
        if gunzip.failed {
            self.ended = true;
        }
        self.gunzip = Some(gunzip);
    }

    fn lines(&mut self, mut input: &[u8], sink: &mut impl Sink) {
        if self.after_cr && input.first() == Some(&b'\n') {
            input = &input[1..];
        }
        self.after_cr = false;
        while let Some(end) = memchr::memchr2(b'\n', b'\r', input) {
            if self.line.is_empty() {
                self.line_done(&input[..end], sink);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&input[..end]);
                self.line_done(&line, sink);
                line.clear();
                self.line = line;
            }
            let cr = input[end] == b'\r';
            input = &input[end + 1..];
            if cr {
                match input.first() {
                    Some(b'\n') => input = &input[1..],
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
        }
        self.line.extend_from_slice(input);
    }

    fn line_done(&mut self, line: &[u8], sink: &mut impl Sink) {
        if line.is_empty() {
            if self.has_data {
                sink.event(self.numbers);
            }
            self.has_data = false;
            self.numbers = [None, None];
            return;
        }
        if line[0] == b':' {
            sink.comment();
            return;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        if name == b"data" {
            if !self.has_data {
                self.numbers = first_two_numbers(value);
            }
            self.has_data = true;
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_status(head: &[u8]) -> u16 {
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    std::str::from_utf8(line)
        .ok()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// The first two runs of digits: peers that JSON-encode string data wrap it in quotes.
fn first_two_numbers(value: &[u8]) -> [Option<u64>; 2] {
    let mut numbers = [None, None];
    let mut rest = value;
    for slot in &mut numbers {
        let start = match rest.iter().position(|b| b.is_ascii_digit()) {
            Some(start) => start,
            None => break,
        };
        rest = &rest[start..];
        let len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        *slot = std::str::from_utf8(&rest[..len])
            .ok()
            .and_then(|d| d.parse().ok());
        rest = &rest[len..];
    }
    numbers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Seen {
        events: Vec<[Option<u64>; 2]>,
        comments: usize,
    }

    impl Sink for Seen {
        fn event(&mut self, numbers: [Option<u64>; 2]) {
            self.events.push(numbers);
        }
        fn comment(&mut self) {
            self.comments += 1;
        }
    }

    /// Feeds `bytes` in pieces of `step` bytes, so every boundary is split somewhere.
    fn parse(bytes: &[u8], step: usize) -> (Head, Seen, bool) {
        let mut parser = StreamParser::default();
        let mut seen = Seen::default();
        let mut head = Head::Pending;
        for piece in bytes.chunks(step) {
            head = parser.feed(piece, &mut seen);
        }
        (head, seen, parser.ended)
    }

    const BODY: &str = ": ok\n\nid: 1\ndata: 7 1000 xx\n\nevent: tick\r\ndata: \"8 1001 yy\"\r\ndata: 99\r\n\r\n:hb\r\rdata:9 1002\r\r";

    #[test]
    fn identity_body_in_every_split() {
        let response = format!("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n{BODY}");
        for step in 1..=response.len() {
            let (head, seen, _) = parse(response.as_bytes(), step);
            assert_eq!(head, Head::Streaming);
            assert_eq!(
                seen.events,
                vec![
                    [Some(7), Some(1000)],
                    [Some(8), Some(1001)],
                    [Some(9), Some(1002)]
                ],
                "step {step}"
            );
            assert_eq!(seen.comments, 2, "step {step}");
        }
    }

    #[test]
    fn chunked_body_in_every_split() {
        let (a, b) = BODY.split_at(17);
        let response = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x};ext=1\r\n{b}\r\n0\r\n\r\n",
            a.len(),
            b.len()
        );
        for step in 1..=response.len() {
            let (head, seen, ended) = parse(response.as_bytes(), step);
            assert_eq!(head, Head::Streaming);
            assert_eq!(seen.events.len(), 3, "step {step}");
            assert_eq!(seen.events[2], [Some(9), Some(1002)]);
            assert_eq!(seen.comments, 2);
            assert!(ended);
        }
    }

    #[test]
    fn refused_and_pending_heads() {
        assert_eq!(parse(b"HTTP/1.1 503 Busy\r\n\r\n", 4).0, Head::Refused(503));
        assert_eq!(parse(b"HTTP/1.1 200 OK\r\n", 4).0, Head::Pending);
    }

    #[test]
    fn data_without_numbers_is_still_an_event() {
        let (_, seen, _) = parse(b"HTTP/1.1 200 OK\r\n\r\ndata: hello\n\ndata\n\n", 5);
        assert_eq!(seen.events, vec![[None, None], [None, None]]);
    }
}
