//! A measurement, not a walk-through: on Windows (run under Wine by `benches/windows.sh`),
//! the uncontended cost of qshm's lock against the raw pair it is built on
//! (`WaitForSingleObject` + `ReleaseSemaphore` on a named semaphore), of the in-segment lock
//! of a `qshm::mapped` file, and of a segment's
//! life cycle (create+detach, attach+detach), all in one run, as medians of 15 samples.
//! Prints one line per figure and the ratios. Elsewhere it says it is Windows-only.
//!
//! Wine's figures are not Windows figures (every kernel-object call is a round trip to
//! `wineserver`): only the ratios mean something.

#[cfg(not(windows))]
fn main() {
    eprintln!("bench_windows_lock measures the Windows backend: build it for Windows (benches/windows.sh)");
}

#[cfg(windows)]
fn main() {
    windows::run();
}

#[cfg(windows)]
mod windows {
    use std::time::Instant;

    use qshm::{AccessMode, KeyType, NativeKey, SemaphoreMode, SharedMemory, SystemSemaphore};

    /// Median ns per iteration of `body(n)` over 15 samples of about 100 ms each.
    fn measure(name: &str, mut body: impl FnMut(u64)) -> f64 {
        body(10);
        let t = Instant::now();
        body(100);
        let per = t.elapsed().as_nanos() as f64 / 100.0;
        let n = ((100e6 / per.max(1.0)) as u64).max(10);
        let mut samples: Vec<f64> = (0..15)
            .map(|_| {
                let t = Instant::now();
                body(n);
                t.elapsed().as_nanos() as f64 / n as f64
            })
            .collect();
        samples.sort_by(f64::total_cmp);
        let median = samples[samples.len() / 2];
        println!("{name}: {median:.0} ns/iter");
        median
    }

    fn key(name: &str) -> NativeKey {
        NativeKey::legacy(
            &format!("qshm-bench-{name}-{}", std::process::id()),
            KeyType::Windows,
        )
    }

    /// The raw pair: a named semaphore taken and given back, as Qt's lock does.
    fn raw_pair(n: u64) {
        use windows_sys::Win32::Foundation::CloseHandle;
        use windows_sys::Win32::System::Threading::{
            CreateSemaphoreW, ReleaseSemaphore, WaitForSingleObject, INFINITE,
        };
        let name: Vec<u16> = format!("qshm_bench_raw_{}\0", std::process::id())
            .encode_utf16()
            .collect();
        // SAFETY: a named semaphore with default security; the name outlives the call.
        let sem = unsafe { CreateSemaphoreW(std::ptr::null(), 1, i32::MAX, name.as_ptr()) };
        assert!(!sem.is_null());
        for _ in 0..n {
            // SAFETY: waits on and releases the live handle created above.
            unsafe {
                WaitForSingleObject(sem, INFINITE);
                ReleaseSemaphore(sem, 1, std::ptr::null_mut());
            }
        }
        // SAFETY: closes the handle created above, once.
        unsafe { CloseHandle(sem) };
    }

    pub(super) fn run() {
        let raw = measure("raw WaitForSingleObject + ReleaseSemaphore", raw_pair);

        let k = key("lock");
        let mut shm = SharedMemory::with_native_key(k.clone());
        shm.create(4096, AccessMode::ReadWrite).unwrap();
        let lock = measure("qshm SharedMemory::lock() + drop", |n| {
            for _ in 0..n {
                drop(shm.lock().unwrap());
            }
        });

        let sem = SystemSemaphore::with_native_key(key("sem"), 1, SemaphoreMode::Create).unwrap();
        let counting = measure("qshm SystemSemaphore acquire + release(1)", |n| {
            for _ in 0..n {
                sem.acquire().unwrap();
                sem.release(1).unwrap();
            }
        });

        // The in-segment lock of a mapped file: one interlocked operation each way, no
        // system call (Windows refuses to truncate a mapped file: no size check).
        let mapped = qshm::mapped::FileOptions::new()
            .directory(std::env::temp_dir())
            .create_temporary(4096)
            .unwrap();
        let mapped_lock = measure("qshm mapped lock() + drop", |n| {
            for _ in 0..n {
                drop(mapped.lock().unwrap());
            }
        });
        drop(mapped);

        let life = key("life");
        let create = measure("qshm create(4096) + detach", |n| {
            for _ in 0..n {
                let mut s = SharedMemory::with_native_key(life.clone());
                s.create(4096, AccessMode::ReadWrite).unwrap();
                s.detach().unwrap();
            }
        });
        let attach = measure("qshm attach + detach (segment held elsewhere)", |n| {
            for _ in 0..n {
                let mut s = SharedMemory::with_native_key(k.clone());
                s.attach(AccessMode::ReadWrite).unwrap();
                s.detach().unwrap();
            }
        });
        println!();
        println!("lock + unlock / raw pair: {:.2}x", lock / raw);
        println!(
            "counting acquire + release / raw pair: {:.2}x",
            counting / raw
        );
        println!("mapped lock + unlock / raw pair: {:.4}x", mapped_lock / raw);
        println!("create + detach: {:.1} us", create / 1e3);
        println!("attach + detach: {:.1} us", attach / 1e3);
    }
}
