//! Reliability under what production does to shared memory, for every backend and lock kind:
//!
//! * a crash campaign: processes killed with SIGKILL at random points of create, attach,
//!   lock-held, write and detach; after each kill the next process must get the lock within
//!   1 s, see the owner-died signal where the lock kind gives one (and otherwise find the
//!   data consistent), and find the segment usable or cleanly re-creatable;
//! * load: 8 processes × 100 000 locked increments end exactly at 800 000;
//! * churn: 8 processes create, attach, lock and detach 16 keys for 10 s with no error other
//!   than `AlreadyExists`/`NotFound`, and leave nothing behind.
//!
//! `QSHM_CRASH_KILLS` sets the kills per lock kind (default 200; `ci/crash-campaign.sh` runs
//! 10 000) and `QSHM_LOAD_INCREMENTS` the increments per process (default 100 000). Each test
//! prints a `RELIABILITY …` line that the campaign script records in RELIABILITY.md.

mod util;

use std::time::{Duration, Instant};

use qshm::{AccessMode, ErrorKind, KeyType, NativeKey, SharedMemory};
use util::{ChildProc, Cleanup, Watchdog};

const SIZE: usize = 4096;

/// The lock kinds under test: the backend's type, and whether its lock reports a dead owner.
const KINDS: [(&str, KeyType, bool); 2] = [
    ("sysv", KeyType::SystemV, false),
    ("posix", KeyType::PosixRealtime, true),
];

fn kind(name: &str) -> (KeyType, bool) {
    KINDS
        .iter()
        .find(|k| k.0 == name)
        .map(|k| (k.1, k.2))
        .expect("known kind")
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small xorshift generator: reproducible from its seed, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    t.as_nanos() as u64 ^ u64::from(std::process::id()) << 32
}

/// Creates or attaches, whichever the segment's state allows, for up to `limit`.
fn create_or_attach(key: &NativeKey, limit: Duration) -> SharedMemory {
    let start = Instant::now();
    loop {
        let mut shm = SharedMemory::with_native_key(key.clone());
        let err = match shm.create(SIZE, AccessMode::ReadWrite) {
            Ok(()) => return shm,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                match shm.attach(AccessMode::ReadWrite) {
                    Ok(()) => return shm,
                    Err(e) => e,
                }
            }
            Err(e) => e,
        };
        assert!(
            matches!(err.kind(), ErrorKind::NotFound | ErrorKind::AlreadyExists),
            "{err}"
        );
        assert!(
            start.elapsed() < limit,
            "no create or attach within {limit:?}: {err}"
        );
    }
}

/// The data invariant: bytes 8..16 hold the complement of the counter in bytes 0..8 (or
/// both are still zero: a new segment).
fn consistent(bytes: &[u8]) -> bool {
    let (v, c) = (util::read_u64(bytes), util::read_u64(&bytes[8..]));
    c == !v || (v == 0 && c == 0)
}

fn repair(bytes: &mut [u8]) {
    let v = util::read_u64(bytes);
    util::write_u64(&mut bytes[8..], !v);
}

/// One update, deliberately in two steps so that a kill can land in between; `pause` holds
/// the lock with the data half-written for that long.
fn update(bytes: &mut [u8], pause: Duration) {
    let v = util::read_u64(bytes) + 1;
    util::write_u64(bytes, v);
    std::hint::black_box(&mut *bytes);
    if !pause.is_zero() {
        std::thread::sleep(pause);
    }
    util::write_u64(&mut bytes[8..], !v);
}

fn crash_campaign(name: &'static str) {
    let (key_type, tells) = kind(name);
    let kills = env_usize("QSHM_CRASH_KILLS", 200);
    let key = NativeKey::legacy(&util::unique_key(&format!("crash-{name}")), key_type);
    let _c = Cleanup::new().segment(&key);
    let text = key.to_string();
    let mut rng = Rng::new(seed());
    let spawn = |i: u64| ChildProc::spawn("crash_worker", &[&text, &format!("{}", seed() ^ i)]);
    let mut workers = vec![spawn(0), spawn(1)];
    for w in &workers {
        assert_eq!(w.expect_line(Duration::from_secs(30)), "started");
    }
    let (mut slowest, mut owner_died_seen) = (Duration::ZERO, 0usize);
    // Operations done: the counter restarts when the segment is re-created (every user
    // gone), so add up what each generation reached.
    let (mut ops, mut last_seen) = (0u64, 0u64);
    for round in 0..kills {
        // Let the workers run into some random point, then kill one of them.
        std::thread::sleep(Duration::from_micros(rng.below(8_000)));
        let victim = rng.below(2) as usize;
        workers[victim].kill9();
        // The next process: gets the lock within 1 s and finds the data consistent unless told
        // the holder died (where the lock kind can tell).
        let start = Instant::now();
        let mut shm = create_or_attach(&key, Duration::from_secs(5));
        let mut guard = shm
            .lock_timeout(Duration::from_secs(1))
            .unwrap_or_else(|e| panic!("{name} round {round}: no lock within 1 s: {e}"));
        slowest = slowest.max(start.elapsed());
        let died = guard.owner_died();
        owner_died_seen += usize::from(died);
        let bytes = guard.as_mut_slice().unwrap();
        if tells && !died {
            assert!(
                consistent(bytes),
                "{name} round {round}: half-written data, and nobody said the owner died"
            );
        }
        let v = util::read_u64(bytes);
        ops += if v >= last_seen { v - last_seen } else { v };
        last_seen = v + 1;
        repair(bytes);
        update(bytes, Duration::ZERO);
        guard.mark_consistent();
        drop(guard);
        shm.detach()
            .unwrap_or_else(|e| panic!("{name} round {round}: detach: {e}"));
        workers[victim] = spawn(round as u64 + 2);
        assert_eq!(
            workers[victim].expect_line(Duration::from_secs(30)),
            "started"
        );
    }
    for w in &mut workers {
        w.kill9();
    }
    // Every user is dead: the clean-up path removes what they left.
    let mut last = create_or_attach(&key, Duration::from_secs(5));
    let guard = last.lock_timeout(Duration::from_secs(1)).unwrap();
    let v = util::read_u64(guard.as_slice());
    drop(guard);
    ops += if v >= last_seen { v - last_seen } else { v };
    last.detach().unwrap();
    let _ = SharedMemory::remove_orphan(&key).unwrap();
    let leaked = objects_left(&key);
    assert_eq!(
        leaked,
        Vec::<String>::new(),
        "{name}: objects left after the campaign"
    );
    println!(
        "RELIABILITY crash kind={name} kills={kills} survived={kills} operations={ops} \
         owner_died_reported={owner_died_seen} leaked={} slowest_recovery_ms={:.1}",
        leaked.len(),
        slowest.as_secs_f64() * 1e3
    );
}

fn objects_left(key: &NativeKey) -> Vec<String> {
    let lock = key.lock_key();
    let paths = if key.key_type().is_system_v() {
        vec![key.native_key().to_owned(), lock.native_key().to_owned()]
    } else {
        vec![
            format!("/dev/shm{}", key.native_key()),
            format!("/dev/shm/sem.{}", &lock.native_key()[1..]),
        ]
    };
    paths.into_iter().filter(|p| util::exists(p)).collect()
}

#[test]
fn crash_campaign_sysv() {
    let _w = Watchdog::new("crash_campaign_sysv", Duration::from_secs(1200));
    crash_campaign("sysv");
}

#[test]
fn crash_campaign_posix() {
    let _w = Watchdog::new("crash_campaign_posix", Duration::from_secs(1200));
    crash_campaign("posix");
}

fn load(name: &'static str) {
    let (key_type, _) = kind(name);
    let per_process = env_usize("QSHM_LOAD_INCREMENTS", 100_000);
    let key = NativeKey::legacy(&util::unique_key(&format!("load-{name}")), key_type);
    let _c = Cleanup::new().segment(&key);
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.create(SIZE, AccessMode::ReadWrite).unwrap();
    let start = Instant::now();
    let text = key.to_string();
    let n = per_process.to_string();
    let mut children: Vec<_> = (0..8)
        .map(|_| ChildProc::spawn("increment", &[&text, &n]))
        .collect();
    for c in &mut children {
        assert!(c.wait(Duration::from_secs(1200)).success());
    }
    let total = util::read_u64(shm.lock().unwrap().as_slice());
    assert_eq!(total, 8 * per_process as u64, "{name}");
    println!(
        "RELIABILITY load kind={name} processes=8 increments={total} seconds={:.1}",
        start.elapsed().as_secs_f64()
    );
}

#[test]
fn load_sysv() {
    let _w = Watchdog::new("load_sysv", Duration::from_secs(1500));
    load("sysv");
}

#[test]
fn load_posix() {
    let _w = Watchdog::new("load_posix", Duration::from_secs(1500));
    load("posix");
}

fn churn(name: &'static str) {
    let (key_type, _) = kind(name);
    let base = util::unique_key(&format!("churn-{name}"));
    let keys: Vec<NativeKey> = (0..16)
        .map(|i| NativeKey::legacy(&format!("{base}-{i}"), key_type))
        .collect();
    let mut cleanup = Cleanup::new();
    for k in &keys {
        cleanup = cleanup.segment(k);
    }
    let seconds = env_usize("QSHM_CHURN_SECONDS", 10).to_string();
    let mut children: Vec<_> = (0..8)
        .map(|i| {
            ChildProc::spawn(
                "churn",
                &[
                    &base,
                    &format!("{}", key_type.to_raw()),
                    &seconds,
                    &format!("{}", seed() ^ i),
                ],
            )
        })
        .collect();
    let mut ops = 0u64;
    for c in &mut children {
        let line = c.expect_line(Duration::from_secs(300));
        ops += line
            .strip_prefix("ops ")
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{name}: {line}"));
        assert!(
            c.wait(Duration::from_secs(60)).success(),
            "{name}: a churn process failed"
        );
    }
    let leaked: Vec<String> = keys.iter().flat_map(objects_left).collect();
    assert_eq!(
        leaked,
        Vec::<String>::new(),
        "{name}: churn left objects behind"
    );
    println!("RELIABILITY churn kind={name} processes=8 keys=16 operations={ops} leaked=0");
}

#[test]
fn churn_sysv() {
    let _w = Watchdog::new("churn_sysv", Duration::from_secs(300));
    churn("sysv");
}

#[test]
fn churn_posix() {
    let _w = Watchdog::new("churn_posix", Duration::from_secs(300));
    churn("posix");
}

#[test]
fn child_entry() {
    let Some(args) = util::child_role() else {
        return;
    };
    match args[0].as_str() {
        "crash_worker" => {
            let key: NativeKey = args[1].parse().unwrap();
            let tells = key.key_type() == KeyType::PosixRealtime;
            let mut rng = Rng::new(args[2].parse().unwrap());
            util::say("started");
            loop {
                let mut shm = create_or_attach(&key, Duration::from_secs(30));
                for _ in 0..rng.below(20) + 1 {
                    let mut guard = shm
                        .lock_timeout(Duration::from_secs(5))
                        .expect("worker lock");
                    let died = guard.owner_died();
                    let bytes = guard.as_mut_slice().unwrap();
                    if tells && !died {
                        assert!(
                            consistent(bytes),
                            "worker: half-written data, owner death not reported"
                        );
                    }
                    repair(bytes);
                    // A quarter of the updates hold the lock, half-written, for up to 2 ms:
                    // kills land there too.
                    let pause = if rng.below(4) == 0 {
                        rng.below(2_000)
                    } else {
                        0
                    };
                    update(bytes, Duration::from_micros(pause));
                    guard.mark_consistent();
                    drop(guard);
                    if rng.below(4) == 0 {
                        std::thread::sleep(Duration::from_micros(rng.below(500)));
                    }
                }
                shm.detach().expect("worker detach");
            }
        }
        "increment" => {
            let key: NativeKey = args[1].parse().unwrap();
            let n: u64 = args[2].parse().unwrap();
            let mut shm = SharedMemory::with_native_key(key);
            shm.attach(AccessMode::ReadWrite).unwrap();
            for _ in 0..n {
                let mut guard = shm.lock().unwrap();
                let bytes = guard.as_mut_slice().unwrap();
                let v = util::read_u64(bytes);
                util::write_u64(bytes, v + 1);
            }
        }
        "churn" => {
            let base = &args[1];
            let key_type = KeyType::from_raw(args[2].parse().unwrap()).unwrap();
            let deadline = Instant::now() + Duration::from_secs(args[3].parse().unwrap());
            let mut rng = Rng::new(args[4].parse().unwrap());
            let mut held: Vec<Option<SharedMemory>> = (0..16).map(|_| None).collect();
            let mut ops = 0u64;
            while Instant::now() < deadline {
                let i = rng.below(16) as usize;
                let key = NativeKey::legacy(&format!("{base}-{i}"), key_type);
                let result = match held[i].take() {
                    Some(mut shm) => match rng.below(3) {
                        0 => shm.detach(),
                        _ => {
                            let r = shm
                                .lock()
                                .map(|mut g| g.as_mut_slice().map(|b| b[0] = b[0].wrapping_add(1)));
                            held[i] = Some(shm);
                            r.and_then(|r| r)
                        }
                    },
                    None => {
                        let mut shm = SharedMemory::with_native_key(key);
                        let r = if rng.below(2) == 0 {
                            shm.create(SIZE, AccessMode::ReadWrite)
                        } else {
                            shm.attach(AccessMode::ReadWrite)
                        };
                        if r.is_ok() {
                            held[i] = Some(shm);
                        }
                        r
                    }
                };
                if let Err(e) = result {
                    assert!(
                        matches!(e.kind(), ErrorKind::AlreadyExists | ErrorKind::NotFound),
                        "churn: unexpected error: {e}"
                    );
                }
                ops += 1;
            }
            for shm in held.iter_mut().filter_map(Option::as_mut) {
                shm.detach().expect("final detach");
            }
            util::say(&format!("ops {ops}"));
        }
        other => panic!("unknown role {other}"),
    }
    std::process::exit(0);
}
