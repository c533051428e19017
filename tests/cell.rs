//! `qshm::mapped::cell` across real processes: readers in two other processes never see a
//! torn value over 10^6 reads each while a writer writes self-checking values (64 B and
//! 4 KiB); `wait_next` wakes across processes, honours its timeout and reports a killed
//! writer; garbage control blocks; a C writer and reader using `include/qshm.h`.
#![cfg(any(qshm_linux, qshm_windows))]

mod util;

#[cfg(qshm_linux)]
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use qshm::mapped::cell::{self, Reader, Writer};
use qshm::mapped::{FileOptions, MappedSegment};
use qshm::ErrorKind;
use util::{unique_file, ChildProc};

const T: Duration = Duration::from_secs(120);

/// The value of write `n`: 64 bytes or 4 KiB (alternating in runs), every byte `n as u8`.
fn value(n: u64) -> Vec<u8> {
    let len = if (n / 3) % 2 == 0 { 64 } else { 4096 };
    vec![n as u8; len]
}

/// Whether `v` is whole: 64 or 4096 bytes, all equal.
fn whole(v: &[u8]) -> bool {
    (v.len() == 64 || v.len() == 4096) && v.iter().all(|&b| b == v[0])
}

/// A writer here writes self-checking values as fast as it can; two reader processes read
/// 10^6 times each and check every byte of every value.
#[test]
fn readers_in_two_processes_never_see_a_torn_value() {
    let _w = util::file_watchdog("cell torn", Duration::from_secs(300));
    let (path, _c) = unique_file("cell-torn");
    let seg = FileOptions::new()
        .create(&path, cell::segment_size(4096))
        .unwrap();
    let mut writer = Writer::create(seg, 4096).unwrap();
    writer.write(&value(0)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let writes = std::thread::spawn(move || {
        let mut n = 1u64;
        while !stop2.load(Ordering::Relaxed) {
            writer.write(&value(n)).unwrap();
            n += 1;
        }
        n
    });
    let p = path.to_str().unwrap();
    let mut readers: Vec<_> = (0..2)
        .map(|_| ChildProc::spawn("read-many", &[p, "1000000"]))
        .collect();
    let reports: Vec<String> = readers.iter_mut().map(|r| r.expect_line(T)).collect();
    stop.store(true, Ordering::Relaxed);
    let n = writes.join().unwrap();
    for (r, report) in readers.iter_mut().zip(&reports) {
        assert!(r.wait(T).success());
        assert!(report.starts_with("ok "), "{report}");
        eprintln!("reader: {report}");
    }
    eprintln!("{n} values written");
}

/// `wait_next` in another process wakes when the value changes; its timeout is honoured.
#[test]
fn wait_next_wakes_across_processes_and_times_out() {
    let _w = util::file_watchdog("cell wait_next", Duration::from_secs(60));
    let (path, _c) = unique_file("cell-wait");
    let seg = FileOptions::new()
        .create(&path, cell::segment_size(64))
        .unwrap();
    let mut writer = Writer::create(seg, 64).unwrap();
    let first = writer.write(b"first").unwrap();
    let mut child = ChildProc::spawn("wait-next", &[path.to_str().unwrap(), &first.to_string()]);
    assert_eq!(child.expect_line(T), "waiting");
    std::thread::sleep(Duration::from_millis(200));
    writer.write(b"second").unwrap();
    assert_eq!(child.expect_line(T), "woke second");
    assert!(child.wait(T).success());
    // Timeouts: at least the timeout, less than a second more.
    let reader = Reader::open(MappedSegment::open_file(&path).unwrap()).unwrap();
    let seq = reader.seq();
    for timeout in [
        Duration::ZERO,
        Duration::from_millis(1),
        Duration::from_millis(250),
    ] {
        let t = Instant::now();
        let err = reader.wait_next(seq, timeout).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        let waited = t.elapsed();
        assert!(
            waited >= timeout && waited < timeout + Duration::from_secs(1),
            "{waited:?} for {timeout:?}"
        );
    }
    // 1 000 rounds: each write wakes the waiting reader; none is lost.
    let mut child = ChildProc::spawn("follow", &[path.to_str().unwrap(), "1000"]);
    assert_eq!(child.expect_line(T), "following");
    for i in 1..=1000u32 {
        writer.write(&i.to_ne_bytes()).unwrap();
        // The follower acknowledges each value before the next is written.
        let ack = child.expect_line(T);
        assert_eq!(ack, i.to_string());
    }
    assert!(child.wait(T).success());
}

/// The writer killed while a reader waits for the next value: `Disconnected` within 1 s; a
/// second writer is refused while the first lives, and takes over from a dead one.
#[test]
fn a_killed_writer_is_reported_and_replaced() {
    let _w = util::file_watchdog("cell killed writer", Duration::from_secs(60));
    let (path, _c) = unique_file("cell-kill");
    let seg = FileOptions::new()
        .create(&path, cell::segment_size(64))
        .unwrap();
    // A writer that closes its end (drop) closes it for good.
    let writer = Writer::create(seg, 64).unwrap();
    let reader = Reader::open(MappedSegment::open_file(&path).unwrap()).unwrap();
    drop(writer);
    assert_eq!(
        Writer::open(MappedSegment::open_file(&path).unwrap())
            .unwrap_err()
            .kind(),
        ErrorKind::Disconnected
    );
    assert_eq!(
        reader
            .wait_next(0, Duration::from_secs(5))
            .unwrap_err()
            .kind(),
        ErrorKind::Disconnected
    );

    let (path, _c2) = unique_file("cell-kill-b");
    let seg = FileOptions::new()
        .remove_on_last_detach(false)
        .create(&path, cell::segment_size(64))
        .unwrap();
    assert_eq!(
        Reader::open(seg).unwrap_err().kind(),
        ErrorKind::Layout,
        "not a cell yet"
    );
    let mut child = ChildProc::spawn("write-then-hold", &[path.to_str().unwrap()]);
    let seq: u32 = child.expect_line(T).parse().unwrap();
    let reader = Reader::open(MappedSegment::open_file(&path).unwrap()).unwrap();
    assert_eq!(reader.read_vec().unwrap(), (b"alive".to_vec(), seq));
    assert_eq!(
        Writer::open(MappedSegment::open_file(&path).unwrap())
            .unwrap_err()
            .kind(),
        ErrorKind::AlreadyAttached
    );
    let waiter = std::thread::spawn(move || {
        let err = reader.wait_next(seq, T).unwrap_err();
        (err, Instant::now(), reader)
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(!waiter.is_finished());
    let killed = Instant::now();
    child.kill9();
    let (err, told, reader) = waiter.join().unwrap();
    assert_eq!(err.kind(), ErrorKind::Disconnected, "{err}");
    let delay = told.duration_since(killed);
    assert!(delay < Duration::from_secs(1), "told after {delay:?}");
    eprintln!("a waiting reader was told of the writer's death after {delay:?}");
    let mut writer = Writer::open(MappedSegment::open_file(&path).unwrap()).unwrap();
    let next = writer.write(b"new writer").unwrap();
    assert_eq!(reader.wait_next(seq, T).unwrap(), next);
    assert_eq!(reader.read_vec().unwrap().0, b"new writer");
}

#[test]
#[cfg(qshm_linux)] // memfd
fn garbage_control_blocks_are_typed_errors() {
    let _w = util::file_watchdog("cell garbage", Duration::from_secs(60));
    let seg = MappedSegment::memfd("cell-garbage", 4096).unwrap();
    let open = |seg: &MappedSegment| {
        let seg = util::another_attachment(seg).unwrap();
        Reader::open(seg).map(drop).map_err(|e| e.kind())
    };
    assert_eq!(open(&seg), Err(ErrorKind::Layout));
    let mut control = vec![0u8; 128];
    control[..8].copy_from_slice(b"QSHM\0CEL");
    let field =
        |c: &mut Vec<u8>, at: usize, v: u32| c[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    field(&mut control, 8, 1);
    field(&mut control, 12, 128);
    field(&mut control, 16, 64);
    util::write_data(&seg, &control);
    assert_eq!(open(&seg), Ok(()));
    for (at, value, kind) in [
        (8, 2, ErrorKind::Unsupported),
        (12, 64, ErrorKind::Layout),
        (16, 60, ErrorKind::Layout),
        (16, 8192, ErrorKind::Layout),
        (16, 0, ErrorKind::Layout),
    ] {
        let mut bad = control.clone();
        field(&mut bad, at, value);
        util::write_data(&seg, &bad);
        assert_eq!(open(&seg), Err(kind), "field at {at} = {value}");
    }
    // A length past the capacity: a typed error when read.
    util::write_data(&seg, &control);
    let reader = Reader::open(util::another_attachment(&seg).unwrap()).unwrap();
    let mut bad = control.clone();
    field(&mut bad, 72, 1000);
    util::write_data(&seg, &bad);
    assert_eq!(reader.read_vec().unwrap_err().kind(), ErrorKind::Layout);
}

/// A C writer (`qshm_cell_write`) read by Rust, and a Rust writer read by C
/// (`qshm_cell_read`, `qshm_cell_wait_next`): self-checking values, no torn read.
#[test]
#[cfg(qshm_linux)] // C peers
fn c_writer_and_c_reader() {
    let _w = util::file_watchdog("cell C", Duration::from_secs(120));
    let Some((exe, _dir)) = util::compile_c("queue_cell") else {
        return;
    };
    // C writes, Rust reads.
    let (path, _c) = unique_file("cell-c-writer");
    let seg = FileOptions::new()
        .create(&path, cell::segment_size(4096))
        .unwrap();
    let mut c = util::spawn_c(
        &exe,
        &["cell-write", path.to_str().unwrap(), "100000"],
        |cmd| {
            cmd.stdout(Stdio::piped());
        },
    );
    // The C writer formats the cell itself (qshm_cell_format) and says "ready".
    let mut out = std::io::BufReader::new(c.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let reader = Reader::open(MappedSegment::open_file(&path).unwrap()).unwrap();
    drop(seg);
    let mut buf = vec![0u8; 4096];
    let mut reads = 0u64;
    let mut last = 0;
    loop {
        match reader.read(&mut buf) {
            Ok((len, seq)) => {
                assert!(seq >= last);
                last = seq;
                reads += 1;
                if len > 0 {
                    assert!(whole(&buf[..len]), "torn value from the C writer");
                }
            }
            Err(e) => panic!("{e}"),
        }
        if let Some(status) = c.try_wait().unwrap() {
            assert!(status.success(), "the C writer: {status}");
            break;
        }
    }
    eprintln!("{reads} reads of a C writer's values, none torn");

    // Rust writes, C reads (and waits for each next value).
    let (path, _c2) = unique_file("cell-c-reader");
    let seg = FileOptions::new()
        .create(&path, cell::segment_size(4096))
        .unwrap();
    let mut writer = Writer::create(seg, 4096).unwrap();
    writer.write(&value(0)).unwrap();
    let mut c = util::spawn_c(
        &exe,
        &["cell-read", path.to_str().unwrap(), "200000"],
        |_| {},
    );
    let mut n = 1;
    loop {
        writer.write(&value(n)).unwrap();
        n += 1;
        if let Some(status) = c.try_wait().unwrap() {
            assert!(status.success(), "the C reader: {status}");
            break;
        }
    }
}

#[test]
fn child_entry() {
    let Some(args) = util::child_role() else {
        return;
    };
    let open = || MappedSegment::open_file(&args[1]).unwrap();
    match args[0].as_str() {
        "read-many" => {
            let reader = Reader::open(open()).unwrap();
            let n: u64 = args[2].parse().unwrap();
            let mut buf = vec![0u8; reader.capacity()];
            let (mut changes, mut last, mut torn) = (0u64, 0u32, 0u64);
            let t = Instant::now();
            for _ in 0..n {
                let (len, seq) = reader.read(&mut buf).unwrap();
                if !whole(&buf[..len]) {
                    torn += 1;
                }
                assert!(seq >= last, "the sequence went back");
                if seq != last {
                    changes += 1;
                }
                last = seq;
            }
            if torn == 0 {
                util::say(&format!(
                    "ok {n} reads in {:?}, {changes} distinct values",
                    t.elapsed()
                ));
            } else {
                util::say(&format!("TORN: {torn} of {n} reads"));
            }
        }
        "wait-next" => {
            let reader = Reader::open(open()).unwrap();
            let seen: u32 = args[2].parse().unwrap();
            util::say("waiting");
            reader.wait_next(seen, T).unwrap();
            let (v, _) = reader.read_vec().unwrap();
            util::say(&format!("woke {}", String::from_utf8_lossy(&v)));
        }
        "follow" => {
            let reader = Reader::open(open()).unwrap();
            let rounds: u32 = args[2].parse().unwrap();
            let mut seq = reader.seq();
            util::say("following");
            let mut seen = 0;
            while seen < rounds {
                reader.wait_next(seq, T).unwrap();
                let (v, s) = reader.read_vec().unwrap();
                seq = s;
                let i = u32::from_ne_bytes(v[..4].try_into().unwrap());
                if i > seen {
                    seen = i;
                    util::say(&i.to_string());
                }
            }
        }
        "write-then-hold" => {
            let seg = open();
            let mut writer = Writer::create(seg, 64).unwrap();
            let seq = writer.write(b"alive").unwrap();
            util::say(&seq.to_string());
            std::thread::sleep(T);
        }
        other => panic!("unknown role {other}"),
    }
    std::process::exit(0);
}
