//! The futures (feature `async`) under tokio's multi-thread runtime: 10 000 pending waiters
//! on one segment wake after one notify from another process, with one helper thread;
//! dropping half of them leaves nothing registered; `lock_async` on mapped, System V and
//! POSIX segments waits for a holder in another process and recovers one killed with
//! kill -9; `acquire_async` waits for a release from another process. The waiter tests run
//! on Windows too (under Wine in `ci/windows.sh`).
#![cfg(all(any(qshm_linux, qshm_windows), feature = "async"))]

mod util;

use std::time::{Duration, Instant};

use qshm::mapped::{FileOptions, MappedSegment};
use util::{ChildProc, PathCleanup};
#[cfg(qshm_linux)]
use {
    qshm::{AccessMode, ErrorKind, KeyType, NativeKey, SharedMemory, SystemSemaphore},
    std::sync::Arc,
    util::Cleanup,
};

const T: Duration = Duration::from_secs(60);

/// Held by the tests of retrying futures, whose count of pending retries is process-wide:
/// one at a time, so that each can check that it left none behind.
#[cfg(qshm_linux)]
static RETRYING: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(qshm_linux)]
fn retrying_alone() -> std::sync::MutexGuard<'static, ()> {
    RETRYING.lock().unwrap_or_else(|p| p.into_inner())
}
const WAITERS: usize = 10_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

fn mapped_file(name: &str) -> (String, MappedSegment, PathCleanup) {
    let path = FileOptions::new().resolve(util::unique_key(name));
    let cleanup = PathCleanup::new().path(&path);
    let seg = FileOptions::new().create(&path, 64).unwrap();
    (path.to_str().unwrap().to_owned(), seg, cleanup)
}

/// This process's threads and resident memory (kB), from /proc/self/status.
#[cfg(not(qshm_linux))]
fn threads_and_rss() -> (u64, u64) {
    (0, 0)
}

/// This process's threads and resident memory (kB), from /proc/self/status.
#[cfg(qshm_linux)]
fn threads_and_rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
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

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < T, "waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[test]
fn ten_thousand_waiters_wake_after_one_notify_from_another_process() {
    let _w = util::Watchdog::new("ten_thousand_waiters_wake", T * 2);
    let (path, seg, _c) = mapped_file("async-10k");
    let n = seg.notifier().unwrap();
    let rt = runtime();
    rt.block_on(async {
        let (threads0, rss0) = threads_and_rss();
        let seen = n.current();
        let tasks: Vec<_> = (0..WAITERS)
            .map(|_| tokio::spawn(n.changed(seen)))
            .collect();
        until("all registered", || n.pending_futures() == WAITERS).await;
        let (threads1, rss1) = threads_and_rss();
        let start = Instant::now();
        let mut child = ChildProc::spawn("notify", &[&path]);
        let mut woke = 0;
        for t in tasks {
            assert_ne!(t.await.unwrap().unwrap(), seen);
            woke += 1;
        }
        let took = start.elapsed();
        assert!(child.wait(T).success());
        assert_eq!(woke, WAITERS);
        assert_eq!(n.pending_futures(), 0);
        eprintln!(
            "{WAITERS} pending waiters: {} more threads, {} kB more memory; all woken \
             {took:?} after a notify was asked of a new process",
            threads1.saturating_sub(threads0),
            rss1.saturating_sub(rss0)
        );
    });
}

#[test]
fn dropping_half_of_the_waiters_leaves_nothing_registered() {
    let _w = util::Watchdog::new("dropping_half_of_the_waiters", T);
    let (_path, seg, _c) = mapped_file("async-cancel");
    let n = seg.notifier().unwrap();
    let rt = runtime();
    rt.block_on(async {
        let seen = n.current();
        let tasks: Vec<_> = (0..WAITERS)
            .map(|_| tokio::spawn(n.changed(seen)))
            .collect();
        until("all registered", || n.pending_futures() == WAITERS).await;
        let (cancelled, kept): (Vec<_>, Vec<_>) =
            tasks.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
        for (_, t) in &cancelled {
            t.abort();
        }
        for (_, t) in cancelled {
            assert!(t.await.unwrap_err().is_cancelled());
        }
        assert_eq!(
            n.pending_futures(),
            WAITERS / 2,
            "the dropped ones are gone"
        );
        n.notify().unwrap();
        for (_, t) in kept {
            t.await.unwrap().unwrap();
        }
        assert_eq!(n.pending_futures(), 0);
        // Dropped before ever being polled, or after: nothing stays registered.
        let f = n.changed(seen.wrapping_sub(1000));
        drop(f);
        assert_eq!(n.pending_futures(), 0);
    });
}

/// Many short rounds of register, notify, wake: a change that lands while the helper
/// thread is between two sleeps still wakes every registered future (found by the
/// benchmark: a thread that re-read the counter at the top of its loop missed it).
#[test]
fn no_round_loses_its_wake_up() {
    let _w = util::Watchdog::new("no_round_loses_its_wake_up", T);
    let (_path, seg, _c) = mapped_file("async-rounds");
    let n = seg.notifier().unwrap();
    let rt = runtime();
    for round in 0..300 {
        let seen = n.current();
        let tasks: Vec<_> = (0..50).map(|_| rt.spawn(n.changed(seen))).collect();
        while n.pending_futures() < 50 {
            std::thread::yield_now();
        }
        if round % 3 == 0 {
            // Let the helper thread's sleep time out, so that the notify meets it at
            // different points of its loop.
            std::thread::sleep(Duration::from_millis(round % 7));
        }
        n.notify().unwrap();
        rt.block_on(async {
            for t in tasks {
                let r = tokio::time::timeout(Duration::from_secs(5), t).await;
                assert!(r.is_ok(), "round {round}: a future was never woken");
            }
        });
    }
}

/// `lock_async` waits for a holder in another process, on every segment kind, and a
/// dropped attempt leaves no retry behind.
#[test]
#[cfg(qshm_linux)]
fn lock_async_waits_for_a_holder_in_another_process() {
    let _alone = retrying_alone();
    let _w = util::Watchdog::new("lock_async_waits_for_a_holder", T * 2);
    let rt = runtime();
    let (path, seg, _c) = mapped_file("async-lock");
    let mut holder = ChildProc::spawn("hold", &[&format!("file:{path}"), "300"]);
    assert_eq!(holder.expect_line(T), "locked");
    rt.block_on(async {
        // An attempt dropped while pending holds nothing and leaves nothing scheduled.
        let dropped = tokio::time::timeout(Duration::from_millis(20), seg.lock_async()).await;
        assert!(dropped.is_err(), "the lock is held");
        let start = Instant::now();
        let g = seg.lock_async().await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(100));
        assert!(!g.owner_died());
    });
    assert!(holder.wait(T).success());
    for t in [KeyType::SystemV, KeyType::PosixRealtime] {
        let key = NativeKey::legacy(&util::unique_key("async-lock"), t);
        let _c = Cleanup::new().segment(&key);
        let mut shm = SharedMemory::with_native_key(key.clone());
        shm.create(64, AccessMode::ReadWrite).unwrap();
        let mut holder = ChildProc::spawn("hold", &[&key.to_string(), "300"]);
        assert_eq!(holder.expect_line(T), "locked");
        rt.block_on(async {
            let start = Instant::now();
            let g = shm.lock_async().await.unwrap();
            assert!(start.elapsed() >= Duration::from_millis(100), "{t:?}");
            drop(g);
        });
        assert!(holder.wait(T).success());
    }
    assert_eq!(qshm::asynchronous::pending_retries(), 0);
}

/// A holder killed with kill -9 is recovered by a pending `lock_async` within a second,
/// which reports that the owner died (mapped and POSIX; System V's kernel gives the lock
/// back silently).
#[test]
#[cfg(qshm_linux)]
fn lock_async_recovers_a_killed_holder() {
    let _alone = retrying_alone();
    let _w = util::Watchdog::new("lock_async_recovers_a_killed_holder", T * 2);
    let rt = runtime();
    let (path, _seg, _c) = mapped_file("async-kill");
    let key = NativeKey::legacy(&util::unique_key("async-kill"), KeyType::PosixRealtime);
    let _c2 = Cleanup::new().segment(&key);
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.create(64, AccessMode::ReadWrite).unwrap();
    let seg = Arc::new(MappedSegment::open_file(&path).unwrap());
    for spec in [format!("file:{path}"), key.to_string()] {
        let mut holder = ChildProc::spawn("hold", &[&spec, "600000"]);
        assert_eq!(holder.expect_line(T), "locked");
        rt.block_on(async {
            let killer = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let at = Instant::now();
                holder.kill9();
                at
            });
            let died = if spec.starts_with("file:") {
                let g = seg.lock_async().await.unwrap();
                g.owner_died()
            } else {
                let g = shm.lock_async().await.unwrap();
                g.owner_died()
            };
            let killed_at = killer.await.unwrap();
            assert!(died, "{spec}");
            assert!(killed_at.elapsed() < Duration::from_secs(1), "{spec}");
        });
    }
}

/// `acquire_async` waits for a release by another process.
#[test]
#[cfg(qshm_linux)]
fn acquire_async_waits_for_a_release_from_another_process() {
    let _alone = retrying_alone();
    let _w = util::Watchdog::new("acquire_async_waits_for_a_release", T);
    let key = NativeKey::legacy(&util::unique_key("async-sem"), KeyType::SystemV);
    let _c = Cleanup::new().semaphore(&key);
    let sem =
        SystemSemaphore::with_native_key(key.clone(), 0, qshm::SemaphoreMode::Create).unwrap();
    let rt = runtime();
    rt.block_on(async {
        assert_eq!(sem.try_acquire().unwrap_err().kind(), ErrorKind::WouldBlock);
        let mut child = ChildProc::spawn("release", &[&key.to_string(), "200"]);
        let start = Instant::now();
        sem.acquire_async().await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(100));
        assert!(child.wait(T).success());
    });
}

/// The queue's and the cell's futures across processes: `send_async` through a small ring
/// waits for a consumer in another process (every message arrives, in order), `recv_async`
/// gets what another process sends and then `Disconnected`, `next_async` follows a writer
/// in another process to its last value.
#[test]
#[cfg(qshm_linux)]
fn queue_and_cell_futures_across_processes() {
    let _alone = retrying_alone();
    use qshm::mapped::cell::{self, Reader};
    use qshm::mapped::queue::{QueueOptions, Receiver, Sender};
    let _w = util::Watchdog::new("queue_and_cell_futures_across_processes", T);
    let rt = runtime();
    const N: u32 = 2000;

    let mut options = QueueOptions::new(64);
    options.capacity(256);
    let path = FileOptions::new().resolve(util::unique_key("async-queue"));
    let _c = PathCleanup::new().path(&path);
    let seg = FileOptions::new()
        .create(&path, options.segment_size())
        .unwrap();
    let mut tx = Sender::create(seg, &options).unwrap();
    let mut consumer = ChildProc::spawn("queue-consume", &[path.to_str().unwrap()]);
    rt.block_on(async {
        for i in 0..N {
            tx.send_async(&i.to_le_bytes()).await.unwrap();
        }
    });
    let _seg = tx.close();
    assert_eq!(consumer.expect_line(T), format!("received {N} in order"));
    assert!(consumer.wait(T).success());

    let path = FileOptions::new().resolve(util::unique_key("async-queue-rx"));
    let _c2 = PathCleanup::new().path(&path);
    let seg = FileOptions::new()
        .create(&path, options.segment_size())
        .unwrap();
    let mut rx = Receiver::create(seg, &options).unwrap();
    let mut producer = ChildProc::spawn("queue-produce", &[path.to_str().unwrap()]);
    rt.block_on(async {
        for i in 0..N {
            assert_eq!(rx.recv_async().await.unwrap(), i.to_le_bytes());
        }
        let end = rx.recv_async().await.unwrap_err();
        assert_eq!(end.kind(), qshm::ErrorKind::Disconnected);
    });
    assert!(producer.wait(T).success());

    let path = FileOptions::new().resolve(util::unique_key("async-cell"));
    let _c3 = PathCleanup::new().path(&path);
    let keep = FileOptions::new()
        .create(&path, cell::segment_size(8))
        .unwrap();
    let mut child = ChildProc::spawn("cell-write", &[path.to_str().unwrap()]);
    assert_eq!(child.expect_line(T), "writing");
    let reader = Reader::open(MappedSegment::open_file(&path).unwrap()).unwrap();
    rt.block_on(async {
        let mut seen = reader.seq();
        let mut buf = [0u8; 8];
        loop {
            match reader.next_async(seen).await {
                Ok(seq) => seen = seq,
                Err(e) => panic!("next_async: {e}"),
            }
            let (_, seq) = reader.read(&mut buf).unwrap();
            seen = seen.max(seq);
            if u64::from_le_bytes(buf) == 99 {
                break;
            }
        }
    });
    assert!(child.wait(T).success());
    drop(keep);
    assert_eq!(qshm::asynchronous::pending_retries(), 0);
}

#[test]
fn child_entry() {
    let Some(args) = util::child_role() else {
        return;
    };
    match args[0].as_str() {
        "notify" => {
            let seg = MappedSegment::open_file(&args[1]).unwrap();
            seg.notifier().unwrap().notify().unwrap();
        }
        #[cfg(qshm_linux)]
        "hold" => {
            let ms: u64 = args[2].parse().unwrap();
            match args[1].strip_prefix("file:") {
                Some(path) => {
                    let seg = MappedSegment::open_file(path).unwrap();
                    let _g = seg.lock().unwrap();
                    util::say("locked");
                    std::thread::sleep(Duration::from_millis(ms));
                }
                None => {
                    let mut shm = SharedMemory::with_native_key(args[1].parse().unwrap());
                    shm.attach(AccessMode::ReadWrite).unwrap();
                    let _g = shm.lock().unwrap();
                    util::say("locked");
                    std::thread::sleep(Duration::from_millis(ms));
                }
            }
        }
        #[cfg(qshm_linux)]
        "release" => {
            let sem = SystemSemaphore::with_native_key(
                args[1].parse().unwrap(),
                0,
                qshm::SemaphoreMode::Open,
            )
            .unwrap();
            std::thread::sleep(Duration::from_millis(args[2].parse().unwrap()));
            sem.release(1).unwrap();
        }
        #[cfg(qshm_linux)]
        "queue-consume" => {
            let seg = MappedSegment::open_file(&args[1]).unwrap();
            let mut rx = qshm::mapped::queue::Receiver::open(seg).unwrap();
            let mut next = 0u32;
            loop {
                match rx.recv() {
                    Ok(m) => {
                        assert_eq!(m, next.to_le_bytes());
                        next += 1;
                    }
                    Err(e) if e.kind() == qshm::ErrorKind::Disconnected => break,
                    Err(e) => panic!("{e}"),
                }
            }
            util::say(&format!("received {next} in order"));
        }
        #[cfg(qshm_linux)]
        "queue-produce" => {
            let seg = MappedSegment::open_file(&args[1]).unwrap();
            let mut tx = qshm::mapped::queue::Sender::open(seg).unwrap();
            for i in 0..2000u32 {
                tx.send(&i.to_le_bytes()).unwrap();
            }
        }
        #[cfg(qshm_linux)]
        "cell-write" => {
            let seg = MappedSegment::open_file(&args[1]).unwrap();
            let mut w = qshm::mapped::cell::Writer::create(seg, 8).unwrap();
            w.write(&u64::MAX.to_le_bytes()).unwrap();
            util::say("writing");
            std::thread::sleep(Duration::from_millis(20));
            for i in 0..100u64 {
                w.write(&i.to_le_bytes()).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
            // Stays until the reader has seen the last value and the parent reaps us.
            std::thread::sleep(Duration::from_millis(200));
        }
        other => panic!("unknown role {other}"),
    }
    std::process::exit(0);
}
