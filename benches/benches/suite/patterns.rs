//! The queue and the latest-value cell (`qshm::mapped::queue`, `qshm::mapped::cell`).
//!
//! * `queue_roundtrip`: a 64-byte message to a second process and back, over two queues
//!   (one each way); one iteration is one round trip. Next to it, the floor measured in the
//!   same run: the raw futex ping-pong of `handoff` (both spin 1000 times before they sleep,
//!   as the queue's blocking calls do).
//! * `queue_64`, `queue_64k`: one producer process sends messages of 64 bytes (64 KiB) as
//!   fast as it can, this process receives them; one iteration is one message. Compared
//!   with a pipe and a Unix stream socket (one `write` and one `read_exact` per message, no
//!   framing: the most favourable case for them) and with iceoryx2's publish-subscribe
//!   (slices, a subscriber buffer of 256 samples, back-pressure `RetryUntilDelivered`, the subscriber
//!   polling `receive` in a spin: its fastest mode). The queue's ring is 256 KiB (1 MiB for
//!   64 KiB messages).
//! * `cell`: an uncontended read of a 64-byte value (`Reader::read`), and a plain 64-byte
//!   copy (the floor), in one process.
//!
//! The second process is this executable re-run with `QSHM_BENCH_CHILD=<group>/<id>`; per
//! sample the parent writes `go N` on the child's stdin and the child sends N messages.
#![warn(clippy::undocumented_unsafe_blocks)]

use std::hint::black_box;
use std::io::{BufRead, Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::process::{ChildStdin, ChildStdout};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
use qshm::mapped::cell::{self, Reader, Writer};
use qshm::mapped::queue::{QueueOptions, Receiver, Sender};
use qshm::mapped::{MappedSegment, ReceiveOptions};
use qshm::ErrorKind;

use crate::common::{self, ChildProc};

/// The environment variables that name the two queues (`ping`, `pong`) to the child, the
/// socket, and the iceoryx2 service.
const PING_ENV: &str = "QSHM_BENCH_PING";
const PONG_ENV: &str = "QSHM_BENCH_PONG";
const NAME_ENV: &str = "QSHM_BENCH_NAME";

/// The throughput benchmarks' rings: 256 KiB (3 640 messages of 64 bytes in flight) and
/// 1 MiB (15 of 64 KiB).
const RING: usize = 256 * 1024;
const RING_64K: usize = 1024 * 1024;

/// Registers the groups `queue_roundtrip`, `queue_64`, `queue_64k` and `cell`.
pub fn benches(c: &mut Criterion) {
    roundtrip(c);
    throughput(c, "queue_64", 64);
    throughput(c, "queue_64k", 64 * 1024);
    cell_read(c);
}

/// Whether `role` is one of this module's children.
pub fn is_child(role: &str) -> bool {
    role.starts_with("queue_")
}

/// The second process of this module's benchmarks.
pub fn child(role: &str) {
    let (group, id) = role.split_once('/').expect("group/id");
    let size = if group == "queue_64k" { 64 * 1024 } else { 64 };
    match (group, id) {
        ("queue_roundtrip", "qshm_queue") => roundtrip_child(),
        (_, "qshm_queue") => producer_child(size, QshmTx::open()),
        (_, "pipe") => {
            // The pipe itself, not the line-buffered `Stdout`: one `write` per message.
            let fd = std::os::fd::AsFd::as_fd(&std::io::stdout())
                .try_clone_to_owned()
                .expect("dup stdout");
            producer_child(size, std::fs::File::from(fd));
        }
        (_, "uds") => {
            let name = std::env::var(NAME_ENV).expect("socket name");
            let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract name");
            producer_child(size, UnixStream::connect_addr(&addr).expect("connect"));
        }
        (_, "iceoryx2") => iceoryx2_producer(size),
        _ => panic!("patterns: unknown child role {role:?}"),
    }
}

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(1))
        .warm_up_time(Duration::from_millis(300));
    group
}

// ---- queue_roundtrip --------------------------------------------------------------------

fn roundtrip(c: &mut Criterion) {
    let mut group = group(c, "queue_roundtrip");
    crate::xproc::pingpong_bench(&mut group);
    struct Session {
        tx: Option<Sender>,
        rx: Receiver,
        child: ChildProc,
    }
    impl Drop for Session {
        fn drop(&mut self) {
            self.tx = None; // the child's recv is told Disconnected and it exits
            let status = self.child.0.wait().expect("wait for the child");
            if !status.success() && !std::thread::panicking() {
                panic!("the queue round-trip child failed ({status})");
            }
        }
    }
    let mut session: Option<Session> = None;
    group.bench_function("qshm_queue", |b| {
        let s = session.get_or_insert_with(|| {
            let options = QueueOptions::new(64);
            let ping =
                MappedSegment::memfd("qshm-bench-ping", options.segment_size()).expect("memfd");
            let pong =
                MappedSegment::memfd("qshm-bench-pong", options.segment_size()).expect("memfd");
            let tx = Sender::create(ping, &options).expect("ping queue");
            let rx = Receiver::create(pong, &options).expect("pong queue");
            let mut child = ChildProc::spawn("queue_roundtrip/qshm_queue", |cmd| {
                tx.segment().pass_to_child_as(cmd, PING_ENV).expect("pass");
                rx.segment().pass_to_child_as(cmd, PONG_ENV).expect("pass");
            });
            let mut line = String::new();
            std::io::BufReader::new(child.0.stdout.take().expect("stdout"))
                .read_line(&mut line)
                .expect("ready");
            assert_eq!(line.trim(), "ready");
            Session {
                tx: Some(tx),
                rx,
                child,
            }
        });
        let msg = [7u8; 64];
        let mut buf = [0u8; 64];
        let tx = s.tx.as_mut().expect("open");
        b.iter(|| {
            tx.send(&msg).expect("send");
            let n = s.rx.recv_into(&mut buf).expect("recv");
            black_box((n, &buf));
        });
    });
    drop(session);
    group.finish();
}

fn roundtrip_child() {
    let adopt = |var| MappedSegment::from_env_var(var, &ReceiveOptions::new()).expect("adopt");
    let mut rx = Receiver::open(adopt(PING_ENV)).expect("ping");
    let mut tx = Sender::open(adopt(PONG_ENV)).expect("pong");
    println!("ready");
    std::io::stdout().flush().expect("stdout");
    let mut buf = [0u8; 64];
    loop {
        match rx.recv_into(&mut buf) {
            Ok(n) => tx.send(&buf[..n]).expect("send back"),
            Err(e) if e.kind() == ErrorKind::Disconnected => return,
            Err(e) => panic!("{e}"),
        }
    }
}

// ---- queue_64, queue_64k ----------------------------------------------------------------

/// Where a producer child sends.
trait Sink {
    fn put(&mut self, msg: &[u8]);
    fn done(&mut self);
}

impl<W: Write> Sink for W {
    fn put(&mut self, msg: &[u8]) {
        self.write_all(msg).expect("write");
    }
    fn done(&mut self) {
        self.flush().expect("flush");
    }
}

struct QshmTx(Sender);

impl QshmTx {
    fn open() -> QshmTx {
        let seg = MappedSegment::from_env(&ReceiveOptions::new()).expect("adopt");
        QshmTx(Sender::open(seg).expect("producer"))
    }
}

/// `Write` for the queue (one message per `write_all`), so that every sink is a `Write`.
impl Write for QshmTx {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.send(buf).map_err(std::io::Error::from)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads `go N` lines from stdin and sends N messages of `size` bytes (the first 8 bytes
/// numbering them) for each.
fn producer_child(size: usize, mut sink: impl Sink) {
    let mut msg = vec![0x5a; size];
    let mut n = 0u64;
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("stdin");
        let count: u64 = line
            .strip_prefix("go ")
            .and_then(|c| c.parse().ok())
            .expect("go N");
        for _ in 0..count {
            msg[..8].copy_from_slice(&n.to_le_bytes());
            sink.put(&msg);
            n += 1;
        }
        sink.done();
    }
}

/// The receiving side of a throughput benchmark, in this process.
trait Source {
    /// Receives one message into `buf` (its size), returns its number.
    fn take(&mut self, buf: &mut [u8]) -> u64;
}

impl Source for Receiver {
    fn take(&mut self, buf: &mut [u8]) -> u64 {
        let n = self.recv_into(buf).expect("recv");
        assert_eq!(n, buf.len());
        u64::from_le_bytes(buf[..8].try_into().expect("8"))
    }
}

struct ReadSource<R>(R);

impl<R: Read> Source for ReadSource<R> {
    fn take(&mut self, buf: &mut [u8]) -> u64 {
        self.0.read_exact(buf).expect("read");
        u64::from_le_bytes(buf[..8].try_into().expect("8"))
    }
}

/// A running producer child and this side's source.
struct Flow {
    source: Box<dyn Source>,
    stdin: Option<ChildStdin>,
    next: u64,
    child: ChildProc,
    _keep: Option<Box<dyn std::any::Any>>,
}

impl Drop for Flow {
    /// Closes the child's stdin (it finishes and exits: an idle producer has nothing in
    /// flight) and reaps it, before the source and what it needs go.
    fn drop(&mut self) {
        self.stdin = None;
        let status = self.child.0.wait().expect("wait for the producer");
        if !status.success() && !std::thread::panicking() {
            panic!("the producer child failed ({status})");
        }
    }
}

impl Flow {
    fn sample(&mut self, iters: u64, buf: &mut [u8]) -> Duration {
        let t = Instant::now();
        let stdin = self.stdin.as_mut().expect("open until dropped");
        writeln!(stdin, "go {iters}").expect("go");
        stdin.flush().expect("flush");
        for _ in 0..iters {
            let n = self.source.take(buf);
            assert_eq!(n, self.next, "a message lost or reordered");
            self.next += 1;
        }
        t.elapsed()
    }
}

fn start(group: &str, id: &str, size: usize) -> Flow {
    let role = format!("{group}/{id}");
    match id {
        "qshm_queue" => {
            let mut options = QueueOptions::new(size.max(64));
            options.capacity(if size > 64 { RING_64K } else { RING });
            let seg =
                MappedSegment::memfd("qshm-bench-queue", options.segment_size()).expect("memfd");
            let rx = Receiver::create(seg, &options).expect("queue");
            let mut child = ChildProc::spawn(&role, |cmd| {
                rx.segment().pass_to_child(cmd).expect("pass");
            });
            let stdin = child.0.stdin.take().expect("stdin");
            Flow {
                source: Box::new(rx),
                stdin: Some(stdin),
                next: 0,
                child,
                _keep: None,
            }
        }
        "pipe" => {
            let mut child = ChildProc::spawn(&role, |_| {});
            let stdin = child.0.stdin.take().expect("stdin");
            let out: ChildStdout = child.0.stdout.take().expect("stdout");
            Flow {
                source: Box::new(ReadSource(out)),
                stdin: Some(stdin),
                next: 0,
                child,
                _keep: None,
            }
        }
        "uds" => {
            let name = common::unique("uds");
            let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("name");
            let listener = UnixListener::bind_addr(&addr).expect("bind");
            let mut child = ChildProc::spawn(&role, |cmd| {
                cmd.env(NAME_ENV, &name);
            });
            let (stream, _) = listener.accept().expect("accept");
            let stdin = child.0.stdin.take().expect("stdin");
            Flow {
                source: Box::new(ReadSource(stream)),
                stdin: Some(stdin),
                next: 0,
                child,
                _keep: None,
            }
        }
        "iceoryx2" => iceoryx2_flow(&role, size),
        other => panic!("no flow {other}"),
    }
}

fn throughput(c: &mut Criterion, name: &str, size: usize) {
    let mut group = group(c, name);
    for id in ["qshm_queue", "pipe", "uds", "iceoryx2"] {
        let mut flow: Option<Flow> = None;
        let mut buf = vec![0u8; size];
        group.bench_function(id, |b| {
            let f = flow.get_or_insert_with(|| start(name, id, size));
            b.iter_custom(|iters| f.sample(iters, &mut buf));
        });
        drop(flow);
    }
    group.finish();
}

// ---- iceoryx2 ---------------------------------------------------------------------------

mod ice {
    pub use iceoryx2::prelude::*;
}

struct IceSource {
    subscriber: iceoryx2::port::subscriber::Subscriber<ice::ipc::Service, [u8], ()>,
}

impl Source for IceSource {
    fn take(&mut self, buf: &mut [u8]) -> u64 {
        loop {
            if let Some(sample) = self.subscriber.receive().expect("receive") {
                let payload = sample.payload();
                buf.copy_from_slice(payload);
                return u64::from_le_bytes(buf[..8].try_into().expect("8"));
            }
            std::hint::spin_loop();
        }
    }
}

fn ice_service(
    node: &ice::Node<ice::ipc::Service>,
    name: &str,
) -> iceoryx2::service::port_factory::publish_subscribe::PortFactory<ice::ipc::Service, [u8], ()> {
    node.service_builder(&name.try_into().expect("service name"))
        .publish_subscribe::<[u8]>()
        .enable_safe_overflow(false)
        .subscriber_max_buffer_size(256)
        .open_or_create()
        .expect("iceoryx2 service")
}

fn iceoryx2_flow(role: &str, size: usize) -> Flow {
    use ice::*;
    let name = common::unique("iceoryx2");
    let node = NodeBuilder::new()
        .create::<ipc::Service>()
        .expect("iceoryx2 node");
    let service = ice_service(&node, &name);
    let subscriber = service.subscriber_builder().create().expect("subscriber");
    let mut child = ChildProc::spawn(role, |cmd| {
        cmd.env(NAME_ENV, &name);
    });
    let mut line = String::new();
    std::io::BufReader::new(child.0.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("ready");
    assert_eq!(line.trim(), "ready", "the iceoryx2 child");
    let _ = size;
    let stdin = child.0.stdin.take().expect("stdin");
    Flow {
        source: Box::new(IceSource { subscriber }),
        stdin: Some(stdin),
        next: 0,
        child,
        _keep: Some(Box::new((service, node))),
    }
}

fn iceoryx2_producer(size: usize) {
    use ice::*;
    let name = std::env::var(NAME_ENV).expect("service name");
    let node = NodeBuilder::new()
        .create::<ipc::Service>()
        .expect("iceoryx2 node");
    let service = ice_service(&node, &name);
    let publisher = service
        .publisher_builder()
        .initial_max_slice_len(size)
        .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
        .create()
        .expect("publisher");
    println!("ready");
    std::io::stdout().flush().expect("stdout");
    struct Pub<'a>(&'a iceoryx2::port::publisher::Publisher<ipc::Service, [u8], ()>);
    impl Write for Pub<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let sample = self.0.loan_slice_uninit(buf.len()).expect("loan");
            let sample = sample.write_from_slice(buf);
            sample.send().expect("send");
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    producer_child(size, Pub(&publisher));
}

// ---- cell -------------------------------------------------------------------------------

fn cell_read(c: &mut Criterion) {
    let mut group = c.benchmark_group("cell");
    group
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    let src = [0x5au8; 64];
    let mut dst = [0u8; 64];
    group.bench_function("memcpy_64", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&src));
            black_box(&dst);
        });
    });
    let seg = MappedSegment::memfd("qshm-bench-cell", cell::segment_size(64)).expect("memfd");
    let reader_seg = MappedSegment::from_fd(
        rustix::io::dup(std::os::fd::AsFd::as_fd(&seg)).expect("dup"),
        &ReceiveOptions::new(),
    )
    .expect("second mapping");
    let mut writer = Writer::create(seg, 64).expect("cell");
    writer.write(&src).expect("write");
    let reader = Reader::open(reader_seg).expect("reader");
    group.bench_function("qshm_cell_read", |b| {
        b.iter(|| black_box(reader.read(black_box(&mut dst)).expect("read")));
    });
    group.finish();
}
