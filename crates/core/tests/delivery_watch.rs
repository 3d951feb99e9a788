//! Delivery reports (`Hub::publish_watched`) over real loopback sockets: one per watched
//! event, after every client it was for had it written, with the count; none for events
//! nobody watches.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use native_sse_core::{DeliveryReport, Departure, Hub, HubConfig, HubEvents, Message};

struct Reports(Mutex<mpsc::Sender<DeliveryReport>>);

impl HubEvents for Reports {
    fn closed(&self, _: u64, _: Departure) {}
    fn write(&self, _: u64, _: bytes::Bytes) {}
    fn end(&self, _: u64) {}
    fn destroy(&self, _: u64) {}
    fn drained(&self, _: u64) {}
    fn delivered(&self, report: DeliveryReport) {
        let _ = self.0.lock().unwrap().send(report);
    }
}

fn hub() -> (Hub, mpsc::Receiver<DeliveryReport>, TcpListener) {
    let (tx, rx) = mpsc::channel();
    let config = HubConfig {
        heartbeat: Duration::from_secs(60),
        worker_threads: 1,
        // Room for one event larger than a loopback socket's buffers can take.
        max_event_bytes: 64 << 20,
        max_lag_bytes: 128 << 20,
        ..HubConfig::default()
    };
    let hub = Hub::new(config, Box::new(Reports(Mutex::new(tx)))).unwrap();
    (hub, rx, TcpListener::bind("127.0.0.1:0").unwrap())
}

/// A client on `channels`, its opening (`:\n\n`) read.
fn connect(hub: &Hub, listener: &TcpListener, channels: &[&str]) -> TcpStream {
    let mut peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (server_side, _) = listener.accept().unwrap();
    let names = channels.iter().map(|c| c.to_string()).collect();
    let (id, _) = hub.register(None, names, None).unwrap();
    hub.adopt(id, server_side.as_raw_fd(), false, |_| {})
        .unwrap();
    drop(server_side);
    let mut opening = [0u8; 3];
    peer.read_exact(&mut opening).unwrap();
    assert_eq!(&opening, b":\n\n");
    peer
}

fn read_frame(peer: &mut TcpStream, frame: &[u8]) {
    let mut got = vec![0u8; frame.len()];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(got, frame);
}

fn message(data: &str) -> Message<'_> {
    Message {
        data: Some(data),
        ..Default::default()
    }
}

#[test]
fn a_watched_publish_is_reported_once_with_its_recipients_after_they_had_it() {
    let (hub, reports, listener) = hub();
    let mut peers: Vec<TcpStream> = (0..3)
        .map(|_| connect(&hub, &listener, &["prices"]))
        .collect();
    let mut other = connect(&hub, &listener, &["news"]);

    // Not watched: never reported.
    assert_eq!(hub.publish("prices", &message("plain")).unwrap(), 3);
    for peer in peers.iter_mut() {
        read_frame(peer, b"data: plain\n\n");
    }
    assert_eq!(
        hub.publish_watched(Some("prices"), &message("one"), 7, None)
            .unwrap(),
        3
    );
    assert_eq!(
        hub.publish_watched(None, &message("all"), 8, None).unwrap(),
        4
    );
    for peer in peers.iter_mut() {
        read_frame(peer, b"data: one\n\ndata: all\n\n");
    }
    read_frame(&mut other, b"data: all\n\n");

    let mut got: Vec<DeliveryReport> = (0..2)
        .map(|_| reports.recv_timeout(Duration::from_secs(10)).unwrap())
        .collect();
    got.sort_by_key(|r| r.token);
    assert_eq!(
        (got[0].token, got[0].recipients, got[0].complete),
        (7, 3, true)
    );
    assert_eq!(
        (got[1].token, got[1].recipients, got[1].complete),
        (8, 4, true)
    );
    assert!(got.iter().all(|r| r.elapsed < Duration::from_secs(10)));
    hub.close_all();
    assert!(
        reports.recv_timeout(Duration::from_millis(300)).is_err(),
        "each once, and nothing for the unwatched event"
    );
}

#[test]
fn a_watched_event_for_nobody_is_reported_at_once_and_one_whose_clients_leave_when_they_go() {
    let (hub, reports, listener) = hub();
    // The broadcast log always exists: with no client it has no reader.
    assert_eq!(
        hub.publish_watched(None, &message("alone"), 1, None)
            .unwrap(),
        0
    );
    let report = reports.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        (report.token, report.recipients, report.complete),
        (1, 0, true)
    );
    // A channel nobody reads has no log: nothing is appended, and it is reported at once too.
    assert_eq!(
        hub.publish_watched(Some("empty"), &message("void"), 3, None)
            .unwrap(),
        0
    );
    let report = reports.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        (report.token, report.recipients, report.complete),
        (3, 0, true)
    );

    // A client that never reads: the event waits for it until it leaves (FIN).
    let peer = connect(&hub, &listener, &[]);
    // Larger than the socket buffers (send and receive, a few MiB each at most), so this one
    // cannot be written out in full.
    let big = "x".repeat(32 << 20);
    assert_eq!(
        hub.publish_watched(None, &message(&big), 2, None).unwrap(),
        1
    );
    assert!(
        reports.recv_timeout(Duration::from_millis(300)).is_err(),
        "not delivered while its client has not had it"
    );
    drop(peer);
    let report = reports.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(
        (report.token, report.recipients, report.complete),
        (2, 1, true)
    );
    hub.close_all();
}

#[test]
fn a_watched_event_the_log_lets_go_before_its_reader_had_it_is_reported_not_complete() {
    let (tx, reports) = mpsc::channel();
    let config = HubConfig {
        heartbeat: Duration::from_secs(60),
        worker_threads: 1,
        max_event_bytes: 64 << 20,
        max_lag_bytes: 128 << 20,
        max_lag_events: 4,
        overflow: native_sse_core::OverflowPolicy::DropOldest,
        ..HubConfig::default()
    };
    let hub = Hub::new(config, Box::new(Reports(Mutex::new(tx)))).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = connect(&hub, &listener, &[]);
    // Stuck in the socket: the client reads nothing, and the event is larger than the send
    // buffer and the most the receiver's buffer can grow to together (here 4 + 32 MiB:
    // net.ipv4.tcp_wmem and tcp_rmem), or it could all be taken and the watched one written.
    let big = "x".repeat(48 << 20);
    hub.broadcast(&message(&big)).unwrap();
    assert_eq!(
        hub.publish_watched(None, &message("watched"), 9, None)
            .unwrap(),
        1
    );
    // Past the window of 4: the watched event leaves the log unread.
    for _ in 0..8 {
        hub.broadcast(&message("later")).unwrap();
    }
    let report = reports.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        (report.token, report.recipients, report.complete),
        (9, 1, false)
    );
    drop(peer);
    hub.close_all();
}
