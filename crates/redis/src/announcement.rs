//! The pub/sub announcement of one event (see `scripts::PUBLISH` for its layout).
//!
//! Anyone who can `PUBLISH` on the namespace's channel can send one, so nothing in it is
//! trusted: lengths are checked without overflow, and the body must be one whole event frame
//! as the hub's encoder makes them. What fails is not an announcement; the receiver then reads
//! the streams instead (see `receiver`).

use std::str;

#[derive(Debug, PartialEq, Eq)]
pub struct Announcement<'a> {
    pub epoch: u32,
    pub position: u64,
    /// When Redis stored it, in ms since the Unix epoch.
    pub stored_ms: u64,
    /// None: a broadcast.
    pub channel: Option<&'a str>,
    pub app_id: Option<&'a str>,
    /// The publisher's trace context.
    pub trace: Option<&'a str>,
    pub body: &'a [u8],
}

/// None when `payload` is not an announcement (another writer on the channel).
pub fn parse(payload: &[u8]) -> Option<Announcement<'_>> {
    let newline = payload.iter().position(|&b| b == b'\n')?;
    let head = str::from_utf8(&payload[..newline]).ok()?;
    let mut fields = head.split(' ');
    let epoch = u32::from_str_radix(fields.next()?, 16).ok()?;
    let position: u64 = fields.next()?.parse().ok()?;
    let stored_ms: u64 = fields.next()?.parse().ok()?;
    let name_len: usize = fields.next()?.parse().ok()?;
    let id_len: usize = fields.next()?.parse().ok()?;
    let kind = fields.next()?;
    let trace_len: usize = match fields.next() {
        None => 0,
        Some(len) => len.parse().ok()?,
    };
    if fields.next().is_some() {
        return None;
    }
    let rest = &payload[newline + 1..];
    if rest.len() < name_len.checked_add(id_len)?.checked_add(trace_len)? {
        return None;
    }
    let (name, rest) = rest.split_at(name_len);
    let (id, rest) = rest.split_at(id_len);
    let (trace, body) = rest.split_at(trace_len);
    let channel = match kind {
        "b" => None,
        "c" => Some(str::from_utf8(name).ok()?),
        _ => return None,
    };
    let app_id = match id_len {
        0 => None,
        _ => Some(str::from_utf8(id).ok()?),
    };
    if app_id.is_some_and(|id| id.contains(['\r', '\n', '\0'])) || !is_one_frame(body) {
        return None;
    }
    let trace = match trace_len {
        0 => None,
        _ => Some(str::from_utf8(trace).ok()?),
    };
    Some(Announcement {
        epoch,
        position,
        stored_ms,
        channel,
        app_id,
        trace,
        body,
    })
}

/// One event frame as `frame.rs` encodes it: lines ended by LF, no CR, and one blank line,
/// at its end. Anything else could end early, run into the next event, or carry a second one.
fn is_one_frame(body: &[u8]) -> bool {
    body.len() >= 2
        && body.ends_with(b"\n\n")
        && !body.contains(&b'\r')
        && !body[..body.len() - 1]
            .windows(2)
            .any(|pair| pair == b"\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_script_announces() {
        let payload = b"0badf00d 42 1700000000123 6 2 c\npricesk7data: 1\n\n";
        let parsed = parse(payload).unwrap();
        assert_eq!(
            parsed,
            Announcement {
                epoch: 0x0badf00d,
                position: 42,
                stored_ms: 1_700_000_000_123,
                channel: Some("prices"),
                app_id: Some("k7"),
                trace: None,
                body: b"data: 1\n\n",
            }
        );
        // A trace context: its length after the kind, its bytes between the id and the body.
        let traced = parse(b"0badf00d 43 1700000000124 6 0 c 5\npricestp-01data: 2\n\n").unwrap();
        assert_eq!(
            (traced.trace, traced.body),
            (Some("tp-01"), &b"data: 2\n\n"[..])
        );
        // Any byte may be in a name: the lengths, not separators, delimit the parts.
        let odd = parse(b"0000000a 3 5 3 0 c\na bdata: x\n\n").unwrap();
        assert_eq!((odd.channel, odd.body), (Some("a b"), &b"data: x\n\n"[..]));
        let broadcast = parse(b"0000000a 1 5 0 0 b\ndata: x\n\n").unwrap();
        assert_eq!((broadcast.channel, broadcast.app_id), (None, None));
        assert_eq!(broadcast.body, b"data: x\n\n");
    }

    #[test]
    fn refuses_what_is_not_an_announcement() {
        for payload in [
            &b""[..],
            b"hello",
            b"zz 1 1 0 0 b\n",
            b"0000000a 1 1 9 0 c\nshort",
            b"0000000a 1 1 0 0 x\n",
            b"0000000a 1 1 0 0 b extra\n",
            b"0000000a 1 1 0 0 b 1 extra\ndata: x\n\n",
            // A trace context longer than what follows.
            b"0000000a 1 1 0 0 b 99\ndata: x\n\n",
            // Lengths whose sum overflows.
            b"00000001 999999 1 18446744073709551615 1 c\nxyz",
            // Bodies that are not one whole frame.
            b"0000000a 1 1 0 0 b\ndata: unterminated",
            b"0000000a 1 1 0 0 b\ndata: x\n",
            b"0000000a 1 1 0 0 b\ndata: one\n\ndata: two\n\n",
            b"0000000a 1 1 0 0 b\ndata: x\r\n\r\n",
            b"0000000a 1 1 0 0 b\n",
            // An app id with a line break.
            b"0000000a 1 1 0 2 b\na\ndata: x\n\n",
        ] {
            assert_eq!(parse(payload), None, "{payload:?}");
        }
    }
}
