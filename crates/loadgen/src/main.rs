//! `sse-load`: the load client of `npm run bench`. Opens `--clients` SSE connections to
//! 127.0.0.1 (from several 127.0.0.x source addresses, so ten thousand and more fit in the
//! ephemeral port range), parses every stream, checks each client's sequence numbers, and
//! measures publish-to-receive latency from a timestamp in the data. It is driven over
//! stdin/stdout by the benchmark, one command per line:
//!
//! - `report`: one JSON line of totals (cumulative) and latency (since the last `reset`);
//! - `reset`: clears the latency histogram;
//! - `exit` (or stdin closing): exits at once.
//!
//! Event data must start with `<sequence> <publish time in µs since the Unix epoch>`; clients
//! chosen with `--stalled` read their response head and then never read again.

mod gunzip;
mod latency;
mod stream;

use latency::Latency;
use std::cell::{Cell, RefCell};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use stream::{Head, Sink, StreamParser};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::sync::Semaphore;

struct Options {
    port: u16,
    path: String,
    clients: usize,
    stalled: usize,
    sources: u8,
    connecting_at_once: usize,
    /// Sent as `Accept-Encoding` (gzip streams are decoded); None: not sent.
    accept_encoding: Option<String>,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        port: 0,
        path: "/".into(),
        clients: 1,
        stalled: 0,
        sources: 8,
        connecting_at_once: 256,
        accept_encoding: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|_| format!("{flag}: not a number: {value}"))
        };
        match flag.as_str() {
            "--port" => options.port = number()? as u16,
            "--path" => options.path = value.clone(),
            "--clients" => options.clients = number()?,
            "--stalled" => options.stalled = number()?,
            "--sources" => options.sources = number()?.clamp(1, 250) as u8,
            "--connecting-at-once" => options.connecting_at_once = number()?.max(1),
            "--accept-encoding" => options.accept_encoding = Some(value.clone()),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if options.port == 0 {
        return Err("--port is required".into());
    }
    if options.stalled > options.clients {
        return Err("--stalled cannot exceed --clients".into());
    }
    Ok(options)
}

#[derive(Default)]
struct Totals {
    connected: u64,
    refused: u64,
    failed: u64,
    closed: u64,
    events: u64,
    comments: u64,
    lost: u64,
    duplicated: u64,
    reordered: u64,
    without_sequence: u64,
    bytes: u64,
}

struct Shared {
    totals: RefCell<Totals>,
    latency: RefCell<Latency>,
    /// From a client's connect() to its response head, in µs (a reconnect wave's first byte).
    connect_latency: RefCell<Latency>,
    /// When the latest response head arrived, in µs since the start (a wave's end).
    last_head_micros: Cell<u64>,
    /// Events received by each reading client (stalled ones stay at zero and are skipped).
    per_client: Vec<Cell<u64>>,
    reading: Vec<bool>,
    started: Instant,
    buffer: RefCell<Vec<u8>>,
}

/// One client's view of its stream while a read's bytes are parsed; its counts are added to
/// the shared totals once per read.
struct ClientSink<'a> {
    shared: &'a Shared,
    expected: &'a mut Option<u64>,
    now_micros: u64,
    totals: Totals,
}

impl Totals {
    fn add(&mut self, other: &Totals) {
        self.events += other.events;
        self.comments += other.comments;
        self.lost += other.lost;
        self.duplicated += other.duplicated;
        self.reordered += other.reordered;
        self.without_sequence += other.without_sequence;
        self.bytes += other.bytes;
    }
}

impl Sink for ClientSink<'_> {
    fn event(&mut self, [sequence, published]: [Option<u64>; 2]) {
        let totals = &mut self.totals;
        totals.events += 1;
        let Some(sequence) = sequence else {
            totals.without_sequence += 1;
            return;
        };
        match *self.expected {
            Some(expected) if sequence > expected => totals.lost += sequence - expected,
            Some(expected) if sequence + 1 == expected => totals.duplicated += 1,
            Some(expected) if sequence < expected => totals.reordered += 1,
            _ => {}
        }
        if self.expected.is_none_or(|expected| sequence >= expected) {
            *self.expected = Some(sequence + 1);
        }
        if let Some(published) = published {
            let micros = self.now_micros.saturating_sub(published);
            self.shared.latency.borrow_mut().record(micros);
        }
    }

    fn comment(&mut self) {
        self.totals.comments += 1;
    }
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Lets the kernel pick the source port at connect() rather than at bind(). A port picked at
/// bind() must be free of every socket on it, TIME_WAIT ones included: after a few waves of
/// 10,000 clients (each leaving 10,000 in TIME_WAIT for a minute) the search for a free port
/// slows the load client down, and how much depends on what ran in the minute before. Picked
/// at connect(), a port needs only a 4-tuple of its own, so every wave finds one at once.
#[cfg(target_os = "linux")]
fn defer_port_choice(socket: &TcpSocket) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: setsockopt on a socket this function borrows, with a c_int option value.
    // Failing (an old kernel) leaves bind() choosing, as before.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn defer_port_choice(_socket: &TcpSocket) {}

async fn client(
    shared: Rc<Shared>,
    index: usize,
    target: SocketAddr,
    source: Ipv4Addr,
    request: Rc<Vec<u8>>,
    connecting: Rc<Semaphore>,
) {
    let permit = connecting.acquire().await;
    let connect_started = Instant::now();
    let connect = async {
        let socket = TcpSocket::new_v4()?;
        defer_port_choice(&socket);
        socket.bind(SocketAddr::new(source.into(), 0))?;
        let mut stream = socket.connect(target).await?;
        stream.set_nodelay(true)?;
        stream.write_all(&request).await?;
        Ok::<_, std::io::Error>(stream)
    };
    let stream = match connect.await {
        Ok(stream) => stream,
        Err(_) => {
            shared.totals.borrow_mut().failed += 1;
            return;
        }
    };
    // Held until the response head arrived: whether it is gone tells a connected client (its
    // end is a close) from one that never got as far (a failure).
    let mut permit = Some(permit);
    let mut parser = StreamParser::default();
    let mut expected = None;
    loop {
        // One buffer for every client: reads never overlap on this one thread, and a buffer
        // per client would cost the load client 1.6 GB at 100,000 of them.
        if stream.readable().await.is_err() {
            break;
        }
        // The borrow ends within this block, before the next await.
        let (head, read_totals) = {
            let mut buffer = shared.buffer.borrow_mut();
            let read = match stream.try_read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => break,
            };
            let mut sink = ClientSink {
                shared: &shared,
                expected: &mut expected,
                now_micros: now_micros(),
                totals: Totals {
                    bytes: read as u64,
                    ..Totals::default()
                },
            };
            let head = parser.feed(&buffer[..read], &mut sink);
            (head, sink.totals)
        };
        shared.totals.borrow_mut().add(&read_totals);
        let count = &shared.per_client[index];
        count.set(count.get() + read_totals.events);
        match head {
            Head::Pending => continue,
            Head::Refused(_) => {
                shared.totals.borrow_mut().refused += 1;
                return;
            }
            Head::Streaming => {}
        }
        if permit.take().is_some() {
            shared.totals.borrow_mut().connected += 1;
            shared
                .connect_latency
                .borrow_mut()
                .record(connect_started.elapsed().as_micros() as u64);
            shared
                .last_head_micros
                .set(shared.started.elapsed().as_micros() as u64);
            if !shared.reading[index] {
                // Holds the connection open without ever reading again.
                std::future::pending::<()>().await;
            }
        }
        if parser.ended {
            break;
        }
    }
    if permit.is_none() {
        shared.totals.borrow_mut().closed += 1;
    } else {
        shared.totals.borrow_mut().failed += 1;
    }
}

fn cpu_millis() -> u64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let millis = |t: libc::timeval| t.tv_sec as u64 * 1000 + t.tv_usec as u64 / 1000;
    millis(usage.ru_utime) + millis(usage.ru_stime)
}

fn report(shared: &Shared) -> String {
    let totals = shared.totals.borrow();
    let latency = shared.latency.borrow();
    let connect = shared.connect_latency.borrow();
    let reading_min = shared
        .per_client
        .iter()
        .zip(&shared.reading)
        .filter(|(_, reading)| **reading)
        .map(|(count, _)| count.get())
        .min()
        .unwrap_or(0);
    format!(
        concat!(
            "{{\"connected\":{},\"refused\":{},\"failed\":{},\"closed\":{},\"events\":{},",
            "\"readingMinEvents\":{},\"comments\":{},\"lost\":{},\"duplicated\":{},",
            "\"reordered\":{},\"withoutSequence\":{},\"bytes\":{},\"cpuMs\":{},\"wallMs\":{},",
            "\"latency\":{{\"count\":{},\"p50Us\":{},\"p99Us\":{},\"maxUs\":{}}},",
            "\"connect\":{{\"lastHeadMs\":{},\"p50Us\":{},\"p99Us\":{},\"maxUs\":{}}}}}"
        ),
        totals.connected,
        totals.refused,
        totals.failed,
        totals.closed,
        totals.events,
        reading_min,
        totals.comments,
        totals.lost,
        totals.duplicated,
        totals.reordered,
        totals.without_sequence,
        totals.bytes,
        cpu_millis(),
        shared.started.elapsed().as_millis(),
        latency.count(),
        latency.percentile(0.5),
        latency.percentile(0.99),
        latency.max(),
        shared.last_head_micros.get() / 1000,
        connect.percentile(0.5),
        connect.percentile(0.99),
        connect.max(),
    )
}

/// Ten thousand connections need more descriptors than the usual soft limit of 1,024; a
/// hundred thousand more than the usual hard limit, which only a privileged process may raise
/// (else the soft limit goes as far as the hard one, and connections past it fail, counted).
fn raise_fd_limit(clients: usize) {
    let wanted = (clients + 1024) as libc::rlim_t;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on a struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < wanted {
            let raised = libc::rlimit {
                rlim_cur: wanted,
                rlim_max: wanted.max(limit.rlim_max),
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
                limit.rlim_cur = limit.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            }
        }
    }
}

fn main() {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("sse-load: {message}");
            std::process::exit(2);
        }
    };
    raise_fd_limit(options.clients);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, run(options));
}

async fn run(options: Options) {
    // Stalled clients are spread evenly over the connection order.
    let reading = (0..options.clients)
        .map(|i| options.stalled == 0 || (i * options.stalled) % options.clients >= options.stalled)
        .collect();
    let shared = Rc::new(Shared {
        totals: RefCell::default(),
        latency: RefCell::default(),
        connect_latency: RefCell::default(),
        last_head_micros: Cell::new(0),
        per_client: (0..options.clients).map(|_| Cell::new(0)).collect(),
        reading,
        started: Instant::now(),
        buffer: RefCell::new(vec![0u8; 64 * 1024]),
    });
    let target = SocketAddr::from((Ipv4Addr::LOCALHOST, options.port));
    let request = Rc::new(
        format!(
            "GET {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAccept: text/event-stream\r\n{}\r\n",
            options.path,
            options.port,
            options
                .accept_encoding
                .as_ref()
                .map_or(String::new(), |e| format!("Accept-Encoding: {e}\r\n"))
        )
        .into_bytes(),
    );
    // A bounded number of handshakes in flight, so the server's listen backlog never overflows.
    let connecting = Rc::new(Semaphore::new(options.connecting_at_once));
    for index in 0..options.clients {
        let source = Ipv4Addr::new(127, 0, 0, 1 + (index % options.sources as usize) as u8);
        tokio::task::spawn_local(client(
            shared.clone(),
            index,
            target,
            source,
            request.clone(),
            connecting.clone(),
        ));
    }
    let mut commands = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(command)) = commands.next_line().await {
        match command.trim() {
            "report" => {
                let line = report(&shared);
                let mut stdout = std::io::stdout().lock();
                let _ = writeln!(stdout, "{line}");
                let _ = stdout.flush();
            }
            "reset" => *shared.latency.borrow_mut() = Latency::default(),
            "exit" => break,
            other => eprintln!("sse-load: unknown command {other:?}"),
        }
    }
    std::process::exit(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(clients: usize) -> Shared {
        Shared {
            totals: RefCell::default(),
            latency: RefCell::default(),
            connect_latency: RefCell::default(),
            last_head_micros: Cell::new(0),
            per_client: (0..clients).map(|_| Cell::new(0)).collect(),
            reading: vec![true; clients],
            started: Instant::now(),
            buffer: RefCell::default(),
        }
    }

    fn sink<'a>(
        shared: &'a Shared,
        expected: &'a mut Option<u64>,
        now_micros: u64,
    ) -> ClientSink<'a> {
        ClientSink {
            shared,
            expected,
            now_micros,
            totals: Totals::default(),
        }
    }

    #[test]
    fn sequence_checks_count_gaps_repeats_and_steps_back() {
        let shared = shared(1);
        let mut expected = None;
        let mut sink = sink(&shared, &mut expected, 10_000);
        let body = b"HTTP/1.1 200 OK\r\n\r\ndata: 1 9000\n\ndata: 2 9500\n\ndata: 5 9900\n\ndata: 5 9900\n\ndata: 3 9900\n\ndata: 6\n\ndata: hi\n\n: hb\n\n";
        assert_eq!(
            StreamParser::default().feed(body, &mut sink),
            Head::Streaming
        );
        let totals = sink.totals;
        assert_eq!(totals.events, 7);
        assert_eq!(totals.lost, 2, "3 and 4 were skipped");
        assert_eq!(totals.duplicated, 1, "5 twice");
        assert_eq!(totals.reordered, 1, "3 after 5");
        assert_eq!(totals.without_sequence, 1);
        assert_eq!(totals.comments, 1);
        assert_eq!(expected, Some(7));
        let latency = shared.latency.borrow();
        assert_eq!(latency.count(), 5, "events with a timestamp");
        assert_eq!(latency.max(), 1000);
    }

    #[test]
    fn a_clean_sequence_counts_nothing() {
        let shared = shared(1);
        let mut expected = None;
        let mut sink = sink(&shared, &mut expected, 0);
        let mut parser = StreamParser::default();
        parser.feed(b"HTTP/1.1 200 OK\r\n\r\n", &mut sink);
        for seq in 40..140 {
            parser.feed(format!("data: {seq} 0 xxxx\n\n").as_bytes(), &mut sink);
        }
        let totals = sink.totals;
        assert_eq!(totals.events, 100);
        assert_eq!(totals.lost + totals.duplicated + totals.reordered, 0);
    }
}
