//! Wake-up latency of change notification (`qshm::notify`): two processes take turns, each
//! waiting for the other's change; one iteration is one round trip (two wake-ups).
//!
//! | id | what |
//! |---|---|
//! | `futex_sleep_pingpong` | the baseline: a raw shared futex word; each side increments it, `FUTEX_WAKE`s, and `FUTEX_WAIT`s for the other's increment (no spinning: every turn is a kernel wake-up) |
//! | `qshm_notify_mapped` | `Notifier::notify` / `Notifier::wait` in a memfd segment's header |
//! | `qshm_notify_posix` | the same through the companion of a Qt-compatible POSIX segment |
//! | `async_10000_waiters` | 10 000 tokio tasks wait on `Notifier::changed` of one segment; one iteration is a notify and all 10 000 woken and finished (their spawning is not timed); the threads and memory they add are written to `target/async_waiters.json` |
//!
//! Neither side spins, so every turn is a sleep and a kernel wake-up: the figure is the
//! wake-up latency, which is what a waiter gets. (`handoff/futex_pingpong` spins first and
//! measures the hand-off floor instead.)

use std::io::BufReader;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use criterion::{Criterion, SamplingMode};
use qshm::mapped::{MappedSegment, ReceiveOptions};
use qshm::notify::Notifier;
use qshm::{AccessMode, KeyType, NativeKey, SharedMemory};
use rustix::thread::futex;

use crate::common::{self, ChildProc};
use crate::xproc::{check_alive, recv_line, ToParent};

/// The environment variable that names the POSIX segment to a child.
const KEY_ENV: &str = "QSHM_BENCH_WAKEUP_KEY";

/// The stop flag (data offset 0 of the segment) and the raw futex word (offset 4).
fn words(seg: &MappedSegment) -> (&AtomicU32, &AtomicU32) {
    let base = seg.as_mut_ptr().cast::<AtomicU32>();
    // SAFETY: the data area is page-aligned and at least 8 bytes, mapped as long as `seg`
    // lives; both words are only ever accessed atomically, by both processes.
    unsafe { (&*base, &*base.add(1)) }
}

/// Registers the group `wakeup`.
pub fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("wakeup");
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(Duration::from_secs(3));

    group.bench_function("futex_sleep_pingpong", |b| {
        let seg = MappedSegment::memfd("qshm-bench-wakeup", 64).expect("create a memfd");
        let mut child = ChildProc::spawn("wakeup/futex_sleep_pingpong", |cmd| {
            seg.pass_to_child(cmd).expect("pass the memfd to the child");
        });
        let mut from_child = BufReader::new(child.0.stdout.take().expect("stdout is piped"));
        assert_eq!(recv_line(&mut from_child, &mut child), "ready");
        let (stop, word) = words(&seg);
        b.iter(|| {
            let mine = word.fetch_add(1, Ordering::AcqRel) + 1;
            let _ = futex::wake(word, futex::Flags::empty(), 1);
            raw_wait(word, mine, Some(&mut child));
        });
        stop.store(1, Ordering::Release);
        word.fetch_add(1, Ordering::AcqRel);
        let _ = futex::wake(word, futex::Flags::empty(), 1);
        assert!(child.0.wait().expect("wait for the child").success());
    });

    group.bench_function("qshm_notify_mapped", |b| {
        let seg = MappedSegment::memfd("qshm-bench-wakeup", 64).expect("create a memfd");
        let n = seg.notifier().expect("notifier");
        let mut child = ChildProc::spawn("wakeup/qshm_notify_mapped", |cmd| {
            seg.pass_to_child(cmd).expect("pass the memfd to the child");
        });
        let mut from_child = BufReader::new(child.0.stdout.take().expect("stdout is piped"));
        assert_eq!(recv_line(&mut from_child, &mut child), "ready");
        b.iter(|| notify_turn(&n, &mut child));
        words(&seg).0.store(1, Ordering::Release);
        n.notify().expect("notify");
        assert!(child.0.wait().expect("wait for the child").success());
    });

    group.bench_function("qshm_notify_posix", |b| {
        let key = NativeKey::legacy(&common::unique("wakeup"), KeyType::PosixRealtime);
        let mut shm = SharedMemory::with_native_key(key.clone());
        shm.create(64, AccessMode::ReadWrite).expect("create");
        let n = shm.notifier().expect("notifier");
        let mut child = ChildProc::spawn("wakeup/qshm_notify_posix", |cmd| {
            cmd.env(KEY_ENV, key.to_string());
        });
        let mut from_child = BufReader::new(child.0.stdout.take().expect("stdout is piped"));
        assert_eq!(recv_line(&mut from_child, &mut child), "ready");
        b.iter(|| notify_turn(&n, &mut child));
        shm.lock().expect("lock").as_mut_slice().expect("writable")[0] = 1;
        n.notify().expect("notify");
        assert!(child.0.wait().expect("wait for the child").success());
    });
    group.sample_size(10);
    group.bench_function("async_10000_waiters", |b| {
        let seg = MappedSegment::memfd("qshm-bench-async", 64).expect("create a memfd");
        let n = seg.notifier().expect("notifier");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .expect("a tokio runtime");
        let mut footprint = None;
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let before = threads_and_rss();
                let seen = n.current();
                let tasks: Vec<_> = (0..WAITERS).map(|_| rt.spawn(n.changed(seen))).collect();
                while n.pending_futures() < WAITERS {
                    std::thread::yield_now();
                }
                let during = threads_and_rss();
                footprint.get_or_insert((during.0 - before.0, during.1.saturating_sub(before.1)));
                let start = std::time::Instant::now();
                n.notify().expect("notify");
                rt.block_on(async {
                    for t in tasks {
                        t.await.expect("task").expect("changed");
                    }
                });
                total += start.elapsed();
            }
            total
        });
        if let Some((threads, kb)) = footprint {
            // Beside criterion's directory (the report reads it from there).
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../target").into());
            let _ = std::fs::write(
                target.join("async_waiters.json"),
                format!("{{\"waiters\": {WAITERS}, \"threads\": {threads}, \"rss_kb\": {kb}}}\n"),
            );
        }
    });
    group.finish();
}

/// How many futures `async_10000_waiters` parks.
const WAITERS: usize = 10_000;

/// This process's thread count and resident memory (kB).
fn threads_and_rss() -> (i64, i64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("Threads:"), field("VmRSS:"))
}

/// One round trip: announce a change, wait for the child's answer (checking every 100 ms
/// that it lives).
fn notify_turn(n: &Notifier, child: &mut ChildProc) {
    let mine = n.notify().expect("notify");
    while let Err(e) = n.wait(mine, Some(Duration::from_millis(100))) {
        assert_eq!(e.kind(), qshm::ErrorKind::Timeout, "{e}");
        check_alive(child);
    }
}

/// Sleeps on the raw word while it holds `value` (the parent checks its child every 100 ms).
fn raw_wait(word: &AtomicU32, value: u32, mut child: Option<&mut ChildProc>) {
    const TIMEOUT: futex::Timespec = futex::Timespec {
        tv_sec: 0,
        tv_nsec: 100_000_000,
    };
    while word.load(Ordering::Acquire) == value {
        let timeout = child.as_ref().map(|_| &TIMEOUT);
        if let Err(rustix::io::Errno::TIMEDOUT) =
            futex::wait(word, futex::Flags::empty(), value, timeout)
        {
            if let Some(child) = child.as_deref_mut() {
                check_alive(child);
            }
        }
    }
}

/// The second process of every benchmark of this module.
pub fn child(id: &str) {
    match id {
        "futex_sleep_pingpong" => {
            let seg = MappedSegment::from_env(&ReceiveOptions::new()).expect("adopt the memfd");
            let (stop, word) = words(&seg);
            let mut seen = word.load(Ordering::Acquire);
            ToParent::new().send("ready");
            loop {
                raw_wait(word, seen, None);
                if stop.load(Ordering::Acquire) != 0 {
                    return;
                }
                seen = word.fetch_add(1, Ordering::AcqRel) + 1;
                let _ = futex::wake(word, futex::Flags::empty(), 1);
            }
        }
        "qshm_notify_mapped" => {
            let seg = MappedSegment::from_env(&ReceiveOptions::new()).expect("adopt the memfd");
            let n = seg.notifier().expect("notifier");
            let stop = words(&seg).0;
            answer(&n, || stop.load(Ordering::Acquire) != 0);
        }
        "qshm_notify_posix" => {
            let key: NativeKey = std::env::var(KEY_ENV).expect("key").parse().expect("a key");
            let mut shm = SharedMemory::with_native_key(key);
            shm.attach(AccessMode::ReadWrite).expect("attach");
            let n = shm.notifier().expect("notifier");
            answer(&n, || shm.lock().expect("lock").as_slice()[0] != 0);
        }
        other => panic!("wakeup: unknown child role {other:?}"),
    }
}

/// The child's side: wait for a change, answer it with one, until `stopped`.
fn answer(n: &Notifier, stopped: impl Fn() -> bool) {
    let mut seen = n.current();
    ToParent::new().send("ready");
    loop {
        n.wait(seen, None).expect("wait");
        if stopped() {
            return;
        }
        seen = n.notify().expect("notify");
    }
}
