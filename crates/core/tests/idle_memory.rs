//! What an idle client costs the core: heap bytes still allocated per adopted connection once
//! its opening frame was written, counted by this test binary's own allocator (so runtime,
//! task, registry and writer state are all in, and nothing of the test's peers is).

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

mod common;

use common::Quiet;
use native_sse_core::{Hub, HubConfig};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const CLIENTS: usize = 2000;

/// The core's share of what an idle client may cost the whole process (the socket itself is
/// the kernel's, outside RSS). Measured 707 bytes: tokio's I/O registration (256), the
/// client's shared state (224, with its delivered counts for the departure report), its parked
/// writer (about 100) and the waker its socket's readiness resumes it with, its cursor list
/// (32), its registry entry and its heartbeat queue entry. With a task per idle client (the
/// writer's future and tokio's task header, 896) it was 1,442.
const MAX_BYTES_PER_IDLE_CLIENT: isize = 896;

#[test]
fn an_adopted_client_parks_once_its_opening_is_written_and_holds_at_most_896_bytes() {
    let hub = Hub::new(
        HubConfig {
            heartbeat: Duration::from_secs(60),
            worker_threads: 1,
            ..HubConfig::default()
        },
        Box::new(Quiet),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut peers = Vec::with_capacity(CLIENTS + 1);
    let connect = |peers: &mut Vec<TcpStream>| {
        let mut peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (server_side, _) = listener.accept().unwrap();
        let id = hub.register(None, Vec::new(), None).unwrap().0;
        hub.adopt(id, server_side.as_raw_fd(), true, |_| {})
            .unwrap();
        drop(server_side);
        // The opening frame arrived: the writer ran and went idle.
        let mut opening = [0u8; 8];
        peer.read_exact(&mut opening).unwrap();
        peers.push(peer);
    };
    // The first client builds what the runtime makes once (driver slabs, timer wheel levels).
    connect(&mut peers);
    let before = LIVE.load(Ordering::SeqCst);
    for _ in 0..CLIENTS {
        connect(&mut peers);
    }
    // A writer that wrote only its opening parks at once: well before the second after which
    // one that wrote an event would (a writer holding its task costs 1,442 bytes).
    let deadline = Instant::now() + Duration::from_millis(800);
    let per_client = loop {
        let per_client = (LIVE.load(Ordering::SeqCst) - before) / CLIENTS as isize;
        if per_client <= MAX_BYTES_PER_IDLE_CLIENT || Instant::now() >= deadline {
            break per_client;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    eprintln!("heap per idle client: {per_client} bytes");
    assert!(
        per_client <= MAX_BYTES_PER_IDLE_CLIENT,
        "{per_client} bytes of heap per idle client 800 ms after the last connected"
    );
    assert_eq!(hub.size(), CLIENTS + 1);
}
