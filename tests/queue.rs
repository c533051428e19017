//! `qshm::mapped::queue` across real processes: a property test of random message sizes and
//! pauses with producer and consumer in two processes (every byte checked, wraparound and a
//! full queue included), timeouts, kill -9 of either side reported to the other within 1 s,
//! one producer and one consumer only, garbage control blocks, and C programs using
//! `include/qshm.h` at either end.
#![cfg(any(qshm_linux, qshm_windows))]

mod util;

#[cfg(qshm_linux)]
use std::process::Stdio;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use qshm::mapped::queue::{QueueOptions, Receiver, Sender};
use qshm::mapped::{FileOptions, MappedSegment};
use qshm::ErrorKind;
use util::{unique_file, ChildProc};

const T: Duration = Duration::from_secs(60);

/// Byte `j` of message `i` of length `len`: every byte of every message is checked.
fn byte(i: usize, j: usize, len: usize) -> u8 {
    (i.wrapping_mul(31) ^ j.wrapping_mul(7) ^ len) as u8
}

fn message(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| byte(i, j, len)).collect()
}

fn check(i: usize, got: &[u8], expected_len: usize) -> std::result::Result<(), String> {
    if got.len() != expected_len {
        return Err(format!(
            "message {i}: {} bytes, expected {expected_len}",
            got.len()
        ));
    }
    match (0..got.len()).find(|&j| got[j] != byte(i, j, got.len())) {
        Some(j) => Err(format!(
            "message {i} ({expected_len} bytes): byte {j} wrong"
        )),
        None => Ok(()),
    }
}

/// A pause of `p` (0..=255): mostly none, sometimes up to 2 ms, so that the queue is
/// sometimes full and sometimes empty.
fn pause(p: u8) {
    match p {
        0..=200 => {}
        201..=240 => std::thread::yield_now(),
        _ => std::thread::sleep(Duration::from_micros(u64::from(p - 240) * 130)),
    }
}

fn list(v: &[impl ToString]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Sizes `i * mul % modulus` for `i` in `0..n`, as `seq:n:mul:modulus` says (a list that
/// would not fit in a command line).
fn formula(n: usize, mul: usize, modulus: usize) -> Vec<usize> {
    (0..n).map(|i| i * mul % modulus).collect()
}

fn parse<T: std::str::FromStr>(s: &str) -> Vec<T> {
    if let Some(spec) = s.strip_prefix("seq:") {
        let p: Vec<usize> = parse(spec.replace(':', ",").as_str());
        return formula(p[0], p[1], p[2])
            .into_iter()
            .map(|x| x.to_string().parse().ok().expect("a number"))
            .collect();
    }
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(|x| x.parse().ok().expect("a number"))
        .collect()
}

/// The producer's side of a plan: sends `sizes`, pausing as `pauses` say, then closes.
fn produce(tx: &mut Sender, sizes: &[usize], pauses: &[u8]) {
    for (i, &len) in sizes.iter().enumerate() {
        if !pauses.is_empty() {
            pause(pauses[i % pauses.len()]);
        }
        tx.send(&message(i, len)).unwrap();
    }
}

/// The consumer's side: receives and checks `sizes.len()` messages, then expects
/// `Disconnected` (the producer closed).
fn consume(rx: &mut Receiver, sizes: &[usize], pauses: &[u8]) -> std::result::Result<(), String> {
    let mut buf = vec![0u8; rx.max_message()];
    for (i, &len) in sizes.iter().enumerate() {
        if !pauses.is_empty() {
            pause(pauses[(i * 7) % pauses.len()]);
        }
        // Alternate the two ways of receiving.
        if i % 2 == 0 {
            let got = rx
                .recv_timeout(T)
                .map_err(|e| format!("message {i}: {e}"))?;
            check(i, &got, len)?;
        } else {
            let n = rx
                .recv_into(&mut buf)
                .map_err(|e| format!("message {i}: {e}"))?;
            check(i, &buf[..n], len)?;
        }
    }
    match rx.recv_timeout(T) {
        Err(e) if e.kind() == ErrorKind::Disconnected => Ok(()),
        other => Err(format!("after the last message: {other:?}")),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random sizes (0..=max), random pauses on both sides, a small ring (so it wraps and
    /// fills many times), producer and consumer in two processes, either way round.
    #[test]
    fn random_sizes_and_interleavings_across_two_processes(
        max in 1usize..300,
        ring_factor in 0u32..3,
        child_produces in any::<bool>(),
        sizes_seed in proptest::collection::vec(any::<u16>(), 1..300),
        producer_pauses in proptest::collection::vec(any::<u8>(), 0..16),
        consumer_pauses in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let _w = util::file_watchdog("queue proptest", Duration::from_secs(600));
        // Sizes 0..=max, the extremes often.
        let sizes: Vec<usize> = sizes_seed
            .iter()
            .map(|&s| match s % 8 {
                0 => 0,
                1 => max,
                _ => s as usize % (max + 1),
            })
            .collect();
        let mut options = QueueOptions::new(max);
        let ring = QueueOptions::new(max).ring_size() << ring_factor;
        options.capacity(ring);
        let (path, _c) = unique_file("queue-prop");
        let seg = FileOptions::new().create(&path, options.segment_size()).unwrap();
        let p = path.to_str().unwrap();
        if child_produces {
            let mut rx = Receiver::create(seg, &options).unwrap();
            let mut child = ChildProc::spawn("produce", &[p, &list(&sizes), &list(&producer_pauses)]);
            let result = consume(&mut rx, &sizes, &consumer_pauses);
            prop_assert!(child.wait(T).success());
            prop_assert_eq!(result, Ok(()));
        } else {
            let mut tx = Sender::create(seg, &options).unwrap();
            let mut child = ChildProc::spawn("consume", &[p, &list(&sizes), &list(&consumer_pauses)]);
            produce(&mut tx, &sizes, &producer_pauses);
            // Closes the producer's end but keeps the segment: a child that has not opened
            // the file yet would find it removed by our last detach.
            let _seg = tx.close();
            prop_assert_eq!(child.expect_line(T), "ok");
            prop_assert!(child.wait(T).success());
        }
    }
}

/// Many messages through a small ring between two processes, none lost or reordered.
#[test]
fn a_hundred_thousand_messages_through_a_small_ring() {
    let _w = util::file_watchdog("hundred_thousand", Duration::from_secs(120));
    let mut options = QueueOptions::new(100);
    options.capacity(1024);
    let (path, _c) = unique_file("queue-many");
    let seg = FileOptions::new()
        .create(&path, options.segment_size())
        .unwrap();
    let mut rx = Receiver::create(seg, &options).unwrap();
    let sizes = formula(100_000, 13, 101);
    let mut child = ChildProc::spawn(
        "produce",
        &[path.to_str().unwrap(), "seq:100000:13:101", ""],
    );
    assert_eq!(consume(&mut rx, &sizes, &[]), Ok(()));
    assert!(child.wait(T).success());
}

fn within(elapsed: Duration, timeout: Duration) {
    assert!(
        elapsed >= timeout && elapsed < timeout + Duration::from_secs(1),
        "waited {elapsed:?} for a timeout of {timeout:?}"
    );
}

#[test]
fn timeouts_are_honoured() {
    let _w = util::file_watchdog("queue timeouts", Duration::from_secs(60));
    let options = QueueOptions::new(64);
    let (path, _c) = unique_file("queue-timeouts");
    let seg = FileOptions::new()
        .create(&path, options.segment_size())
        .unwrap();
    let mut rx = Receiver::create(seg, &options).unwrap();
    let mut tx = Sender::open(MappedSegment::open_file(&path).unwrap()).unwrap();
    for timeout in [
        Duration::ZERO,
        Duration::from_millis(1),
        Duration::from_millis(250),
    ] {
        let t = Instant::now();
        let err = rx.recv_timeout(timeout).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        within(t.elapsed(), timeout);
    }
    while tx.try_send(&[7; 64]).is_ok() {}
    assert_eq!(
        tx.try_send(&[7; 64]).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    for timeout in [
        Duration::ZERO,
        Duration::from_millis(1),
        Duration::from_millis(250),
    ] {
        let t = Instant::now();
        let err = tx.send_timeout(&[7; 64], timeout).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        within(t.elapsed(), timeout);
    }
    assert_eq!(rx.recv().unwrap(), [7; 64]);
    tx.send_timeout(&[8; 64], Duration::from_millis(250))
        .unwrap();
}

/// The consumer killed (SIGKILL) while the producer waits for room: the producer is told
/// within 1 s, as `Disconnected`.
#[test]
fn kill_9_of_the_consumer_is_reported_to_a_blocked_producer_within_1_s() {
    let _w = util::file_watchdog("kill consumer", Duration::from_secs(60));
    let options = QueueOptions::new(64);
    let (path, _c) = unique_file("queue-kill-consumer");
    let seg = FileOptions::new()
        .create(&path, options.segment_size())
        .unwrap();
    let mut tx = Sender::create(seg, &options).unwrap();
    let mut child = ChildProc::spawn("hold-consumer", &[path.to_str().unwrap()]);
    assert_eq!(child.expect_line(T), "attached");
    while tx.try_send(&[1; 64]).is_ok() {}
    let sender = std::thread::spawn(move || tx.send(&[2; 64]).unwrap_err());
    let delay = disconnected_after_kill(&mut child, sender);
    eprintln!("a blocked producer was told of the consumer's death after {delay:?}");
}

/// Checks that `blocked` blocks, kills `child` (SIGKILL), and checks that `blocked` then
/// ends with `Disconnected` within 1 s; returns how long that took.
fn disconnected_after_kill(
    child: &mut ChildProc,
    blocked: std::thread::JoinHandle<qshm::Error>,
) -> Duration {
    std::thread::sleep(Duration::from_millis(300));
    assert!(!blocked.is_finished(), "the call did not block");
    let killed = Instant::now();
    child.kill9();
    let err = blocked.join().unwrap();
    let delay = killed.elapsed();
    assert_eq!(err.kind(), ErrorKind::Disconnected, "{err}");
    assert!(delay < Duration::from_secs(1), "told after {delay:?}");
    delay
}

/// The producer killed while the consumer waits for a message: the consumer gets what the
/// producer sent, then `Disconnected`, within 1 s of the kill.
#[test]
fn kill_9_of_the_producer_is_reported_to_a_blocked_consumer_within_1_s() {
    let _w = util::file_watchdog("kill producer", Duration::from_secs(60));
    let options = QueueOptions::new(64);
    let (path, _c) = unique_file("queue-kill-producer");
    let seg = FileOptions::new()
        .create(&path, options.segment_size())
        .unwrap();
    let mut rx = Receiver::create(seg, &options).unwrap();
    let mut child = ChildProc::spawn("hold-producer", &[path.to_str().unwrap()]);
    assert_eq!(child.expect_line(T), "sent 3");
    let receiver = std::thread::spawn(move || {
        let got: Vec<_> = (0..3).map(|_| rx.recv().unwrap()).collect();
        assert_eq!(got, [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]);
        rx.recv().unwrap_err()
    });
    let delay = disconnected_after_kill(&mut child, receiver);
    eprintln!("a blocked consumer was told of the producer's death after {delay:?}");
}

/// One producer and one consumer: a second one of either is refused while the first lives,
/// and takes over from a dead one.
#[test]
fn exactly_one_producer_and_one_consumer() {
    let _w = util::file_watchdog("one producer", Duration::from_secs(60));
    let options = QueueOptions::new(16);
    let (path, _c) = unique_file("queue-one");
    let seg = FileOptions::new()
        .create(&path, options.segment_size())
        .unwrap();
    let rx = Receiver::create(seg, &options).unwrap();
    let open = || MappedSegment::open_file(&path).unwrap();
    assert_eq!(
        Receiver::open(open()).unwrap_err().kind(),
        ErrorKind::AlreadyAttached
    );
    let mut child = ChildProc::spawn("hold-producer", &[path.to_str().unwrap()]);
    assert_eq!(child.expect_line(T), "sent 3");
    let err = Sender::open(open()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyAttached, "{err}");
    child.kill9();
    // The dead producer's end is taken over; its messages are still there.
    let mut tx = Sender::open(open()).unwrap();
    tx.send(b"four").unwrap();
    let mut rx = rx;
    for expected in [&b"one"[..], b"two", b"three", b"four"] {
        assert_eq!(rx.recv().unwrap(), expected);
    }
    // A closed end stays closed.
    drop(tx);
    assert_eq!(
        Sender::open(open()).unwrap_err().kind(),
        ErrorKind::Disconnected
    );
    assert_eq!(rx.recv().unwrap_err().kind(), ErrorKind::Disconnected);
    // And a consumer that closed makes the producer's sends fail at once.
    let options = QueueOptions::new(16);
    let (path2, _c2) = unique_file("queue-one-b");
    let seg = FileOptions::new()
        .create(&path2, options.segment_size())
        .unwrap();
    let mut tx = Sender::create(seg, &options).unwrap();
    drop(Receiver::open(MappedSegment::open_file(&path2).unwrap()).unwrap());
    assert_eq!(tx.send(b"x").unwrap_err().kind(), ErrorKind::Disconnected);
}

/// A control block the queue did not write: typed errors, never a crash.
#[test]
#[cfg(qshm_linux)] // memfd
fn garbage_control_blocks_are_typed_errors() {
    let _w = util::file_watchdog("queue garbage", Duration::from_secs(60));
    let seg = MappedSegment::memfd("garbage", 4096).unwrap();
    let open = |seg: &MappedSegment| {
        let seg = util::another_attachment(seg).unwrap();
        Receiver::open(seg).map(drop).map_err(|e| e.kind())
    };
    assert_eq!(open(&seg), Err(ErrorKind::Layout), "all zeros");
    let mut control = vec![0u8; 256];
    control[..8].copy_from_slice(b"QSHM\0QUE");
    let field =
        |c: &mut Vec<u8>, at: usize, v: u32| c[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    field(&mut control, 8, 1);
    field(&mut control, 12, 256);
    field(&mut control, 16, 1024);
    field(&mut control, 20, 100);
    util::write_data(&seg, &control);
    assert_eq!(open(&seg), Ok(()), "a valid block");
    for (at, value, kind) in [
        (8, 7, ErrorKind::Unsupported),   // version
        (12, 128, ErrorKind::Layout),     // ring offset
        (16, 1000, ErrorKind::Layout),    // not a power of two
        (16, 1 << 20, ErrorKind::Layout), // past the data area
        (20, 0, ErrorKind::Layout),       // no message fits
        (20, 600, ErrorKind::Layout),     // more than half the ring
    ] {
        let mut bad = control.clone();
        field(&mut bad, at, value);
        util::write_data(&seg, &bad);
        assert_eq!(open(&seg), Err(kind), "field at {at} = {value}");
    }
    // Random garbage.
    let mut x = 0x1234_5678_9abc_def0u64;
    for _ in 0..200 {
        let garbage: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        util::write_data(&seg, &garbage);
        assert!(open(&seg).is_err());
    }
    // A valid block whose indices a peer corrupted: errors when used.
    util::write_data(&seg, &control);
    let mut rx = Receiver::open(util::another_attachment(&seg).unwrap()).unwrap();
    let mut tail = control.clone();
    field(&mut tail, 64, 5000); // tail far past head + ring size
    util::write_data(&seg, &tail[..128]);
    assert_eq!(rx.try_recv().unwrap_err().kind(), ErrorKind::Layout);
    field(&mut tail, 64, 16); // a record claiming 0x4141 bytes
    util::write_data(&seg, &tail[..128]);
    let mut data = tail.clone();
    data.extend_from_slice(&[0x41; 16]);
    util::write_data(&seg, &data);
    assert_eq!(rx.try_recv().unwrap_err().kind(), ErrorKind::Layout);
}

// ---- C programs (include/qshm.h) at either end ------------------------------------------

/// A C producer (`qshm_queue_send`) and a Rust consumer, then a Rust producer and a C
/// consumer (`qshm_queue_recv`): the same messages, every byte checked on both sides.
#[test]
#[cfg(qshm_linux)] // C peers
fn c_program_at_either_end() {
    let _w = util::file_watchdog("queue C", Duration::from_secs(120));
    let Some((exe, _dir)) = util::compile_c("queue_cell") else {
        return;
    };
    let sizes = formula(20_000, 37, 201); // as the C program computes them
    let mut options = QueueOptions::new(200);
    options.capacity(1024);

    // C produces.
    let (path, _c) = unique_file("queue-c-producer");
    let seg = FileOptions::new()
        .create(&path, options.segment_size())
        .unwrap();
    let mut rx = Receiver::create(seg, &options).unwrap();
    let mut c = util::spawn_c(
        &exe,
        &[
            "queue-produce",
            path.to_str().unwrap(),
            &sizes.len().to_string(),
        ],
        |_| {},
    );
    assert_eq!(consume(&mut rx, &sizes, &[]), Ok(()));
    assert!(c.wait().unwrap().success());

    // C consumes.
    let (path, _c2) = unique_file("queue-c-consumer");
    let seg = FileOptions::new()
        .create(&path, options.segment_size())
        .unwrap();
    let mut tx = Sender::create(seg, &options).unwrap();
    let mut c = util::spawn_c(
        &exe,
        &[
            "queue-consume",
            path.to_str().unwrap(),
            &sizes.len().to_string(),
        ],
        |_| {},
    );
    produce(&mut tx, &sizes, &[]);
    let _seg = tx.close(); // the end, not the segment: the C program may not have opened it yet
    let status = c.wait().unwrap();
    assert!(status.success(), "the C consumer: {status}");
}

/// A C producer (named by its pid and start time, `qshm_process_id`) killed with SIGKILL:
/// the Rust consumer receives what it sent, then `Disconnected`, within 1 s of the kill.
#[test]
#[cfg(qshm_linux)] // C peers
fn a_killed_c_producer_is_reported_within_1_s() {
    let _w = util::file_watchdog("queue C killed", Duration::from_secs(120));
    let Some((exe, _dir)) = util::compile_c("queue_cell") else {
        return;
    };
    let mut options = QueueOptions::new(200);
    options.capacity(1024);
    let (path, _c) = unique_file("queue-c-kill");
    let seg = FileOptions::new()
        .create(&path, options.segment_size())
        .unwrap();
    let mut rx = Receiver::create(seg, &options).unwrap();
    let mut c = util::spawn_c(
        &exe,
        &["queue-produce", path.to_str().unwrap(), "1000000000"],
        |_| {},
    );
    let mut buf = vec![0u8; 200];
    for i in 0..100 {
        let n = rx.recv_into_timeout(&mut buf, T).unwrap();
        assert_eq!(check(i, &buf[..n], (i * 37) % 201), Ok(()));
    }
    // The producer now waits for room (the ring is full): kill it there.
    std::thread::sleep(Duration::from_millis(200));
    let killed = Instant::now();
    c.kill().unwrap();
    c.wait().unwrap();
    let mut i = 100;
    let err = loop {
        match rx.recv_into(&mut buf) {
            Ok(n) => {
                assert_eq!(check(i, &buf[..n], (i * 37) % 201), Ok(()));
                i += 1;
            }
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), ErrorKind::Disconnected, "{err}");
    let delay = killed.elapsed();
    assert!(delay < Duration::from_secs(1), "told after {delay:?}");
    eprintln!("a killed C producer was reported after {delay:?} ({i} messages received)");
}

/// A Rust producer killed with SIGKILL while a C consumer (`qshm_queue_recv`, judging the
/// producer's liveness slot through a descriptor it opened itself) waits: the C program gets
/// -EPIPE within 1 s of the kill.
#[test]
#[cfg(qshm_linux)] // C peers
fn a_c_consumer_is_told_of_a_killed_rust_producer_within_1_s() {
    let _w = util::file_watchdog("queue C told", Duration::from_secs(120));
    let Some((exe, _dir)) = util::compile_c("queue_cell") else {
        return;
    };
    let mut options = QueueOptions::new(200);
    options.capacity(4096); // the ten messages fit before the consumer starts
    let (path, _c) = unique_file("queue-c-told");
    let seg = FileOptions::new()
        .create(&path, options.segment_size())
        .unwrap();
    options.format(&seg).unwrap();
    let p = path.to_str().unwrap();
    let mut producer = ChildProc::spawn("produce-then-hold", &[p, "seq:10:37:201"]);
    assert_eq!(producer.expect_line(T), "sent");
    let mut c = util::spawn_c(&exe, &["queue-consume", p, "1000"], |cmd| {
        cmd.stderr(Stdio::piped());
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        c.try_wait().unwrap().is_none(),
        "the C consumer did not wait"
    );
    let killed = Instant::now();
    producer.kill9();
    let output = c.wait_with_output().unwrap();
    let delay = killed.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("qshm_queue_recv 10: Broken pipe"),
        "{stderr}"
    );
    assert!(delay < Duration::from_secs(1), "told after {delay:?}");
    eprintln!("a C consumer was told of the Rust producer's death after {delay:?}");
}

#[test]
fn child_entry() {
    let Some(args) = util::child_role() else {
        return;
    };
    let open = || MappedSegment::open_file(&args[1]).unwrap();
    match args[0].as_str() {
        "produce" => {
            let mut tx = Sender::open(open()).unwrap();
            produce(&mut tx, &parse(&args[2]), &parse(&args[3]));
        }
        "consume" => {
            let mut rx = Receiver::open(open()).unwrap();
            match consume(&mut rx, &parse(&args[2]), &parse(&args[3])) {
                Ok(()) => util::say("ok"),
                Err(e) => util::say(&e),
            }
        }
        "produce-then-hold" => {
            let mut tx = Sender::open(open()).unwrap();
            produce(&mut tx, &parse(&args[2]), &[]);
            util::say("sent");
            std::thread::sleep(T);
        }
        "hold-consumer" => {
            let _rx = Receiver::open(open()).unwrap();
            util::say("attached");
            std::thread::sleep(T);
        }
        "hold-producer" => {
            let mut tx = Sender::open(open()).unwrap();
            for m in [&b"one"[..], b"two", b"three"] {
                tx.send(m).unwrap();
            }
            util::say("sent 3");
            std::thread::sleep(T);
        }
        other => panic!("unknown role {other}"),
    }
    std::process::exit(0);
}
