//! The hub over real loopback sockets, without Node: the test accepts a connection, hands its
//! fd to the hub and closes its own copy, as the binding does with Node's socket.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use native_sse_core::{
    CloseReason, Delivery, Departure, Hub, HubConfig, HubEvents, Message, OverflowPolicy,
    RELAY_CREDIT_BYTES,
};

/// What the hub told its embedder, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Write(u64, Vec<u8>),
    End(u64),
    Destroy(u64),
    Drained(u64),
}

struct Recorder {
    closes: std::sync::Mutex<mpsc::Sender<(u64, Departure)>>,
    node: std::sync::Mutex<mpsc::Sender<Event>>,
}

impl HubEvents for Recorder {
    fn closed(&self, id: u64, departure: Departure) {
        let _ = self.closes.lock().unwrap().send((id, departure));
    }
    fn write(&self, id: u64, bytes: bytes::Bytes) {
        let _ = self
            .node
            .lock()
            .unwrap()
            .send(Event::Write(id, bytes.to_vec()));
    }
    fn end(&self, id: u64) {
        let _ = self.node.lock().unwrap().send(Event::End(id));
    }
    fn destroy(&self, id: u64) {
        let _ = self.node.lock().unwrap().send(Event::Destroy(id));
    }
    fn drained(&self, id: u64) {
        let _ = self.node.lock().unwrap().send(Event::Drained(id));
    }
}

struct Fixture {
    hub: Hub,
    closes: mpsc::Receiver<(u64, Departure)>,
    node: mpsc::Receiver<Event>,
    listener: TcpListener,
}

fn fixture(config: HubConfig) -> Fixture {
    let (tx, closes) = mpsc::channel();
    let (node_tx, node) = mpsc::channel();
    let recorder = Recorder {
        closes: std::sync::Mutex::new(tx),
        node: std::sync::Mutex::new(node_tx),
    };
    let hub = Hub::new(config, Box::new(recorder)).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    Fixture {
        hub,
        closes,
        node,
        listener,
    }
}

fn config() -> HubConfig {
    HubConfig {
        heartbeat: Duration::from_secs(60),
        worker_threads: 1,
        ..HubConfig::default()
    }
}

impl Fixture {
    /// Connects a peer and hands the server side to the hub, then reads the stream's opening
    /// frame. Returns (client id, peer).
    fn connect(&self, chunked: bool) -> (u64, TcpStream) {
        let (id, mut peer) = self.connect_with_retry(chunked, None);
        let opening: &[u8] = if chunked { b"3\r\n:\n\n\r\n" } else { b":\n\n" };
        assert_eq!(read_exactly(&mut peer, opening.len()), opening);
        (id, peer)
    }

    fn connect_with_retry(&self, chunked: bool, retry: Option<u64>) -> (u64, TcpStream) {
        let peer = TcpStream::connect(self.listener.local_addr().unwrap()).unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (server_side, _) = self.listener.accept().unwrap();
        let id = self.hub.register(retry, Vec::new(), None).unwrap().0;
        let mut released = None;
        self.hub
            .adopt(id, server_side.as_raw_fd(), chunked, |fd| {
                released = Some(fd)
            })
            .unwrap();
        assert_eq!(released, Some(server_side.as_raw_fd()));
        drop(server_side);
        (id, peer)
    }

    fn next_close(&self) -> (u64, CloseReason) {
        let (id, departure) = self.next_departure();
        (id, departure.reason)
    }

    fn next_departure(&self) -> (u64, Departure) {
        self.closes.recv_timeout(Duration::from_secs(5)).unwrap()
    }

    fn next_node_event(&self) -> Event {
        self.node.recv_timeout(Duration::from_secs(5)).unwrap()
    }
}

fn read_exactly(peer: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    peer.read_exact(&mut buf).unwrap();
    buf
}

#[test]
fn a_head_left_to_the_hub_goes_out_with_the_opening_in_one_write() {
    let f = fixture(config());
    let mut peer = TcpStream::connect(f.listener.local_addr().unwrap()).unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (server_side, _) = f.listener.accept().unwrap();
    let id = f.hub.register(None, Vec::new(), None).unwrap().0;
    let head: &[u8] =
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
    f.hub
        .adopt_with_head(
            id,
            server_side.as_raw_fd(),
            true,
            bytes::Bytes::from_static(head),
            |_| {},
        )
        .unwrap();
    drop(server_side);
    // One writev, one loopback segment: the first read has the head and the opening whole
    // (a head written apart from the body would arrive as a read of its own).
    let mut buf = [0u8; 4096];
    let n = peer.read(&mut buf).unwrap();
    let expected = [head, b"3\r\n:\n\n\r\n"].concat();
    assert_eq!(
        String::from_utf8_lossy(&buf[..n]),
        String::from_utf8_lossy(&expected)
    );
    // The stream goes on after it, framed as the head said.
    let delivered = f
        .hub
        .broadcast(&Message {
            data: Some("x"),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(delivered, 1);
    let chunk: &[u8] = b"9\r\ndata: x\n\n\r\n";
    assert_eq!(read_exactly(&mut peer, chunk.len()), chunk);
}

#[test]
fn broadcast_reaches_every_client_as_one_chunk_each() {
    let f = fixture(config());
    let (_, mut a) = f.connect(true);
    let (_, mut b) = f.connect(false);
    let delivered = f
        .hub
        .broadcast(&Message {
            data: Some("hi\nthere"),
            event: Some("greet"),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(delivered, 2);
    let frame = b"event: greet\ndata: hi\ndata: there\n\n";
    let mut chunk = format!("{:x}\r\n", frame.len()).into_bytes();
    chunk.extend_from_slice(frame);
    chunk.extend_from_slice(b"\r\n");
    assert_eq!(read_exactly(&mut a, chunk.len()), chunk);
    assert_eq!(read_exactly(&mut b, frame.len()), frame);
}

#[test]
fn the_opening_frame_leaves_at_once_and_is_retry_when_set() {
    let f = fixture(config()); // heartbeats every 60 s: nothing else would be written
    let (_, mut plain) = f.connect_with_retry(false, None);
    assert_eq!(read_exactly(&mut plain, 3), b":\n\n");
    let (_, mut with_retry) = f.connect_with_retry(true, Some(2500));
    let frame = b"retry: 2500\n\n";
    let mut chunk = format!("{:x}\r\n", frame.len()).into_bytes();
    chunk.extend_from_slice(frame);
    chunk.extend_from_slice(b"\r\n");
    assert_eq!(read_exactly(&mut with_retry, chunk.len()), chunk);
    assert_eq!(
        f.hub.stats().heartbeats,
        0,
        "the opening frame is not a heartbeat"
    );
}

#[test]
fn a_refused_adoption_leaves_the_embedders_fd_alone() {
    let f = fixture(config());
    let peer = TcpStream::connect(f.listener.local_addr().unwrap()).unwrap();
    let (server_side, _) = f.listener.accept().unwrap();
    let mut released = Vec::new();
    // Unknown client: refused before the socket is touched.
    assert!(f
        .hub
        .adopt(999, server_side.as_raw_fd(), true, |fd| released.push(fd))
        .is_err());
    // Known client, but the fd is not a connected socket.
    let id = f.hub.register(None, Vec::new(), None).unwrap().0;
    let file = std::fs::File::open("/dev/null").unwrap();
    assert!(f
        .hub
        .adopt(id, file.as_raw_fd(), true, |fd| released.push(fd))
        .is_err());
    // Already running: a second adoption is refused too.
    f.hub
        .adopt(id, server_side.as_raw_fd(), true, |fd| released.push(fd))
        .unwrap();
    assert!(f
        .hub
        .adopt(id, server_side.as_raw_fd(), true, |fd| released.push(fd))
        .is_err());
    assert_eq!(released, vec![server_side.as_raw_fd()]);
    drop(peer);
}

#[test]
fn heartbeat_follows_idleness() {
    let f = fixture(HubConfig {
        heartbeat: Duration::from_millis(50),
        ..config()
    });
    let (_, mut peer) = f.connect(false);
    let started = Instant::now();
    assert_eq!(read_exactly(&mut peer, 3), b":\n\n");
    assert_eq!(read_exactly(&mut peer, 3), b":\n\n");
    assert!(started.elapsed() >= Duration::from_millis(90));
    assert!(f.hub.stats().heartbeats >= 2);
}

/// A Fetch body under a runtime that cuts quiet responses sooner than the hub's period
/// (Bun.serve: 10 s) gets heartbeats at its own period, parked between them, while a client on
/// the hub's period (60 s here) gets none in the same time.
#[test]
fn a_fetch_client_keeps_its_own_heartbeat_period() {
    let f = fixture(config());
    let own = f.hub.register(None, Vec::new(), None).unwrap().0;
    f.hub
        .start_fetch(own, Some(Duration::from_millis(50)))
        .unwrap();
    let hubs = f.hub.register(None, Vec::new(), None).unwrap().0;
    f.hub.start_fetch(hubs, None).unwrap();
    let started = Instant::now();
    let mut heartbeats = 0;
    while heartbeats < 4 {
        match f.next_node_event() {
            Event::Write(id, bytes) => {
                if bytes == b":\n\n" && started.elapsed() > Duration::from_millis(20) {
                    assert_eq!(
                        id, own,
                        "only the client with its own period gets heartbeats"
                    );
                    heartbeats += 1;
                }
                accept_all(&f.hub, id);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "none came early"
    );
    assert!(f.hub.stats().heartbeats >= 4);
}

/// Reads whatever `peer` holds now without waiting, and counts the heartbeats in it.
fn heartbeats_waiting(peer: &mut TcpStream) -> usize {
    peer.set_nonblocking(true).unwrap();
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match peer.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    peer.set_nonblocking(false).unwrap();
    assert!(bytes.chunks(3).all(|c| c == b":\n\n"), "only heartbeats");
    bytes.len() / 3
}

/// Idle native writers park after a second without events (no task each; see `writer`), and
/// the hub's heartbeat queue resumes each when its heartbeat is due: every parked client keeps
/// getting heartbeats, none more often than its period.
#[test]
fn parked_clients_keep_their_heartbeats_and_none_comes_early() {
    let period = Duration::from_millis(150);
    let f = fixture(HubConfig {
        heartbeat: period,
        ..config()
    });
    let mut peers: Vec<TcpStream> = (0..64).map(|_| f.connect(false).1).collect();
    // Past the second after which an idle writer parks.
    std::thread::sleep(Duration::from_millis(1300));
    for peer in &mut peers {
        heartbeats_waiting(peer);
    }
    let window = Duration::from_millis(750);
    std::thread::sleep(window);
    for peer in &mut peers {
        let count = heartbeats_waiting(peer);
        // Five periods: at most 5, or 6 if one was on its way as counting began (an early or
        // spinning heartbeat makes many more); at least 2 on a loaded machine.
        assert!((2..=6).contains(&count), "{count} heartbeats in {window:?}");
    }
}

/// A parked client woken by an event writes it at once, and its next heartbeat comes a whole
/// period after that event, not when the entry queued at its parking comes due.
#[test]
fn an_event_wakes_a_parked_client_and_moves_its_heartbeat_on() {
    let period = Duration::from_millis(400);
    let f = fixture(HubConfig {
        heartbeat: period,
        ..config()
    });
    let (id, mut peer) = f.connect(false);
    std::thread::sleep(Duration::from_millis(1300));
    heartbeats_waiting(&mut peer);
    // Somewhere in its period: the entry queued for it comes due before a period has passed.
    std::thread::sleep(period / 2);
    let sent = Instant::now();
    f.hub.send(id, &data("moved")).unwrap();
    let mut seen = Vec::new();
    while !seen.ends_with(b"data: moved\n\n") {
        seen.extend(read_exactly(&mut peer, 1));
    }
    assert!(
        sent.elapsed() < period / 2,
        "the event waited for a heartbeat"
    );
    let event_seen = Instant::now();
    assert_eq!(read_exactly(&mut peer, 3), b":\n\n");
    let gap = event_seen.elapsed();
    assert!(
        gap >= period - Duration::from_millis(20),
        "heartbeat {gap:?} after the event"
    );
}

#[test]
fn peer_fin_is_a_client_close_and_is_reported_once() {
    let f = fixture(config());
    let (id, peer) = f.connect(true);
    peer.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(f.next_close(), (id, CloseReason::Client));
    assert!(f.closes.recv_timeout(Duration::from_millis(100)).is_err());
    assert_eq!(f.hub.size(), 0);
}

#[test]
fn server_close_drains_then_ends_the_chunked_body() {
    let f = fixture(config());
    let (id, mut peer) = f.connect(true);
    f.hub
        .send(
            id,
            &Message {
                data: Some("last"),
                ..Default::default()
            },
        )
        .unwrap();
    let late_is_refused = |f: &Fixture| {
        let late = Message {
            data: Some("too late"),
            ..Default::default()
        };
        f.hub.send(id, &late).unwrap() == Delivery::Gone
    };
    assert!(f.hub.close_client(id, CloseReason::Server));
    assert!(late_is_refused(&f));
    let mut all = Vec::new();
    peer.read_to_end(&mut all).unwrap();
    assert_eq!(all, b"c\r\ndata: last\n\n\r\n0\r\n\r\n");
    assert_eq!(f.next_close(), (id, CloseReason::Server));
}

#[test]
fn overflow_disconnects_a_client_that_does_not_read() {
    let f = fixture(HubConfig {
        max_lag_bytes: 64 * 1024,
        max_event_bytes: 64 * 1024,
        overflow: OverflowPolicy::Disconnect,
        ..config()
    });
    let (id, _peer) = f.connect(false);
    let payload = "x".repeat(16 * 1024);
    let message = Message {
        data: Some(&payload),
        ..Default::default()
    };
    // The peer never reads: kernel buffers fill, then the queue, then the policy applies.
    // The level is sampled while the client is still registered (it is removed on overflow).
    let mut closed = None;
    let mut highest = 0;
    for _ in 0..4000 {
        highest = highest.max(f.hub.queue_levels().max_client_bytes);
        f.hub.broadcast(&message).unwrap();
        if let Ok(close) = f.closes.try_recv() {
            closed = Some((close.0, close.1.reason));
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    assert_eq!(closed, Some((id, CloseReason::Slow)));
    // Full to within one event of the bound, and never above it.
    assert!(
        highest > 64 * 1024 - 2 * message.encode().unwrap().len(),
        "{highest}"
    );
    assert!(highest <= 64 * 1024, "{highest}");
}

#[test]
fn a_pending_client_closed_before_adoption_is_reported_and_cannot_be_adopted() {
    let f = fixture(config());
    let id = f.hub.register(None, Vec::new(), None).unwrap().0;
    assert!(f.hub.close_client(id, CloseReason::Client));
    assert_eq!(f.next_close(), (id, CloseReason::Client));
    let peer = TcpStream::connect(f.listener.local_addr().unwrap()).unwrap();
    let (server_side, _) = f.listener.accept().unwrap();
    assert!(f
        .hub
        .adopt(id, server_side.as_raw_fd(), true, |_| {})
        .is_err());
    drop(peer);
}

#[test]
fn dropping_the_hub_reports_every_client() {
    let mut f = fixture(config());
    let (a, _pa) = f.connect(true);
    let (b, _pb) = f.connect(true);
    f.hub.shutdown(Duration::from_secs(1));
    let mut closes = vec![f.next_close(), f.next_close()];
    closes.sort_by_key(|c| c.0);
    assert_eq!(
        closes,
        vec![(a, CloseReason::Server), (b, CloseReason::Server)]
    );
    assert_eq!(f.hub.size(), 0);
}

/// Acknowledges everything a relayed client is handed from now on, as a response that never
/// pushes back.
fn accept_all(hub: &Hub, id: u64) {
    hub.relay_acknowledged(id, u64::MAX);
}

/// The server closes relayed client `id`: its response ends after what it was sent, and
/// nothing of it stays queued.
fn ends_on_server_close(f: &Fixture, id: u64) {
    f.hub.close_client(id, CloseReason::Server);
    assert_eq!(f.next_node_event(), Event::End(id));
    assert_eq!(f.next_close(), (id, CloseReason::Server));
    assert_eq!(f.hub.queue_levels().queued_events, 0);
}

fn data(text: &str) -> Message<'_> {
    Message {
        data: Some(text),
        ..Default::default()
    }
}

#[test]
fn channels_route_publishes_to_their_subscribers_only() {
    let f = fixture(config());
    let ids: Vec<u64> = [vec!["a"], vec!["a", "b"], vec![]]
        .into_iter()
        .map(|channels| {
            let id = f
                .hub
                .register(None, channels.into_iter().map(String::from).collect(), None)
                .unwrap()
                .0;
            f.hub.start_node(id, None).unwrap();
            id
        })
        .collect();
    assert_eq!(f.hub.publish("a", &data("to a")).unwrap(), 2);
    assert_eq!(f.hub.publish("b", &data("to b")).unwrap(), 1);
    assert_eq!(f.hub.publish("nobody", &data("x")).unwrap(), 0);
    // Collect what each client was sent, acknowledging every batch, until both are complete.
    let mut received: std::collections::HashMap<u64, Vec<u8>> = Default::default();
    let a = b":\n\ndata: to a\n\n".to_vec();
    let ab = b":\n\ndata: to a\n\ndata: to b\n\n".to_vec();
    let opening = b":\n\n".to_vec();
    while received.get(&ids[0]) != Some(&a)
        || received.get(&ids[1]) != Some(&ab)
        || received.get(&ids[2]) != Some(&opening)
    {
        match f.next_node_event() {
            Event::Write(id, bytes) => {
                received.entry(id).or_default().extend(bytes);
                accept_all(&f.hub, id);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(f.hub.channel_size("a"), 2);
    f.hub.close_client(ids[0], CloseReason::Client);
    assert_eq!(f.next_close(), (ids[0], CloseReason::Client));
    assert_eq!(f.hub.channel_size("a"), 1);
    assert_eq!(f.hub.channel_size("b"), 1);
}

#[test]
fn node_transport_batches_while_unacknowledged_and_ends_on_server_close() {
    let f = fixture(config());
    let id = f.hub.register(None, Vec::new(), None).unwrap().0;
    f.hub.start_node(id, None).unwrap();
    assert_eq!(f.next_node_event(), Event::Write(id, b":\n\n".to_vec()));
    // Acknowledged with the bytes taken so far.
    f.hub.relay_acknowledged(id, 3);
    f.hub.send(id, &data("1")).unwrap();
    assert_eq!(
        f.next_node_event(),
        Event::Write(id, b"data: 1\n\n".to_vec())
    );
    // Not acknowledged yet: these wait in the queue and then go as one batch.
    f.hub.send(id, &data("2")).unwrap();
    f.hub.send(id, &data("3")).unwrap();
    assert!(f.node.recv_timeout(Duration::from_millis(100)).is_err());
    assert_eq!(f.hub.queue_levels().queued_events, 3);
    f.hub.relay_acknowledged(id, 12);
    assert_eq!(
        f.next_node_event(),
        Event::Write(id, b"data: 2\n\ndata: 3\n\n".to_vec())
    );
    f.hub.relay_acknowledged(id, 30);
    ends_on_server_close(&f, id);
}

#[test]
fn fetch_transport_waits_while_refused_and_ends_on_server_close() {
    let f = fixture(config());
    let id = f.hub.register(None, Vec::new(), None).unwrap().0;
    f.hub.start_fetch(id, None).unwrap();
    assert_eq!(f.next_node_event(), Event::Write(id, b":\n\n".to_vec()));
    f.hub.send(id, &data("1")).unwrap();
    // Within the credit, the next batch goes without an acknowledgement.
    assert_eq!(
        f.next_node_event(),
        Event::Write(id, b"data: 1\n\n".to_vec())
    );
    // Its response refused it: these wait until it drains.
    f.hub.relay_refused(id);
    f.hub.send(id, &data("2")).unwrap();
    f.hub.send(id, &data("3")).unwrap();
    assert!(f.node.recv_timeout(Duration::from_millis(100)).is_err());
    assert_eq!(f.hub.queue_levels().queued_events, 2);
    f.hub.relay_acknowledged(id, 12);
    // In one batch or two (the one the refusal held, formed before the third send or not).
    let mut after = Vec::new();
    while after != b"data: 2\n\ndata: 3\n\n" {
        match f.next_node_event() {
            Event::Write(_, bytes) => after.extend(bytes),
            other => panic!("unexpected {other:?}"),
        }
    }
    ends_on_server_close(&f, id);
}

#[test]
fn fetch_transport_hands_no_more_than_its_credit_unacknowledged() {
    let f = fixture(config());
    let id = f.hub.register(None, Vec::new(), None).unwrap().0;
    f.hub.start_fetch(id, None).unwrap();
    let mut handed = 0;
    let event = "x".repeat(1000);
    let mut sent = 0;
    // Never acknowledged: one event at a time goes, each its own batch, until the credit is
    // used up; then the next one waits.
    loop {
        f.hub.send(id, &data(&event)).unwrap();
        sent += 1;
        let mut got = false;
        while let Ok(Event::Write(_, bytes)) = f.node.recv_timeout(Duration::from_millis(200)) {
            handed += bytes.len() as u64;
            got = true;
        }
        if !got || sent == 40 {
            break;
        }
    }
    assert!(sent < 40, "a send waited before 40 ({handed} B handed)");
    assert!(
        (RELAY_CREDIT_BYTES..RELAY_CREDIT_BYTES + 1008).contains(&handed),
        "{handed} B handed"
    );
    assert_eq!(f.hub.queue_levels().queued_events, 1, "the last send waits");
    // Acknowledged, it follows.
    f.hub.relay_acknowledged(id, handed);
    assert_eq!(
        f.next_node_event(),
        Event::Write(id, format!("data: {event}\n\n").into_bytes())
    );
}

#[test]
fn fetch_transport_refused_and_never_drained_times_out_and_is_destroyed() {
    let f = fixture(HubConfig {
        write_timeout: Duration::from_millis(100),
        ..config()
    });
    let id = f.hub.register(None, Vec::new(), None).unwrap().0;
    f.hub.start_fetch(id, None).unwrap();
    // The opening frame, refused and never acknowledged: the next batch waits, and its
    // deadline runs.
    assert_eq!(f.next_node_event(), Event::Write(id, b":\n\n".to_vec()));
    f.hub.relay_refused(id);
    f.hub.send(id, &data("1")).unwrap();
    assert_eq!(f.next_node_event(), Event::Destroy(id));
    assert_eq!(f.next_close(), (id, CloseReason::Timeout));
}

#[test]
fn node_transport_without_acknowledgement_times_out_and_is_destroyed() {
    let f = fixture(HubConfig {
        write_timeout: Duration::from_millis(100),
        ..config()
    });
    let id = f.hub.register(None, Vec::new(), None).unwrap().0;
    f.hub.start_node(id, None).unwrap();
    // The opening frame, never acknowledged.
    assert_eq!(f.next_node_event(), Event::Write(id, b":\n\n".to_vec()));
    assert_eq!(f.next_node_event(), Event::Destroy(id));
    assert_eq!(f.next_close(), (id, CloseReason::Timeout));
}

#[test]
fn node_transport_heartbeats_when_idle() {
    let f = fixture(HubConfig {
        heartbeat: Duration::from_millis(50),
        ..config()
    });
    let id = f.hub.register(None, Vec::new(), None).unwrap().0;
    f.hub.start_node(id, None).unwrap();
    assert_eq!(f.next_node_event(), Event::Write(id, b":\n\n".to_vec()));
    assert_eq!(
        f.hub.stats().heartbeats,
        0,
        "the first write is the opening frame"
    );
    f.hub.relay_acknowledged(id, 3);
    assert_eq!(f.next_node_event(), Event::Write(id, b":\n\n".to_vec()));
    assert_eq!(f.hub.stats().heartbeats, 1);
}

#[test]
fn a_client_refilled_as_fast_as_it_drains_does_not_starve_the_others() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let f = fixture(config()); // one worker thread
    let (hot, mut hot_peer) = f.connect(false);
    let (quiet, mut quiet_peer) = f.connect(false);
    let stop = AtomicBool::new(false);
    let waited = std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut buf = vec![0u8; 1 << 16];
            // Blocking reads (no spinning): ends on EOF, error, or the stop flag.
            while !stop.load(Ordering::Relaxed) {
                if hot_peer.read(&mut buf).unwrap_or(0) == 0 {
                    break;
                }
            }
        });
        // Keeps the hot client's queue refilled while the quiet client waits, bounded in time.
        scope.spawn(|| {
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(5) {
                for _ in 0..64 {
                    let _ = f.hub.send(hot, &data("hot"));
                }
            }
        });
        std::thread::sleep(Duration::from_millis(100));
        let sent = Instant::now();
        f.hub.send(quiet, &data("quiet")).unwrap();
        let frame = b"data: quiet\n\n";
        let got = read_exactly(&mut quiet_peer, frame.len());
        let waited = sent.elapsed();
        stop.store(true, Ordering::Relaxed);
        f.hub.close_client(hot, CloseReason::Server);
        assert_eq!(got, frame);
        waited
    });
    assert!(
        waited < Duration::from_secs(1),
        "the quiet client waited {waited:?}"
    );
}

#[test]
fn a_producer_above_the_high_water_mark_is_told_when_to_go_on() {
    let f = fixture(HubConfig {
        high_water_bytes: 100,
        ..config()
    });
    let id = f.hub.register(None, Vec::new(), None).unwrap().0;
    f.hub.start_node(id, None).unwrap();
    assert_eq!(f.next_node_event(), Event::Write(id, b":\n\n".to_vec()));
    // The opening frame is not acknowledged yet, so these wait in the mailbox.
    let token = "t".repeat(40);
    let sent: Vec<Delivery> = (0..3)
        .map(|_| f.hub.send(id, &data(&token)).unwrap())
        .collect();
    assert_eq!(
        sent,
        vec![Delivery::Queued, Delivery::Queued, Delivery::AboveHighWater]
    );
    f.hub.relay_acknowledged(id, 3);
    assert!(matches!(f.next_node_event(), Event::Write(..)));
    f.hub.relay_acknowledged(id, 3 + 3 * 48);
    assert_eq!(f.next_node_event(), Event::Drained(id));
}

#[test]
fn send_many_queues_all_in_order_or_none() {
    let f = fixture(config());
    let (id, mut peer) = f.connect(false);
    let bad = Message {
        data: Some("x"),
        event: Some("two\nlines"),
        ..Default::default()
    };
    let refused = f.hub.send_many(id, &[data("never"), bad, data("never")]);
    assert!(matches!(
        refused,
        Err((1, native_sse_core::SseError::InvalidField { .. }))
    ));
    let messages = [data("one"), data("two\nlines"), data("")];
    assert_eq!(f.hub.send_many(id, &messages).unwrap(), Delivery::Queued);
    assert_eq!(f.hub.send(id, &data("after")).unwrap(), Delivery::Queued);
    let expected = b"data: one\n\ndata: two\ndata: lines\n\ndata: \n\ndata: after\n\n";
    assert_eq!(read_exactly(&mut peer, expected.len()), expected);
}

/// `send_texts` as the binding's batches of data-only sends take it: under `Disconnect` one
/// mailbox slot holds the batch, and its events still count one by one, against the lag bound
/// and in what the client got; under `DropOldest` each event has its own slot, so an overflow
/// drops single events, the oldest.
#[test]
fn send_texts_count_as_their_events_whether_or_not_they_share_a_slot() {
    let f = fixture(HubConfig {
        max_lag_events: 4,
        ..config()
    });
    let (id, mut peer) = f.connect_with_retry(true, Some(1000));
    assert_eq!(
        f.hub.send_texts(id, &["one", "two\r\nlines", ""]).unwrap(),
        Delivery::Queued
    );
    f.hub.close_client(id, CloseReason::Server);
    let body = read_to_end(&mut peer);
    let (_, departure) = f.next_departure();
    assert_eq!(departure.delivered.events, 3);
    assert_eq!(departure.delivered.bytes, body.len() as u64);
    let events = b"data: one\n\ndata: two\ndata: lines\n\ndata: \n\n";
    assert!(
        body.windows(events.len()).any(|w| w == events),
        "{}",
        String::from_utf8_lossy(&body)
    );

    // Five events in one batch are more than the mailbox may hold (four): the client is cut,
    // as it would be five sends in a row.
    let (id, _peer) = f.connect(false);
    let five = ["a", "b", "c", "d", "e"];
    assert_eq!(f.hub.send_texts(id, &five).unwrap(), Delivery::Gone);
    assert_eq!(f.next_close(), (id, CloseReason::Slow));

    let g = fixture(HubConfig {
        max_lag_events: 4,
        overflow: OverflowPolicy::DropOldest,
        ..config()
    });
    let id = g.hub.register(None, Vec::new(), None).unwrap().0;
    g.hub.start_node(id, None).unwrap();
    assert_eq!(g.next_node_event(), Event::Write(id, b":\n\n".to_vec()));
    // The opening frame is not acknowledged, and counts until it is: of the five, the mailbox
    // keeps the newest three.
    assert_eq!(g.hub.send_texts(id, &five).unwrap(), Delivery::Queued);
    assert_eq!(g.hub.stats().events_dropped, 2);
    g.hub.relay_acknowledged(id, 3);
    assert_eq!(
        g.next_node_event(),
        Event::Write(id, b"data: c\n\ndata: d\n\ndata: e\n\n".to_vec())
    );
}

/// Reads until the peer closes; returns everything read.
fn read_to_end(peer: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    peer.read_to_end(&mut all).unwrap();
    all
}

#[test]
fn caps_refuse_new_clients_and_leave_the_others_alone() {
    use native_sse_core::{Refusal, SseError};
    let f = fixture(HubConfig {
        max_clients: 2,
        ..config()
    });
    let (_, mut a) = f.connect(false);
    let (_, _b) = f.connect(false);
    assert_eq!(
        f.hub.register(None, Vec::new(), None).unwrap_err(),
        SseError::Refused(Refusal::HubFull)
    );
    f.hub.broadcast(&data("still here")).unwrap();
    assert_eq!(
        read_exactly(&mut a, b"data: still here\n\n".len()),
        b"data: still here\n\n"
    );
    assert_eq!(f.hub.size(), 2);

    let g = fixture(config());
    g.hub.set_channel_cap("room", Some(1));
    let first = g.hub.register(None, vec!["room".into()], None).unwrap().0;
    assert_eq!(
        g.hub
            .register(None, vec!["lobby".into(), "room".into()], None)
            .unwrap_err(),
        SseError::Refused(Refusal::ChannelFull)
    );
    let other = g.hub.register(None, vec!["lobby".into()], None).unwrap().0;
    assert!(!g.hub.subscribe(other, "room").unwrap(), "the room is full");
    assert!(g.hub.subscribe(first, "lobby").unwrap());
    g.hub.set_channel_cap("room", None);
    assert!(g.hub.subscribe(other, "room").unwrap());
    let stats = g.hub.stats();
    assert_eq!(
        (stats.refused_channel_full, stats.subscriptions_refused),
        (1, 1)
    );
    assert_eq!(f.hub.stats().refused_hub_full, 1);
}

#[test]
fn a_departure_reports_the_events_and_bytes_the_client_got() {
    let f = fixture(config());
    let (id, mut peer) = f.connect_with_retry(true, Some(1000));
    f.hub.subscribe(id, "news").unwrap();
    f.hub.broadcast(&data("one")).unwrap();
    f.hub.publish("news", &data("two")).unwrap();
    f.hub.comment(id, "not an event").unwrap();
    f.hub.send(id, &data("three")).unwrap();
    f.hub.close_client(id, CloseReason::Server);
    let body = read_to_end(&mut peer);
    let (closed, departure) = f.next_departure();
    assert_eq!(closed, id);
    assert_eq!(departure.reason, CloseReason::Server);
    assert_eq!(departure.delivered.events, 3);
    assert_eq!(departure.delivered.bytes, body.len() as u64);
    assert_eq!(departure.channels, vec![std::sync::Arc::from("news")]);
    assert_eq!(f.hub.stats().delivered, 3);
}

#[test]
fn a_staged_close_spreads_the_closes_with_jittered_retries_and_a_farewell() {
    use native_sse_core::{Refusal, SseError, StagedClose};
    let f = fixture(config());
    let mut peers: Vec<TcpStream> = (0..20).map(|_| f.connect(false).1).collect();
    f.hub.broadcast(&data("queued before")).unwrap();
    let farewell = Message {
        event: Some("bye"),
        data: Some("moving"),
        ..Default::default()
    };
    let started = Instant::now();
    f.hub
        .close_staged(StagedClose {
            drain: Duration::from_secs(5),
            spread: Duration::from_millis(600),
            retry_ms: 1000,
            retry_jitter_ms: 4000,
            farewell: Some(&farewell),
        })
        .unwrap();
    assert_eq!(
        f.hub.register(None, Vec::new(), None).unwrap_err(),
        SseError::Refused(Refusal::Closing)
    );
    // Each peer read on its own thread, so each end is seen when it happens.
    let readers: Vec<_> = peers
        .drain(..)
        .map(|mut peer| {
            std::thread::spawn(move || {
                let body = String::from_utf8(read_to_end(&mut peer)).unwrap();
                (body, started.elapsed())
            })
        })
        .collect();
    let mut retries = Vec::new();
    let mut ended = Vec::new();
    for reader in readers {
        let (body, at) = reader.join().unwrap();
        ended.push(at);
        let rest = body
            .strip_prefix("data: queued before\n\n:\nretry: ")
            .unwrap_or_else(|| panic!("unexpected body {body:?}"));
        let (retry, tail) = rest.split_once('\n').unwrap();
        assert_eq!(tail, "\nevent: bye\ndata: moving\n\n");
        let retry: u64 = retry.parse().unwrap();
        assert!((1000..=5000).contains(&retry));
        retries.push(retry);
    }
    retries.sort_unstable();
    retries.dedup();
    assert!(retries.len() > 10, "retries: {retries:?}");
    ended.sort_unstable();
    assert!(
        ended[ended.len() - 1] - ended[0] >= Duration::from_millis(300),
        "closes were not spread: {ended:?}"
    );
    for _ in 0..20 {
        assert_eq!(f.next_close().1, CloseReason::Server);
    }
}

#[test]
fn metrics_count_what_happened_without_visiting_clients() {
    let f = fixture(HubConfig {
        history: native_sse_core::History {
            max_events: 10,
            max_bytes: 1 << 20,
            max_age: None,
        },
        ..config()
    });
    let (id, mut peer) = f.connect(false);
    f.hub.subscribe(id, "a").unwrap();
    for _ in 0..3 {
        f.hub.publish("a", &data("x")).unwrap();
    }
    f.hub.broadcast(&data("y")).unwrap();
    f.hub.send(id, &data("z")).unwrap();
    let mut seen = 0;
    while seen < 5 {
        let mut buf = [0u8; 4096];
        let n = peer.read(&mut buf).unwrap();
        seen += String::from_utf8_lossy(&buf[..n]).matches("data: ").count();
    }
    let metrics = f.hub.metrics(Some(usize::MAX));
    assert_eq!(metrics.stats.published_channel, 3);
    assert_eq!(metrics.stats.published_broadcast, 1);
    assert_eq!(metrics.stats.published_client, 1);
    assert_eq!(metrics.stats.running_native, 1);
    assert_eq!(metrics.clients, 1);
    assert_eq!(metrics.channels, 1);
    // History keeps every frame: 3 in the channel, 1 broadcast.
    assert_eq!(metrics.held_events, 4);
    assert_eq!(metrics.per_channel.len(), 1);
    assert_eq!(metrics.per_channel[0].subscribers, 1);
    assert_eq!(metrics.per_channel[0].held_events, 3);
    drop(peer);
    f.next_close();
    let after = f.hub.metrics(None);
    assert_eq!(after.stats.running_native, 0);
    assert_eq!(after.clients, 0);
    assert!(after.per_channel.is_empty());
}

#[test]
fn per_channel_metrics_list_the_most_subscribed_channels_up_to_the_limit_in_name_order() {
    let f = fixture(config());
    let mut peers = Vec::new();
    // d: 1, c: 1, b: 2 subscribers, a: none (subscribed, then left).
    for channels in [&["d"][..], &["c", "b"], &["b", "a"]] {
        let (id, peer) = f.connect(false);
        for channel in channels {
            f.hub.subscribe(id, channel).unwrap();
        }
        peers.push((id, peer));
    }
    assert!(f.hub.unsubscribe(peers[2].0, "a"));
    let names = |limit| -> Vec<String> {
        let listed = f.hub.metrics(limit).per_channel;
        listed.iter().map(|c| c.name.to_string()).collect()
    };
    let channels = f.hub.metrics(None).channels as usize;
    assert_eq!(names(Some(usize::MAX)).len(), channels);
    // b has the most; c and d tie, and the name picks c.
    assert_eq!(names(Some(2)), ["b", "c"]);
    assert_eq!(names(Some(3)), ["b", "c", "d"]);
    assert_eq!(names(Some(1)), ["b"]);
    assert!(names(Some(0)).is_empty());
    assert!(names(None).is_empty());
}

#[test]
fn the_connection_gauges_count_each_transport_under_its_own_kind() {
    let f = fixture(config());
    let (native, peer) = f.connect(false);
    let node = f.hub.register(None, Vec::new(), None).unwrap().0;
    f.hub.start_node(node, None).unwrap();
    let fetch = f.hub.register(None, Vec::new(), None).unwrap().0;
    f.hub.start_fetch(fetch, None).unwrap();
    let pending = f.hub.register(None, Vec::new(), None).unwrap().0;
    // Both relayed writers hand over their opening frame; acknowledged, they can end at once.
    for _ in 0..2 {
        assert!(matches!(f.next_node_event(), Event::Write(..)));
    }
    f.hub.relay_acknowledged(node, 3);
    f.hub.relay_acknowledged(fetch, 3);
    let running = |m: &native_sse_core::Metrics| {
        (
            m.stats.running_native,
            m.stats.running_node,
            m.stats.running_fetch,
            m.clients,
        )
    };
    assert_eq!(running(&f.hub.metrics(None)), (1, 1, 1, 4));
    assert!(
        f.hub.start_node(fetch, None).is_err(),
        "a running client's transport does not change"
    );
    f.hub.close_client(fetch, CloseReason::Server);
    f.hub.close_client(pending, CloseReason::Server);
    let mut closed: Vec<u64> = vec![f.next_close().0, f.next_close().0];
    closed.sort_unstable();
    assert_eq!(closed, vec![fetch, pending]);
    assert_eq!(running(&f.hub.metrics(None)), (1, 1, 0, 2));
    f.hub.close_client(node, CloseReason::Server);
    f.hub.close_client(native, CloseReason::Server);
    f.next_close();
    f.next_close();
    drop(peer);
    assert_eq!(running(&f.hub.metrics(None)), (0, 0, 0, 0));
}

#[test]
fn a_client_has_at_most_max_channels_per_client_channels() {
    use native_sse_core::SseError;
    let f = fixture(HubConfig {
        max_channels_per_client: 3,
        ..config()
    });
    let too_many: Vec<String> = (0..4).map(|i| format!("c{i}")).collect();
    assert_eq!(
        f.hub.register(None, too_many, None).unwrap_err(),
        SseError::TooManyChannels { count: 4, limit: 3 }
    );
    assert_eq!(f.hub.size(), 0, "a refused register leaves nothing behind");
    assert_eq!(f.hub.stats().connections_opened, 0);
    let id = f
        .hub
        .register(None, vec!["c0".into(), "c1".into()], None)
        .unwrap()
        .0;
    assert!(f.hub.subscribe(id, "c2").unwrap());
    assert!(
        !f.hub.subscribe(id, "c2").unwrap(),
        "already subscribed: no error"
    );
    let error = f.hub.subscribe(id, "c3").unwrap_err();
    assert_eq!(error.code().as_str(), "ERR_SSE_TOO_MANY_CHANNELS");
    assert!(error.to_string().contains("at most 3 channels"), "{error}");
    assert_eq!(
        f.hub.channel_size("c3"),
        0,
        "the refused channel was not made"
    );
    assert_eq!(f.hub.metrics(None).channels, 3);
    // Leaving one makes room for another.
    assert!(f.hub.unsubscribe(id, "c0"));
    assert!(f.hub.subscribe(id, "c3").unwrap());
}

/// A held registration (an embedder's asynchronous authorization deciding) counts as opened
/// only once admitted; withdrawn, it leaves its channel without a `closed` and is counted as
/// the refusal given.
#[test]
fn a_held_client_is_counted_when_admitted_and_withdrawn_without_a_trace() {
    use native_sse_core::Refusal;
    let f = fixture(config());
    let held = f
        .hub
        .register_held(None, vec!["room".into()], None)
        .unwrap()
        .0;
    assert_eq!(f.hub.metrics(None).stats.connections_opened, 0);
    assert_eq!(
        f.hub.channel_size("room"),
        1,
        "registered: publishes wait for it"
    );
    assert!(f.hub.withdraw(held, Refusal::Forbidden));
    assert!(!f.hub.withdraw(held, Refusal::Forbidden), "once");
    assert_eq!(f.hub.channel_size("room"), 0);
    assert!(
        f.closes.recv_timeout(Duration::from_millis(100)).is_err(),
        "no closed event"
    );
    let stats = f.hub.metrics(None).stats;
    assert_eq!((stats.connections_opened, stats.refused_forbidden), (0, 1));
    assert_eq!(stats.closed_server + stats.closed_client, 0);

    let admitted = f.hub.register_held(None, Vec::new(), None).unwrap().0;
    assert!(f.hub.admit(admitted));
    assert_eq!(f.hub.metrics(None).stats.connections_opened, 1);
    f.hub.count_refusal(Refusal::AuthorizationFailed);
    assert_eq!(f.hub.metrics(None).stats.refused_authorization_failed, 1);
}
