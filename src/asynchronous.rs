//! Futures of the locks, semaphores, queues and cells (feature `async`), for any executor:
//! no runtime dependency, and no thread per pending future.
//!
//! A lock or semaphore of another process has nothing a future can register with (Qt's
//! semaphores wake only threads blocked in the kernel), so a pending `lock_async` tries the
//! lock again after a backoff (50 µs, doubling up to 2 ms) that one process-wide timer
//! thread schedules; a try also recovers a holder that died, as `try_lock` does. Dropping
//! the future removes its timer entry: it holds nothing and leaves nothing registered.
//! The timer thread exists only while some future is pending (it ends 1 s after the last).
//!
//! Waits for a change ([`Notifier::changed`](crate::notify::Notifier::changed)) do better:
//! the kernel wakes them (one helper thread per notifier sleeps for all its futures).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Condvar, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::error::{ErrorKind, Result};

const FIRST: Duration = Duration::from_micros(50);
const MOST: Duration = Duration::from_millis(2);
const IDLE: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Timers {
    /// Due time and id → waker.
    due: BTreeMap<(Instant, u64), Waker>,
    /// Id → due time, to cancel.
    ids: HashMap<u64, Instant>,
    next_id: u64,
    running: bool,
}

struct Timer {
    state: Mutex<Timers>,
    cv: Condvar,
}

fn timer() -> &'static Timer {
    static TIMER: OnceLock<Timer> = OnceLock::new();
    TIMER.get_or_init(|| Timer {
        state: Mutex::new(Timers::default()),
        cv: Condvar::new(),
    })
}

impl Timer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Timers> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes `waker` at `at`; returns the entry's id.
    fn schedule(&'static self, at: Instant, waker: Waker) -> std::io::Result<u64> {
        let mut state = self.lock();
        state.next_id += 1;
        let id = state.next_id;
        state.due.insert((at, id), waker);
        state.ids.insert(id, at);
        if !state.running {
            std::thread::Builder::new()
                .name("qshm-async-timer".into())
                .spawn(move || self.run())?;
            state.running = true;
        }
        drop(state);
        self.cv.notify_one();
        Ok(id)
    }

    fn cancel(&self, id: u64) {
        let mut state = self.lock();
        if let Some(at) = state.ids.remove(&id) {
            state.due.remove(&(at, id));
        }
    }

    fn pending(&self) -> usize {
        self.lock().ids.len()
    }

    fn run(&self) {
        let mut state = self.lock();
        loop {
            let now = Instant::now();
            while let Some((&(at, id), _)) = state.due.first_key_value() {
                if at > now {
                    break;
                }
                let waker = state.due.remove(&(at, id)).expect("entry just seen");
                state.ids.remove(&id);
                waker.wake();
            }
            let wait = match state.due.first_key_value() {
                Some((&(at, _), _)) => at.saturating_duration_since(now),
                None => IDLE,
            };
            let (next, timed_out) = self
                .cv
                .wait_timeout(state, wait)
                .unwrap_or_else(|p| p.into_inner());
            state = next;
            if timed_out.timed_out() && state.due.is_empty() {
                state.running = false;
                return;
            }
        }
    }
}

/// How many lock, semaphore, queue and cell futures wait for their next try now (diagnostics; 0 once
/// every future finished or was dropped).
pub fn pending_retries() -> usize {
    timer().pending()
}

/// The state of one retrying future: its backoff and timer entry.
#[derive(Debug, Default)]
pub(crate) struct Retry {
    pause: Duration,
    entry: Option<u64>,
}

impl Retry {
    /// Tries `attempt`; while it says `Ok(None)` (not yet), schedules a wake-up and stays
    /// pending.
    pub(crate) fn poll<T>(
        &mut self,
        cx: &mut Context<'_>,
        attempt: impl FnOnce() -> Result<Option<T>>,
        label: &str,
    ) -> Poll<Result<T>> {
        if let Some(id) = self.entry.take() {
            timer().cancel(id);
        }
        match attempt() {
            Ok(None) => {}
            Ok(Some(done)) => return Poll::Ready(Ok(done)),
            Err(e) => return Poll::Ready(Err(e)),
        }
        self.pause = if self.pause.is_zero() {
            FIRST
        } else {
            (self.pause * 2).min(MOST)
        };
        match timer().schedule(Instant::now() + self.pause, cx.waker().clone()) {
            Ok(id) => {
                self.entry = Some(id);
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(crate::Error::new(
                ErrorKind::OutOfResources,
                crate::Operation::Lock,
                label.to_owned(),
            )
            .with_detail(format!("cannot start the thread that wakes futures: {e}")))),
        }
    }
}

impl Drop for Retry {
    fn drop(&mut self) {
        if let Some(id) = self.entry.take() {
            timer().cancel(id);
        }
    }
}

/// A future that retries `attempt` (a `try_lock`) until it stops saying `WouldBlock`.
pub(crate) fn retrying<'a, T: 'a>(
    label: String,
    mut attempt: impl FnMut() -> Result<T> + 'a,
) -> impl Future<Output = Result<T>> + 'a {
    retrying_until(label, move || match attempt() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(None),
        other => other.map(Some),
    })
}

/// A future that retries `attempt` until it gives a value (`Ok(Some)`) or an error.
pub(crate) fn retrying_until<'a, T: 'a>(
    label: String,
    mut attempt: impl FnMut() -> Result<Option<T>> + 'a,
) -> impl Future<Output = Result<T>> + 'a {
    let mut retry = Retry::default();
    std::future::poll_fn(move |cx| retry.poll(cx, &mut attempt, &label))
}
