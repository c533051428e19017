//! Random numbers for temporary names and liveness slots, from std's per-process random
//! keys (`RandomState`, seeded from the OS): no crate, no system call after the first.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// 64 random bits, different on every call.
pub(crate) fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// Random numbers below `n` (a different sequence on each call and in each thread).
pub(crate) fn random_below(n: u32) -> impl Iterator<Item = u32> {
    let mut seed = random_u64() | 1;
    std::iter::from_fn(move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        Some((seed % u64::from(n)) as u32)
    })
}
