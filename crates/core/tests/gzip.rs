//! Compressed streams over real loopback sockets: whatever a client is sent (channels joined
//! and left, direct sends, resumes and resets, heartbeats, other gzip clients coming and going,
//! a staged close), its gzip stream decodes to exactly the bytes a plain client with the same
//! calls received. Each gzip client has a plain twin, registered, subscribed and sent to at the
//! same points; the twins' streams are compared once the hub has closed them all.

use std::collections::HashMap;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use flate2::read::GzDecoder;
use native_sse_core::{ChannelCompression, GzipSettings, History, Hub, HubConfig, Message};
use proptest::prelude::*;

mod common;
use common::Quiet;

const CHANNELS: [&str; 3] = ["prices", "chat", "news"];

#[derive(Debug, Clone)]
enum Op {
    /// Publish on a channel (None: broadcast), with one of a few payloads (so the stream
    /// repeats itself, as real ones do).
    Publish(Option<usize>, usize),
    Send(usize, usize),
    Subscribe(usize, usize),
    Unsubscribe(usize, usize),
    /// A new pair, subscribed to some channels, resuming after an id when given.
    Join(Vec<usize>, Option<ResumeFrom>),
    /// A pair leaves (its peer is closed): its streams are not compared.
    Leave(usize),
    /// Lets the writers run, and heartbeats come.
    Pause,
    /// A channel's compression changes mid-stream: off, the hub's, or a keyframe every event.
    Compress(usize, u8),
}

#[derive(Debug, Clone)]
enum ResumeFrom {
    /// The id of the nth event published so far (modulo how many there are).
    Published(usize),
    /// An id the hub never gave: the reset signal.
    Unknown,
}

const PAYLOADS: [&str; 4] = [
    r#"{"symbol":"ACME","price":101.25,"volume":1200}"#,
    r#"{"symbol":"ACME","price":101.5,"volume":900}"#,
    r#"{"user":"ann","text":"hello there"}"#,
    "line one\nline two",
];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (prop::option::of(0..CHANNELS.len()), 0..PAYLOADS.len())
            .prop_map(|(c, p)| Op::Publish(c, p)),
        2 => (0..8usize, 0..PAYLOADS.len()).prop_map(|(i, p)| Op::Send(i, p)),
        2 => (0..8usize, 0..CHANNELS.len()).prop_map(|(i, c)| Op::Subscribe(i, c)),
        1 => (0..8usize, 0..CHANNELS.len()).prop_map(|(i, c)| Op::Unsubscribe(i, c)),
        2 => (
            prop::collection::vec(0..CHANNELS.len(), 0..3),
            prop::option::of(prop_oneof![
                (0..100usize).prop_map(ResumeFrom::Published),
                Just(ResumeFrom::Unknown)
            ])
        )
            .prop_map(|(c, r)| Op::Join(c, r)),
        1 => (0..8usize).prop_map(Op::Leave),
        1 => Just(Op::Pause),
        1 => (0..CHANNELS.len(), 0..3u8).prop_map(|(c, m)| Op::Compress(c, m)),
    ]
}

struct Pair {
    ids: [u64; 2],
    peers: [TcpStream; 2],
    chunked: bool,
    /// Channels it unsubscribed from. It does not subscribe to them again: a subscription
    /// made while the old cursor still drains takes that cursor back, with what was
    /// published in between, and whether it still drains differs between the twins.
    left: Vec<usize>,
}

struct Run {
    hub: Hub,
    listener: TcpListener,
    pairs: Vec<Pair>,
    published: Vec<String>,
}

impl Run {
    fn new(keyframe_every: u32, heartbeat: Duration) -> Run {
        let config = HubConfig {
            heartbeat,
            worker_threads: 1,
            history: History {
                max_events: 1000,
                max_bytes: 1 << 20,
                max_age: None,
            },
            gzip: Some(GzipSettings {
                level: 6,
                keyframe_every,
            }),
            ..HubConfig::default()
        };
        Run {
            hub: Hub::new(config, Box::new(Quiet)).unwrap(),
            listener: TcpListener::bind("127.0.0.1:0").unwrap(),
            pairs: Vec::new(),
            published: Vec::new(),
        }
    }

    fn connect(
        &self,
        channels: &[usize],
        last_id: Option<&str>,
        gzip: bool,
        chunked: bool,
    ) -> (u64, TcpStream) {
        let peer = TcpStream::connect(self.listener.local_addr().unwrap()).unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let (server_side, _) = self.listener.accept().unwrap();
        let names = channels.iter().map(|&c| CHANNELS[c].to_string()).collect();
        let (id, _) = self.hub.register(Some(1000), names, last_id).unwrap();
        if gzip {
            assert!(self.hub.use_gzip(id));
        }
        self.hub
            .adopt(id, server_side.as_raw_fd(), chunked, |_| {})
            .unwrap();
        drop(server_side);
        (id, peer)
    }

    fn join(&mut self, channels: &[usize], resume: Option<&ResumeFrom>) {
        let last_id = match resume {
            None => None,
            Some(ResumeFrom::Unknown) => Some("never-given".to_string()),
            Some(ResumeFrom::Published(n)) if !self.published.is_empty() => {
                Some(self.published[n % self.published.len()].clone())
            }
            Some(ResumeFrom::Published(_)) => None,
        };
        let chunked = self.pairs.len().is_multiple_of(2);
        let (plain_id, plain) = self.connect(channels, last_id.as_deref(), false, chunked);
        let (gzip_id, gzip) = self.connect(channels, last_id.as_deref(), true, chunked);
        self.pairs.push(Pair {
            ids: [plain_id, gzip_id],
            peers: [plain, gzip],
            chunked,
            left: Vec::new(),
        });
    }

    fn apply(&mut self, op: &Op) {
        let pair = |run: &Run, i: usize| (!run.pairs.is_empty()).then(|| i % run.pairs.len());
        match op {
            Op::Publish(channel, payload) => {
                let id = format!("e{}", self.published.len());
                let message = Message {
                    data: Some(PAYLOADS[*payload]),
                    event: Some("update"),
                    id: Some(&id),
                    ..Default::default()
                };
                match channel {
                    Some(c) => self.hub.publish(CHANNELS[*c], &message).unwrap(),
                    None => self.hub.broadcast(&message).unwrap(),
                };
                self.published.push(id);
            }
            Op::Send(i, payload) => {
                if let Some(p) = pair(self, *i) {
                    for id in self.pairs[p].ids {
                        let message = Message {
                            data: Some(PAYLOADS[*payload]),
                            ..Default::default()
                        };
                        let _ = self.hub.send(id, &message);
                    }
                }
            }
            Op::Subscribe(i, c) | Op::Unsubscribe(i, c) => {
                if let Some(p) = pair(self, *i) {
                    if self.pairs[p].left.contains(c) {
                        return;
                    }
                    if matches!(op, Op::Unsubscribe(..)) {
                        self.pairs[p].left.push(*c);
                    }
                    for id in self.pairs[p].ids {
                        match op {
                            Op::Subscribe(..) => drop(self.hub.subscribe(id, CHANNELS[*c])),
                            _ => drop(self.hub.unsubscribe(id, CHANNELS[*c])),
                        }
                    }
                }
            }
            Op::Join(channels, resume) => self.join(channels, resume.as_ref()),
            Op::Leave(i) => {
                if let Some(p) = pair(self, *i) {
                    // Its peers close: the hub sees them go (FIN) on its own.
                    drop(self.pairs.remove(p));
                }
            }
            Op::Pause => std::thread::sleep(Duration::from_millis(3)),
            Op::Compress(c, mode) => {
                let compression = match mode {
                    0 => ChannelCompression::Off,
                    1 => ChannelCompression::Hub,
                    _ => ChannelCompression::With(GzipSettings {
                        level: 1,
                        keyframe_every: 1,
                    }),
                };
                self.hub.set_channel_compression(CHANNELS[*c], compression);
            }
        }
    }
}

/// The body of an HTTP/1.1 chunked stream (or the bytes as they are).
fn body(wire: &[u8], chunked: bool) -> Vec<u8> {
    if !chunked {
        return wire.to_vec();
    }
    let mut out = Vec::new();
    let mut rest = wire;
    loop {
        let line = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk head");
        let len = usize::from_str_radix(std::str::from_utf8(&rest[..line]).unwrap(), 16).unwrap();
        rest = &rest[line + 2..];
        if len == 0 {
            assert_eq!(rest, b"\r\n", "the last chunk ends the stream");
            return out;
        }
        out.extend_from_slice(&rest[..len]);
        assert_eq!(&rest[len..len + 2], b"\r\n");
        rest = &rest[len + 2..];
    }
}

/// The stream's frames without heartbeats (`:\n\n`): a gzip stream's heartbeat is an empty
/// block, which decodes to nothing, and heartbeats come when each writer finds itself idle.
fn without_heartbeats(stream: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(stream.to_vec()).unwrap();
    let frames: Vec<&str> = text
        .split_inclusive("\n\n")
        .filter(|f| *f != ":\n\n")
        .collect();
    frames.concat().into_bytes()
}

fn check(ops: &[Op], keyframe_every: u32) {
    let mut run = Run::new(keyframe_every, Duration::from_millis(2));
    run.join(&[0], None);
    for op in ops {
        run.apply(op);
    }
    run.hub.close_all();
    for mut pair in run.pairs.drain(..) {
        let mut streams: Vec<Vec<u8>> = Vec::new();
        for peer in pair.peers.iter_mut() {
            let mut wire = Vec::new();
            peer.read_to_end(&mut wire).unwrap();
            streams.push(body(&wire, pair.chunked));
        }
        let mut decoded = Vec::new();
        GzDecoder::new(&streams[1][..])
            .read_to_end(&mut decoded)
            .expect("a whole gzip stream: blocks, last block and trailer (CRC and length)");
        assert_eq!(
            String::from_utf8_lossy(&without_heartbeats(&decoded)),
            String::from_utf8_lossy(&without_heartbeats(&streams[0])),
            "gzip client {} decodes to what its plain twin {} got",
            pair.ids[1],
            pair.ids[0]
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_gzip_stream_decodes_to_its_plain_twin(
        ops in prop::collection::vec(op(), 1..60),
        keyframe_every in prop_oneof![Just(1u32), Just(3), Just(32)],
    ) {
        check(&ops, keyframe_every);
    }
}

#[test]
fn a_channel_stream_is_shared_and_smaller_than_plain() {
    // No heartbeats: the two streams are then the same bytes.
    let mut run = Run::new(32, Duration::from_secs(60));
    run.join(&[0], None);
    run.join(&[0], None);
    for i in 0..500 {
        run.apply(&Op::Publish(Some(0), i % 2));
    }
    run.hub.close_all();
    let mut wires = HashMap::new();
    for mut pair in run.pairs.drain(..) {
        let mut wire = Vec::new();
        pair.peers[1].read_to_end(&mut wire).unwrap();
        wires.insert(pair.ids[1], body(&wire, pair.chunked).len());
    }
    // Both gzip clients got the same segments from the first event on (the log's compressor
    // started with them: its first segment is a keyframe).
    // Read once the streams ended: their trailers are counted.
    let stats = run.hub.stats();
    let sizes: Vec<usize> = wires.values().copied().collect();
    assert_eq!(sizes[0], sizes[1]);
    assert!(
        (stats.gzip_wire_bytes as f64) < 0.2 * stats.gzip_plain_bytes as f64,
        "{} bytes on the wire for {} plain",
        stats.gzip_wire_bytes,
        stats.gzip_plain_bytes
    );
    assert_eq!(stats.gzip_wire_bytes as usize, sizes[0] + sizes[1]);
}
