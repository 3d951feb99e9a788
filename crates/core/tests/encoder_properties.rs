//! Property tests of the encoder against a reference parser written here from the WHATWG
//! "Interpreting an event stream" algorithm: for any `data`, `event`, `id`, `retry` and
//! comment, encoding either fails with the documented error, leaving the buffer as it was, or
//! yields bytes the parser reads back as exactly the event that was meant: same type, same
//! data (line endings normalised to LF, as every client does), same id and retry.

use bytes::BytesMut;
use native_sse_core::frame::encode_comment;
use native_sse_core::{Message, SseError};
use proptest::prelude::*;

/// One dispatched event as a browser's EventSource reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Dispatched {
    event_type: String,
    data: String,
    last_event_id: String,
}

/// The spec's parser state, fed a whole stream at once.
#[derive(Debug, Default)]
struct ReferenceParser {
    data: String,
    event_type: String,
    last_event_id_buffer: String,
    last_event_id: String,
    reconnection_time: Option<u64>,
    dispatched: Vec<Dispatched>,
    comments: usize,
}

impl ReferenceParser {
    /// Decodes as UTF-8 (the stream is always UTF-8), drops one leading BOM, splits lines at
    /// CRLF, lone CR and lone LF, and interprets each. A final line with no end is not
    /// processed, as the spec says of an incomplete line at the end of a stream.
    fn feed(&mut self, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        let mut text: &str = &text;
        if let Some(rest) = text.strip_prefix('\u{FEFF}') {
            text = rest;
        }
        let mut rest = text;
        loop {
            let Some(at) = rest.find(['\r', '\n']) else {
                return;
            };
            let line = &rest[..at];
            let after = if rest[at..].starts_with("\r\n") {
                at + 2
            } else {
                at + 1
            };
            rest = &rest[after..];
            self.line(line);
        }
    }

    fn line(&mut self, line: &str) {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            self.comments += 1;
            return;
        }
        let (field, value) = match line.find(':') {
            Some(at) => {
                let value = &line[at + 1..];
                (&line[..at], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (line, ""),
        };
        match field {
            "event" => self.event_type = value.to_owned(),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            // An id with NUL is ignored entirely.
            "id" if !value.contains('\0') => self.last_event_id_buffer = value.to_owned(),
            // Only ASCII digits set the reconnection time (no encoded u64 overflows).
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.reconnection_time = value.parse().ok();
            }
            _ => {}
        }
    }

    fn dispatch(&mut self) {
        self.last_event_id = self.last_event_id_buffer.clone();
        if self.data.is_empty() {
            self.event_type.clear();
            return;
        }
        if self.data.ends_with('\n') {
            self.data.pop();
        }
        let event_type = if self.event_type.is_empty() {
            "message".to_owned()
        } else {
            std::mem::take(&mut self.event_type)
        };
        self.dispatched.push(Dispatched {
            event_type,
            data: std::mem::take(&mut self.data),
            last_event_id: self.last_event_id.clone(),
        });
        self.event_type.clear();
    }
}

/// Text that reaches every corner: line endings of all three kinds, NUL, colons, leading
/// spaces, a BOM, multi-byte characters, and anything else.
fn tricky_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("\n".to_owned()),
        Just("\r".to_owned()),
        Just("\r\n".to_owned()),
        Just("\0".to_owned()),
        Just(":".to_owned()),
        Just(" ".to_owned()),
        Just("\u{FEFF}".to_owned()),
        Just("data: x".to_owned()),
        Just("é✓🙂".to_owned()),
        any::<String>(),
        "[a-z ]{0,8}",
    ];
    prop::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat())
}

#[derive(Debug, Clone)]
struct Fields {
    data: Option<String>,
    event: Option<String>,
    id: Option<String>,
    retry: Option<u64>,
}

impl Fields {
    fn message(&self) -> Message<'_> {
        Message {
            data: self.data.as_deref(),
            event: self.event.as_deref(),
            id: self.id.as_deref(),
            retry: self.retry,
        }
    }
}

fn fields() -> impl Strategy<Value = Fields> {
    (
        prop::option::weighted(0.9, tricky_text()),
        prop::option::of(tricky_text()),
        prop::option::of(tricky_text()),
        prop::option::of(any::<u64>()),
    )
        .prop_map(|(data, event, id, retry)| Fields {
            data,
            event,
            id,
            retry,
        })
}

/// What the documentation promises for these fields: the error, or None when they encode.
fn documented_error(fields: &Fields) -> Option<&'static str> {
    if fields
        .event
        .as_deref()
        .is_some_and(|e| e.contains(['\r', '\n']))
    {
        return Some("ERR_SSE_INVALID_FIELD");
    }
    if fields
        .id
        .as_deref()
        .is_some_and(|i| i.contains(['\r', '\n', '\0']))
    {
        return Some("ERR_SSE_INVALID_FIELD");
    }
    let retry_alone = fields.data.is_none() && fields.event.is_none() && fields.id.is_none();
    if fields.data.is_none() && !(retry_alone && fields.retry.is_some()) {
        return Some("ERR_SSE_INVALID_MESSAGE");
    }
    None
}

fn normalised_lines(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn any_message_is_the_documented_error_or_reads_back_as_itself(fields in fields(), before in "[a-z]{0,4}") {
        let mut out = BytesMut::from(before.as_bytes());
        let result = fields.message().encode_into(&mut out);
        match documented_error(&fields) {
            Some(code) => {
                let error: SseError = result.expect_err("documented as an error");
                prop_assert_eq!(error.code().as_str(), code);
                prop_assert_eq!(&out[..], before.as_bytes(), "a rejected message leaves the buffer as it was");
            }
            None => {
                result.expect("documented as valid");
                let frame = &out[before.len()..];
                prop_assert!(frame.len() <= fields.message().encoded_len_bound());
                prop_assert!(frame.ends_with(b"\n\n"), "a frame ends with a blank line");
                let mut parser = ReferenceParser::default();
                parser.feed(frame);
                prop_assert_eq!(parser.reconnection_time, fields.retry);
                match &fields.data {
                    None => prop_assert!(parser.dispatched.is_empty(), "retry alone dispatches nothing"),
                    Some(data) => {
                        let expected = Dispatched {
                            event_type: match fields.event.as_deref() {
                                None | Some("") => "message".to_owned(),
                                Some(event) => event.to_owned(),
                            },
                            data: normalised_lines(data),
                            last_event_id: fields.id.clone().unwrap_or_default(),
                        };
                        prop_assert_eq!(&parser.dispatched, &vec![expected]);
                    }
                }
            }
        }
    }

    #[test]
    fn a_stream_of_frames_reads_back_event_for_event(all in prop::collection::vec(fields(), 1..12), comments in prop::collection::vec(tricky_text(), 0..4)) {
        let mut stream = BytesMut::new();
        let mut expected = Vec::new();
        let mut last_id = String::new();
        for (i, fields) in all.iter().enumerate() {
            if let Some(comment) = comments.get(i) {
                stream.extend_from_slice(&encode_comment(comment));
            }
            if fields.message().encode_into(&mut stream).is_err() {
                continue;
            }
            if let Some(id) = &fields.id {
                last_id = id.clone();
            }
            if let Some(data) = &fields.data {
                expected.push(Dispatched {
                    event_type: match fields.event.as_deref() {
                        None | Some("") => "message".to_owned(),
                        Some(event) => event.to_owned(),
                    },
                    data: normalised_lines(data),
                    last_event_id: last_id.clone(),
                });
            }
        }
        let mut parser = ReferenceParser::default();
        parser.feed(&stream);
        prop_assert_eq!(parser.dispatched, expected);
        prop_assert!(parser.data.is_empty() && parser.event_type.is_empty(), "nothing is left half-parsed");
    }

    #[test]
    fn any_comment_dispatches_nothing_and_sets_nothing(text in tricky_text()) {
        let frame = encode_comment(&text);
        let mut parser = ReferenceParser::default();
        parser.feed(&frame);
        prop_assert!(parser.dispatched.is_empty());
        prop_assert_eq!(parser.reconnection_time, None);
        prop_assert_eq!(parser.last_event_id_buffer.as_str(), "");
        prop_assert_eq!(parser.comments, text.split("\r\n").flat_map(|l| l.split(['\r', '\n'])).count());
    }
}

#[test]
fn the_reference_parser_follows_the_spec_examples() {
    // The spec's own examples: a comment, two-line data, an id, `data` with no colon, and the
    // event type reset after each dispatch.
    let mut parser = ReferenceParser::default();
    parser.feed(b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n");
    let data: Vec<_> = parser.dispatched.iter().map(|d| d.data.as_str()).collect();
    assert_eq!(data, ["first event", "second event", " third event"]);
    let ids: Vec<_> = parser
        .dispatched
        .iter()
        .map(|d| d.last_event_id.as_str())
        .collect();
    assert_eq!(ids, ["1", "", ""]);
    let mut parser = ReferenceParser::default();
    parser.feed(b"data\n\ndata\ndata\n\ndata:");
    let data: Vec<_> = parser.dispatched.iter().map(|d| d.data.as_str()).collect();
    assert_eq!(data, ["", "\n"]);
    let mut parser = ReferenceParser::default();
    parser.feed(b"event: add\ndata: 73857293\n\ndata: plain\n\n");
    let types: Vec<_> = parser
        .dispatched
        .iter()
        .map(|d| d.event_type.as_str())
        .collect();
    assert_eq!(types, ["add", "message"]);
}
