//! Change notification: a writer says "I changed it", readers wait for a change newer than
//! the one they last saw, with a timeout, without polling and without missing a change made
//! between their read and their wait.
//!
//! A [`Notifier`] is a *change counter* in shared memory and a count of its sleepers:
//!
//! * on a [`MappedSegment`](crate::MappedSegment) it lives in the segment's header (offsets
//!   88 and 92 of `struct qshm_header` in `include/qshm.h`, so C and C++ programs notify and
//!   wait too), and costs nothing until used;
//! * on a Qt-compatible [`SharedMemory`](crate::SharedMemory) segment, which has no room of
//!   ours, it is opt-in: [`SharedMemory::notifier`](crate::SharedMemory::notifier) opens (or
//!   makes) a *companion*, a one-page file `/dev/shm/qshm-notify-<hash of the native key>`
//!   that Qt ignores, removed with the segment by qshm's last detach (and by `qshm clean`
//!   when a Qt process was the last). A segment nobody asks a notifier for has none.
//!
//! [`notify`](Notifier::notify) increments the counter and, only when someone sleeps, wakes
//! every sleeper: a shared futex on Linux (it works across PID namespaces, since the kernel
//! keys it by the page, not by a process id); on Windows a named semaphore beside the
//! counter, released once per sleeper. [`wait`](Notifier::wait) returns as soon as
//! the counter differs from the value the caller last saw, which is why no change is missed:
//!
//! ```
//! # #[cfg(target_os = "linux")] fn main() -> qshm::Result<()> {
//! use std::time::Duration;
//! let seg = qshm::MappedSegment::create_temporary(64)?;
//! let changes = seg.notifier()?;
//! let seen = changes.current();           // read the data, then remember what you saw
//! changes.notify()?;                       // (another process, after writing)
//! let now = changes.wait(seen, Some(Duration::from_secs(1)))?;
//! assert_ne!(now, seen);
//! # Ok(()) }
//! # #[cfg(not(target_os = "linux"))] fn main() {}
//! ```
//!
//! The counter is 32 bits and wraps; a waiter that misses exactly 2^32 changes while it
//! is away would not notice, which no real program does. A process killed while it sleeps
//! leaves the sleeper count one too high: later notifies then make a (harmless, ~1 µs) wake
//! call although nobody sleeps.
//!
//! A Qt program that writes the data without notifying does not break a waiter: the waiter
//! simply times out.
//!
//! With the `async` feature, `Notifier::changed` is a future (any executor; no runtime
//! dependency): any number of pending futures share one helper thread per notifier, which
//! exists only while some future is pending. A blocking wait is cancelled from another
//! thread with a [`CancelToken`].

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Operation, Result};
use crate::sys::notify::ChangeWords;
use crate::sys::wait_word::Woke;

/// The longest single sleep of a cancellable wait: the bound on how late it notices a
/// cancel whose wake came just before it fell asleep (usually it is woken at once).
const CANCEL_SLICE: Duration = Duration::from_millis(100);

/// How long a waiter on a sealed segment (which nothing can change, nor count sleepers)
/// sleeps at a time without a timeout.
const SLICE: Duration = Duration::from_secs(1);

/// Where the companion of the Qt-compatible segment `key` lives (whether or not it exists):
/// `/dev/shm/qshm-notify-` and 24 hexadecimal digits of the SHA-1 of the key's type and
/// native name. The companion holds `struct qshm_notify` (`qshm.h`).
#[cfg(qshm_linux)]
pub fn companion_path(key: &crate::NativeKey) -> std::path::PathBuf {
    crate::sys::notify::companion_path(&crate::key::companion_name(key))
}

/// The change counter of a segment: [`notify`](Notifier::notify), [`wait`](Notifier::wait).
///
/// Cheap to clone (clones share one mapping of the counter); `Send` and `Sync`; lives
/// independently of the segment object it came from.
#[derive(Clone)]
pub struct Notifier {
    shared: Arc<Shared>,
}

struct Shared {
    words: ChangeWords,
    label: Arc<str>,
    /// Pending futures (`changed`), and whether the helper thread that wakes them runs.
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    watch: Mutex<Watch>,
}

#[derive(Default)]
#[cfg_attr(not(feature = "async"), allow(dead_code))]
struct Watch {
    wakers: HashMap<u64, std::task::Waker>,
    next_id: u64,
    running: bool,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("segment", &self.shared.label)
            .field("current", &self.current())
            .finish()
    }
}

impl Notifier {
    pub(crate) fn new(words: ChangeWords, label: Arc<str>) -> Notifier {
        Notifier {
            shared: Arc::new(Shared {
                words,
                label,
                watch: Mutex::new(Watch::default()),
            }),
        }
    }

    /// The change counter now. Read it *before* reading the data it guards; then
    /// [`wait`](Notifier::wait) with it returns at once if a change came in between.
    pub fn current(&self) -> u32 {
        self.shared.words.changes().load(Ordering::Acquire)
    }

    /// Announces a change: increments the counter and wakes every waiter, in every process.
    /// Returns the new counter. Costs one atomic increment when nobody waits.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::PermissionDenied`] on a segment nobody may write (a write-sealed memfd).
    pub fn notify(&self) -> Result<u32> {
        let words = &self.shared.words;
        if !words.writable() {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                Operation::Notify,
                Arc::clone(&self.shared.label),
            )
            .with_detail("the segment is sealed against writing: nothing can change"));
        }
        // SeqCst pairs with the waiter's increment of the sleeper count and its re-read of
        // the counter: either this load sees the sleeper, or the sleeper sees the new value.
        let now = words
            .changes()
            .fetch_add(1, Ordering::SeqCst)
            .wrapping_add(1);
        if words.waiters().load(Ordering::SeqCst) != 0 {
            words.wake_all().map_err(|e| self.labelled(e))?;
        }
        Ok(now)
    }

    /// Waits until the counter differs from `seen` (a value [`current`](Notifier::current)
    /// or an earlier wait returned), at most `timeout` (`None`: for ever). Returns the
    /// counter then.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Timeout`] when `timeout` passed without a change.
    pub fn wait(&self, seen: u32, timeout: Option<Duration>) -> Result<u32> {
        self.wait_inner(seen, timeout, None)
    }

    /// [`wait`](Notifier::wait), which [`CancelToken::cancel`] (from any thread) ends with
    /// [`ErrorKind::Cancelled`].
    pub fn wait_cancellable(
        &self,
        seen: u32,
        timeout: Option<Duration>,
        cancel: &CancelToken,
    ) -> Result<u32> {
        cancel.register(&self.shared);
        let result = self.wait_inner(seen, timeout, Some(cancel));
        cancel.unregister(&self.shared);
        result
    }

    fn wait_inner(
        &self,
        seen: u32,
        timeout: Option<Duration>,
        cancel: Option<&CancelToken>,
    ) -> Result<u32> {
        let words = &self.shared.words;
        let deadline = timeout.map(|t| Instant::now().checked_add(t));
        loop {
            let now = words.changes().load(Ordering::Acquire);
            if now != seen {
                return Ok(now);
            }
            if cancel.is_some_and(CancelToken::is_cancelled) {
                return Err(self.error(ErrorKind::Cancelled, "cancelled by a CancelToken"));
            }
            let left = match deadline {
                // A cancellable wait sleeps in slices: a cancel's wake could come between
                // its check of the token and its sleep.
                None | Some(None) if cancel.is_some() => Some(CANCEL_SLICE),
                None | Some(None) => None,
                Some(Some(deadline)) => Some({
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(self.error(
                            ErrorKind::Timeout,
                            format!("no change within {:?}", timeout.unwrap_or_default()),
                        ));
                    }
                    if cancel.is_some() {
                        left.min(CANCEL_SLICE)
                    } else {
                        left
                    }
                }),
            };
            self.sleep(seen, left)?;
        }
    }

    /// One sleep of at most `left` (`None`: until woken) while the counter is `seen`,
    /// counted as a sleeper.
    fn sleep(&self, seen: u32, left: Option<Duration>) -> Result<Woke> {
        let words = &self.shared.words;
        if !words.writable() {
            // Nothing can change a sealed segment, and its words cannot count a sleeper.
            std::thread::sleep(left.unwrap_or(SLICE));
            return Ok(Woke::TimedOut);
        }
        words.waiters().fetch_add(1, Ordering::SeqCst);
        let woke = if words.changes().load(Ordering::SeqCst) == seen {
            words.sleep(seen, left)
        } else {
            Ok(Woke::Early)
        };
        words.waiters().fetch_sub(1, Ordering::SeqCst);
        woke.map_err(|e| self.labelled(e))
    }

    /// The name of the segment, as errors show it.
    pub fn label(&self) -> &str {
        &self.shared.label
    }

    fn error(&self, kind: ErrorKind, detail: impl Into<std::borrow::Cow<'static, str>>) -> Error {
        Error::new(kind, Operation::Wait, Arc::clone(&self.shared.label)).with_detail(detail)
    }

    fn labelled(&self, e: Error) -> Error {
        e.with_key(Arc::clone(&self.shared.label))
    }
}

/// Ends [`Notifier::wait_cancellable`] calls from another thread.
///
/// ```
/// # #[cfg(target_os = "linux")] fn main() -> qshm::Result<()> {
/// let seg = qshm::MappedSegment::create_temporary(64)?;
/// let changes = seg.notifier()?;
/// let cancel = qshm::notify::CancelToken::new();
/// let c = cancel.clone();
/// let seen = changes.current();
/// let waiter = std::thread::spawn(move || changes.wait_cancellable(seen, None, &c));
/// std::thread::sleep(std::time::Duration::from_millis(20));
/// cancel.cancel();
/// assert_eq!(waiter.join().unwrap().unwrap_err().kind(), qshm::ErrorKind::Cancelled);
/// # Ok(()) }
/// # #[cfg(not(target_os = "linux"))] fn main() {}
/// ```
#[derive(Clone, Default)]
pub struct CancelToken {
    inner: Arc<CancelInner>,
}

#[derive(Default)]
struct CancelInner {
    cancelled: AtomicBool,
    /// The notifiers its waits sleep on, to wake them.
    waiting: Mutex<Vec<Weak<Shared>>>,
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl CancelToken {
    /// A token not cancelled yet.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Cancels every wait using this token, now and later: they return
    /// [`ErrorKind::Cancelled`]. Other waiters of the same segments wake too, find nothing
    /// changed, and sleep again.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        let waiting = self.inner.waiting.lock().unwrap_or_else(|p| p.into_inner());
        for shared in waiting.iter().filter_map(Weak::upgrade) {
            let _ = shared.words.wake_all();
        }
    }

    /// Whether [`cancel`](CancelToken::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    fn register(&self, shared: &Arc<Shared>) {
        let mut waiting = self.inner.waiting.lock().unwrap_or_else(|p| p.into_inner());
        waiting.retain(|w| w.strong_count() > 0);
        waiting.push(Arc::downgrade(shared));
    }

    fn unregister(&self, shared: &Arc<Shared>) {
        let mut waiting = self.inner.waiting.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = waiting
            .iter()
            .position(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(shared)))
        {
            waiting.swap_remove(i);
        }
    }
}

#[cfg(feature = "async")]
mod future {
    use super::*;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// How long the helper thread sleeps before it looks whether futures are still pending.
    const WATCH_SLICE: Duration = Duration::from_millis(100);

    impl Notifier {
        /// A future that resolves to the counter once it differs from `seen`
        /// ([`wait`](Notifier::wait) without a thread). Dropping it cancels it and leaves
        /// nothing registered. For a timeout, race it with your runtime's timer.
        pub fn changed(&self, seen: u32) -> Changed {
            Changed {
                notifier: self.clone(),
                seen,
                id: None,
            }
        }

        /// How many [`changed`](Notifier::changed) futures of this notifier (and its clones)
        /// are pending: registered to be woken.
        pub fn pending_futures(&self) -> usize {
            self.shared.watch().wakers.len()
        }
    }

    impl Shared {
        fn watch(&self) -> std::sync::MutexGuard<'_, Watch> {
            self.watch.lock().unwrap_or_else(|p| p.into_inner())
        }
    }

    /// The future of [`Notifier::changed`].
    #[must_use = "futures do nothing unless polled"]
    #[derive(Debug)]
    pub struct Changed {
        notifier: Notifier,
        seen: u32,
        id: Option<u64>,
    }

    impl Future for Changed {
        type Output = Result<u32>;

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<u32>> {
            let now = self.notifier.current();
            if now != self.seen {
                self.unregister();
                return Poll::Ready(Ok(now));
            }
            let shared = Arc::clone(&self.notifier.shared);
            let start_thread = {
                let mut watch = shared.watch();
                let id = *self.id.get_or_insert_with(|| {
                    watch.next_id += 1;
                    watch.next_id
                });
                watch.wakers.insert(id, cx.waker().clone());
                !std::mem::replace(&mut watch.running, true)
            };
            if start_thread {
                let for_thread = Arc::clone(&shared);
                let seen = self.seen;
                let spawned = std::thread::Builder::new()
                    .name("qshm-notify".into())
                    .spawn(move || watch_thread(&for_thread, seen));
                if let Err(e) = spawned {
                    shared.watch().running = false;
                    self.unregister();
                    return Poll::Ready(Err(self.notifier.error(
                        ErrorKind::OutOfResources,
                        format!("cannot start the thread that wakes futures: {e}"),
                    )));
                }
            }
            // A change between the first read and the registration is seen here.
            let now = self.notifier.current();
            if now != self.seen {
                self.unregister();
                return Poll::Ready(Ok(now));
            }
            Poll::Pending
        }
    }

    impl Changed {
        fn unregister(&mut self) {
            if let Some(id) = self.id.take() {
                self.notifier.shared.watch().wakers.remove(&id);
            }
        }
    }

    impl Drop for Changed {
        fn drop(&mut self) {
            self.unregister();
        }
    }

    /// Sleeps on the counter as one sleeper for all pending futures; wakes them all at each
    /// change; ends when none is left.
    ///
    /// `seen` is the value the thread compares with: first the `seen` of the future that
    /// started it, then the value it last woke everyone for, never one read later. A
    /// value read at the top of each round instead could already include a change that
    /// no registered future has been woken for, which would then never be.
    fn watch_thread(shared: &Arc<Shared>, mut seen: u32) {
        let notifier = Notifier {
            shared: Arc::clone(shared),
        };
        loop {
            {
                let mut watch = shared.watch();
                if watch.wakers.is_empty() {
                    watch.running = false;
                    return;
                }
            }
            if notifier.sleep(seen, Some(WATCH_SLICE)).is_err() {
                // The wait itself failed: do not spin; the change check below still runs.
                std::thread::sleep(WATCH_SLICE);
            }
            let now = notifier.current();
            if now != seen {
                // Every future registered now was registered with a value read before
                // `now`; each re-polls and returns or registers again.
                let wakers: Vec<_> = shared.watch().wakers.drain().map(|(_, w)| w).collect();
                for w in wakers {
                    w.wake();
                }
                seen = now;
            }
        }
    }
}

#[cfg(feature = "async")]
pub use future::Changed;
