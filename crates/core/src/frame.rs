//! Server-Sent Events frame encoding (WHATWG HTML, "Server-sent events").
//!
//! A frame is one complete event or comment block, ending in a blank line, so frames can be
//! queued, dropped and coalesced independently without ever splitting an event on the wire.
//! Validation happens before any byte is written, so a rejected message leaves the buffer as it
//! was: nothing reaches any client from a call that fails.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::SseError;

/// The fields of one event. `None` omits the field; `Some("")` sends it empty, which is
/// meaningful (`id: ` resets the client's last event id).
#[derive(Debug, Default, Clone, Copy)]
pub struct Message<'a> {
    pub data: Option<&'a str>,
    pub event: Option<&'a str>,
    pub id: Option<&'a str>,
    pub retry: Option<u64>,
}

/// The heartbeat: the smallest comment block. A comment never dispatches an event, so
/// `onmessage` handlers never see it.
pub const HEARTBEAT: &[u8] = b":\n\n";

/// The first body bytes of every stream, queued before anything else so they leave with the
/// head: some proxies and clients hold a response until body bytes arrive, which makes a quiet
/// channel look dead. `retry:` when one is set (the client needs it first anyway), otherwise
/// the smallest comment.
pub fn opening_frame(retry: Option<u64>) -> Bytes {
    match retry {
        Some(retry) => retry_frame(retry, false),
        None => Bytes::from_static(HEARTBEAT),
    }
}

/// A frame that only sets `retry`. `comment_led` puts an empty comment line first: the client
/// still applies the field, and the frame, starting as comments do, is not counted as a
/// delivered event (it dispatches none).
pub fn retry_frame(retry: u64, comment_led: bool) -> Bytes {
    let mut digits = [0u8; 20];
    let mut out = BytesMut::with_capacity(":\nretry: \n\n".len() + digits.len());
    if comment_led {
        out.put_slice(b":\n");
    }
    put_field_bytes(&mut out, b"retry", format_u64(retry, &mut digits));
    out.put_u8(b'\n');
    out.freeze()
}

/// A message whose fields passed `Message::validate`: the only thing that encodes, so a message
/// is checked once on its way to the wire, whichever path it takes (publish, send, a backend).
#[derive(Debug, Clone, Copy)]
pub struct Valid<'a>(Message<'a>);

impl<'a> Message<'a> {
    /// Checks the fields that can corrupt the stream. `event` and `id` are single-line fields:
    /// a CR or LF inside them would start a new field that the application did not write, so
    /// they are rejected rather than sanitized. Clients truncate at NUL inside `id`
    /// (the spec ignores such an id entirely), so it is rejected too.
    pub fn validate(&self) -> Result<Valid<'a>, SseError> {
        if let Some(event) = self.event {
            if let Some(at) = event.find(['\r', '\n']) {
                return Err(SseError::InvalidField {
                    field: "event",
                    reason: format!("contains a line break at byte {at}"),
                });
            }
        }
        if let Some(id) = self.id {
            if let Some(at) = id.find(['\r', '\n', '\0']) {
                let what = if id.as_bytes()[at] == 0 {
                    "a NUL character"
                } else {
                    "a line break"
                };
                return Err(SseError::InvalidField {
                    field: "id",
                    reason: format!("contains {what} at byte {at}"),
                });
            }
        }
        let retry_alone = self.event.is_none() && self.id.is_none() && self.retry.is_some();
        if self.data.is_none() && !retry_alone {
            return Err(SseError::MissingData);
        }
        Ok(Valid(*self))
    }

    /// Validates, then appends the frame to `out`.
    pub fn encode_into(&self, out: &mut BytesMut) -> Result<(), SseError> {
        self.validate()?.encode_into(out);
        Ok(())
    }

    /// Validates and encodes into a fresh, exactly sized frame.
    pub fn encode(&self) -> Result<Bytes, SseError> {
        Ok(self.validate()?.encode())
    }

    /// Upper bound of the encoded size, used to reserve once and to enforce queue limits before
    /// encoding. Each line break in `data` can add at most one `data: ` prefix.
    pub fn encoded_len_bound(&self) -> usize {
        let mut len = 1; // closing blank line
        if let Some(event) = self.event {
            len += "event: \n".len() + event.len();
        }
        if let Some(id) = self.id {
            len += "id: \n".len() + id.len();
        }
        if self.retry.is_some() {
            len += "retry: \n".len() + 20;
        }
        if let Some(data) = self.data {
            let breaks = memchr::memchr2_iter(b'\n', b'\r', data.as_bytes()).count();
            len += data.len() + (breaks + 1) * "data: \n".len();
        }
        len
    }
}

impl<'a> Valid<'a> {
    pub fn message(&self) -> &Message<'a> {
        &self.0
    }

    /// The same message with the id the hub made for it: hub-made ids are one line of
    /// letters, digits and `-` (resume.rs), so it stays valid.
    pub(crate) fn with_hub_id(&self, id: &'a str) -> Valid<'a> {
        debug_assert!(!id.contains(['\r', '\n', '\0']));
        Valid(Message {
            id: Some(id),
            ..self.0
        })
    }

    /// Appends the frame to `out`.
    pub fn encode_into(&self, out: &mut BytesMut) {
        let message = &self.0;
        out.reserve(message.encoded_len_bound());
        if let Some(event) = message.event {
            put_field(out, b"event", event);
        }
        if let Some(id) = message.id {
            put_field(out, b"id", id);
        }
        if let Some(retry) = message.retry {
            let mut digits = [0u8; 20];
            put_field_bytes(out, b"retry", format_u64(retry, &mut digits));
        }
        if let Some(data) = message.data {
            for line in split_lines(data) {
                put_field(out, b"data", line);
            }
        }
        out.put_u8(b'\n');
    }

    /// Encodes into a fresh, exactly sized frame.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.encode_into(&mut out);
        out.freeze()
    }
}

/// Whether the hub should stamp an id on `frame`, an encoded event: only an event (it has a
/// `data` field) that carries no `id` field of its own. A retry-only block is not an event, and
/// an application's `id` (even an empty one, which clears the client's last id) is the id.
pub(crate) fn wants_hub_id(frame: &[u8]) -> bool {
    let mut has_data = false;
    for line in frame.split(|&b| b == b'\n') {
        if line.starts_with(b"id: ") {
            return false;
        }
        has_data |= line.starts_with(b"data: ");
    }
    has_data
}

/// Appends the frame of an event with `data` alone: what `Message { data: Some(data), .. }`
/// encodes, without the per-frame size bound and reserve a caller that reserved for a whole
/// batch has no use for.
pub fn encode_data_into(data: &str, out: &mut BytesMut) {
    for line in split_lines(data) {
        put_field(out, b"data", line);
    }
    out.put_u8(b'\n');
}

/// What `encode_data_into` appends for `data` of one line: `data: `, its end and the blank line.
pub const DATA_FRAME_OVERHEAD: usize = "data: \n\n".len();

/// Encodes a comment block: one `: ` line per line of `text`, then the blank line.
pub fn encode_comment(text: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(text.len() + 8);
    for line in split_lines(text) {
        if line.is_empty() {
            out.put_slice(b":\n");
        } else {
            out.put_slice(b": ");
            out.put_slice(line.as_bytes());
            out.put_u8(b'\n');
        }
    }
    out.put_u8(b'\n');
    out.freeze()
}

fn put_field(out: &mut BytesMut, name: &[u8], value: &str) {
    put_field_bytes(out, name, value.as_bytes());
}

// Always `name: value`, with the space, even for an empty value: the client strips exactly one
// leading space, so values that themselves start with spaces survive intact.
fn put_field_bytes(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_u8(b'\n');
}

fn format_u64(mut value: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            return &buf[at..];
        }
    }
}

/// Splits on CRLF, lone CR and lone LF, the three line endings an SSE parser honours, so a
/// value can never end a field early. An empty value is one empty line.
pub fn split_lines(text: &str) -> SplitLines<'_> {
    SplitLines { rest: Some(text) }
}

pub struct SplitLines<'a> {
    rest: Option<&'a str>,
}

impl<'a> Iterator for SplitLines<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        // Bytes, not chars: CR and LF never occur inside a multi-byte UTF-8 sequence, and a
        // byte scan avoids decoding every character of every payload.
        match memchr::memchr2(b'\r', b'\n', rest.as_bytes()) {
            None => {
                self.rest = None;
                Some(rest)
            }
            Some(at) => {
                let bytes = rest.as_bytes();
                let skip = if bytes[at] == b'\r' && bytes.get(at + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                self.rest = Some(&rest[at + skip..]);
                Some(&rest[..at])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hub_stamps_ids_on_events_without_one_only() {
        assert!(wants_hub_id(b"data: x\n\n"));
        assert!(wants_hub_id(b"event: e\ndata: x\ndata: id: y\n\n"));
        assert!(!wants_hub_id(b"id: app\ndata: x\n\n"));
        // An empty id is the application's: it clears the client's last id.
        assert!(!wants_hub_id(b"id: \ndata: x\n\n"));
        // Not an event: nothing would dispatch it.
        assert!(!wants_hub_id(b"retry: 500\n\n"));
    }

    fn data(text: &str) -> Vec<u8> {
        Message {
            data: Some(text),
            ..Default::default()
        }
        .encode()
        .unwrap()
        .to_vec()
    }

    #[test]
    fn single_line_data() {
        assert_eq!(data("hello"), b"data: hello\n\n");
    }

    #[test]
    fn data_alone_encodes_as_a_message_of_data_does() {
        let mut out = BytesMut::new();
        encode_data_into("a\r\nb\rc\nd", &mut out);
        encode_data_into("", &mut out);
        assert_eq!(
            &out[..],
            b"data: a\ndata: b\ndata: c\ndata: d\n\ndata: \n\n"
        );
        for text in ["x", "\n", "\r\n\r\n", "tr\u{e9}s \u{1f600}\r", "  lead"] {
            let mut one = BytesMut::new();
            encode_data_into(text, &mut one);
            assert_eq!(one.to_vec(), data(text), "{text:?}");
        }
    }

    #[test]
    fn empty_data_is_one_empty_data_line() {
        assert_eq!(data(""), b"data: \n\n");
    }

    #[test]
    fn lf_crlf_and_cr_all_split_lines() {
        assert_eq!(data("a\nb"), b"data: a\ndata: b\n\n");
        assert_eq!(data("a\r\nb"), b"data: a\ndata: b\n\n");
        assert_eq!(data("a\rb"), b"data: a\ndata: b\n\n");
        assert_eq!(data("a\r\rb"), b"data: a\ndata: \ndata: b\n\n");
        assert_eq!(data("a\n\r\nb"), b"data: a\ndata: \ndata: b\n\n");
    }

    #[test]
    fn trailing_line_break_keeps_an_empty_last_line() {
        assert_eq!(data("a\n"), b"data: a\ndata: \n\n");
        assert_eq!(data("\r\n"), b"data: \ndata: \n\n");
    }

    #[test]
    fn leading_spaces_survive_because_of_the_separator_space() {
        assert_eq!(data("  two"), b"data:   two\n\n");
    }

    #[test]
    fn injection_through_data_stays_inside_data_lines() {
        assert_eq!(
            data("x\n\nevent: evil\ndata: y"),
            b"data: x\ndata: \ndata: event: evil\ndata: data: y\n\n"
        );
    }

    #[test]
    fn unicode_outside_the_bmp_is_passed_through() {
        assert_eq!(data("\u{1F600}"), "data: \u{1F600}\n\n".as_bytes());
    }

    #[test]
    fn all_fields_in_a_fixed_order() {
        let frame = Message {
            data: Some("d"),
            event: Some("e"),
            id: Some("7"),
            retry: Some(1500),
        }
        .encode()
        .unwrap();
        assert_eq!(&frame[..], b"event: e\nid: 7\nretry: 1500\ndata: d\n\n");
    }

    #[test]
    fn retry_zero_and_max() {
        let zero = Message {
            retry: Some(0),
            ..Default::default()
        };
        assert_eq!(&zero.encode().unwrap()[..], b"retry: 0\n\n");
        let max = Message {
            retry: Some(u64::MAX),
            ..Default::default()
        };
        assert_eq!(
            &max.encode().unwrap()[..],
            b"retry: 18446744073709551615\n\n"
        );
    }

    #[test]
    fn empty_id_is_sent_to_reset_the_last_event_id() {
        let frame = Message {
            id: Some(""),
            data: Some("x"),
            ..Default::default()
        };
        assert_eq!(&frame.encode().unwrap()[..], b"id: \ndata: x\n\n");
    }

    #[test]
    fn line_breaks_in_event_or_id_are_rejected_and_nothing_is_written() {
        for bad in ["a\nb", "a\rb", "a\r\nb", "\n"] {
            let mut out = BytesMut::from(&b"kept"[..]);
            let event = Message {
                event: Some(bad),
                data: Some("x"),
                ..Default::default()
            };
            let err = event.encode_into(&mut out).unwrap_err();
            assert_eq!(err.code().as_str(), "ERR_SSE_INVALID_FIELD");
            assert!(err.to_string().contains("event"), "{err}");
            let id = Message {
                id: Some(bad),
                data: Some("x"),
                ..Default::default()
            };
            assert_eq!(
                id.encode_into(&mut out).unwrap_err().code().as_str(),
                "ERR_SSE_INVALID_FIELD"
            );
            assert_eq!(&out[..], b"kept");
        }
    }

    #[test]
    fn nul_in_id_is_rejected_but_allowed_in_data_and_event() {
        let id = Message {
            id: Some("a\0b"),
            data: Some("x"),
            ..Default::default()
        };
        let err = id.encode().unwrap_err();
        assert!(err.to_string().contains("NUL"), "{err}");
        let ok = Message {
            event: Some("a\0"),
            data: Some("b\0"),
            ..Default::default()
        };
        assert_eq!(&ok.encode().unwrap()[..], b"event: a\0\ndata: b\0\n\n");
    }

    #[test]
    fn data_is_required_unless_the_message_only_sets_retry() {
        let without_data = [
            Message::default(),
            Message {
                event: Some("x"),
                ..Default::default()
            },
            Message {
                id: Some("1"),
                retry: Some(5),
                ..Default::default()
            },
        ];
        for message in without_data {
            let err = message.encode().unwrap_err();
            assert_eq!(err.code().as_str(), "ERR_SSE_INVALID_MESSAGE");
            assert!(err.to_string().contains("data: ''"), "{err}");
        }
        let empty = Message {
            data: Some(""),
            event: Some("x"),
            ..Default::default()
        };
        assert_eq!(&empty.encode().unwrap()[..], b"event: x\ndata: \n\n");
    }

    #[test]
    fn the_opening_frame_is_retry_when_set_and_a_comment_otherwise() {
        assert_eq!(&opening_frame(Some(2500))[..], b"retry: 2500\n\n");
        assert_eq!(&opening_frame(None)[..], b":\n\n");
    }

    #[test]
    fn comments_split_per_line() {
        assert_eq!(&encode_comment("hi")[..], b": hi\n\n");
        assert_eq!(&encode_comment("")[..], b":\n\n");
        assert_eq!(&encode_comment("a\r\nb\rc")[..], b": a\n: b\n: c\n\n");
        assert_eq!(
            &encode_comment("x\n\ndata: evil")[..],
            b": x\n:\n: data: evil\n\n"
        );
    }

    #[test]
    fn bound_covers_the_encoded_size() {
        let cases = ["", "a", "\n\n\n", "a\r\nb\rc\nd", "\r\r\r\n"];
        for text in cases {
            let msg = Message {
                data: Some(text),
                event: Some("ev"),
                id: Some("1"),
                retry: Some(u64::MAX),
            };
            assert!(
                msg.encode().unwrap().len() <= msg.encoded_len_bound(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn megabyte_data_encodes_exactly() {
        let big = "x".repeat(1_000_000);
        let frame = data(&big);
        assert_eq!(frame.len(), 1_000_000 + "data: \n\n".len());
        assert!(frame.starts_with(b"data: xxx"));
        assert!(frame.ends_with(b"xxx\n\n"));
    }
}
