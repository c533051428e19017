/*
 * qshm.h — the layout of qshm's mapped segments (qshm::mapped::MappedSegment), version 3,
 * its lock protocol and its change notification, for C and C++ programs (a Qt program mapping the file with
 * QFile::map included) that share a segment with Rust processes.
 *
 * Linux only; GCC or Clang (uses __atomic builtins); compile with -pthread.
 * SPDX-License-Identifier: MIT OR Apache-2.0
 *
 * What it needs from the C library: POSIX.1-2008 (O_CLOEXEC, kill) and syscall() (futex,
 * gettid), which glibc and musl declare only with _DEFAULT_SOURCE (or _GNU_SOURCE, or musl's
 * _BSD_SOURCE). The header defines no feature macro itself (that would be too late after
 * another system header, and would change what the including program sees):
 *   - C with the compiler's default dialect (gnu99/gnu11/gnu17...) and C++ (g++ and
 *     clang++ define _GNU_SOURCE): nothing to do;
 *   - C with -std=c99/c11/c17 (strict ISO), or with _POSIX_C_SOURCE/_XOPEN_SOURCE chosen
 *     by hand: define _DEFAULT_SOURCE (or _GNU_SOURCE) before the first #include, e.g.
 *     `cc -std=c11 -D_DEFAULT_SOURCE`; otherwise including this header is an #error that
 *     says so. C++ needs C++11 or later.
 * ci/header.sh checks C99, C11 and C17 (with -Wall -Wextra -Wpedantic -Werror, with
 * _DEFAULT_SOURCE and with _GNU_SOURCE), the default dialect, C++11 and C++17.
 *
 * A segment is a file (on tmpfs: /dev/shm, $XDG_RUNTIME_DIR) or a memfd:
 *
 *   offset 0            struct qshm_header (96 bytes), zero-padded to header_size
 *   offset header_size  the data area, data_size bytes
 *
 * All fields are in native byte order. Readers must check magic, version, byte_order,
 * header_size and that the file is at least header_size + data_size bytes long
 * (qshm_check does), and must map it MAP_SHARED with PROT_READ|PROT_WRITE (the lock word is
 * written even by readers).
 *
 * The lock (the 64-bit word at offset 64):
 *
 *   bits  0..29  owner's thread id (gettid()), 0 when free
 *   bit   30     reserved (0)
 *   bit   31     QSHM_LOCK_WAITERS: someone may sleep in FUTEX_WAIT on the low 32 bits
 *   bit   63     QSHM_LOCK_TOKEN: bits 32..62 name the owner process's liveness slot
 *   bits 32..62  with QSHM_LOCK_TOKEN: the slot number; without: the owner's tag, the low
 *                31 bits of the owning thread's start time (field 22 of
 *                /proc/thread-self/stat, clock ticks since boot), 0 if unknown
 *
 *   lock:    CAS(0 -> me). When held: spin a little, then set WAITERS and FUTEX_WAIT
 *            (shared, not private) on the low half with a timeout; a waiter that has slept
 *            takes a free lock as me|WAITERS. On each timeout, check the owner; if it is
 *            dead, CAS(observed -> me|WAITERS) takes the lock over (exactly one waiter
 *            succeeds), sets QSHM_STATE_INCONSISTENT in `state` and increments `generation`.
 *   unlock:  CAS(me -> 0); if WAITERS was set, CAS(me|WAITERS -> 0) and FUTEX_WAKE 1.
 *   After taking the lock, a set QSHM_STATE_INCONSISTENT means a holder died with the data
 *   possibly half-written: qshm_lock returns QSHM_OWNER_DIED until someone calls
 *   qshm_mark_consistent.
 *
 * Whether an owner is dead:
 *   - a token owner (a qshm process) holds an open-file-description read lock
 *     (F_OFD_SETLK) on byte QSHM_SLOT_BASE + slot of the segment file for as long as it
 *     lives; the kernel drops it when the process dies, in any namespace. It is dead when
 *     F_OFD_GETLK (type F_WRLCK) on that byte reports F_UNLCK, asked through a descriptor
 *     that this process opened itself (the kernel ignores the asking description's own
 *     locks, so an inherited or received descriptor could hide the owner). qshm_lock_fd
 *     and qshm_trylock_fd take such a descriptor; without one (fd < 0), a token owner is
 *     taken for alive, and a dead one is waited for.
 *   - a tag owner (a program using this header, which names itself by thread id) is dead
 *     when /proc/<tid>/task/<tid>/stat is gone (kill(tid, 0) fails with ESRCH), shows a
 *     zombie, or has another start time. Thread ids mean something only in one PID
 *     namespace: programs using this header must run in the PID (and time) namespace of
 *     the segment's creator, which `pid_ns` and `time_ns` record; qshm processes judge tag
 *     owners only there and take them for alive anywhere else.
 *
 * File segments: every user holds flock(fd, LOCK_SH) while it has the file mapped; if
 * `flags & QSHM_FLAG_REMOVE_ON_LAST_DETACH`, a user that detaches tries
 * flock(fd, LOCK_EX|LOCK_NB) and, on success, unlinks the file (it was the last one).
 * A program that does not take part (does not hold LOCK_SH) may see the file removed while
 * it still maps it; its mapping stays valid.
 *
 * The record-lock protocol (`flags & QSHM_FLAG_RECORD_LOCKS`): segments made by qshm's
 * macOS, iOS and FreeBSD builds (and by Linux's portable-Unix test mode), where there are
 * no open-file-description locks and flock conflicts with record locks. Users hold a
 * classic read lock (F_SETLK, F_RDLCK) on byte 56 instead of flock; a token owner's slot
 * is a classic write lock on QSHM_SLOT_BASE + slot, asked with F_GETLK; each process has
 * each file open through one descriptor only (closing any descriptor of a file drops all
 * of the process's record locks on it); thread bits number the threads of the process
 * (from 1); waiters poll. The functions below implement the Linux protocol only, so
 * qshm_check refuses such a segment (-EPROTONOSUPPORT): the two protocols do not see each
 * other's users.
 *
 * Change notification (the 32-bit words at offsets 88 and 92, since version 3):
 *
 *   `changes` counts announced changes (wrapping); `change_waiters` counts sleepers.
 *   notify:  fetch_add(changes, 1) (seq_cst); if change_waiters != 0 (seq_cst load),
 *            FUTEX_WAKE (shared) on `changes`, all sleepers.
 *   wait:    with `seen`, the value of `changes` read *before* the data it guards:
 *            while changes == seen: fetch_add(change_waiters, 1) (seq_cst); if changes is
 *            still seen (seq_cst load), FUTEX_WAIT (shared) on `changes` for `seen`;
 *            fetch_sub(change_waiters, 1).
 *   The seq_cst pair (a notifier's increment then load, a waiter's increment then load)
 *   guarantees that either the notifier sees the sleeper and wakes it, or the sleeper sees
 *   the new count and does not sleep: no wake-up is lost. A sleeper killed while counted
 *   leaves change_waiters one too high, which only costs later notifiers a wake call.
 *   qshm_notify / qshm_wait_change below. The same two words, at offsets 16 and 20 of a
 *   one-page file (struct qshm_notify, magic "QSHM\0NTF"), are the *companion* that
 *   qshm::SharedMemory::notifier makes for a Qt-compatible segment:
 *   /dev/shm/qshm-notify-<first 24 hex digits of the SHA-1 of "<type>:<native key>">,
 *   where <type> is the decimal value of Qt's QNativeIpcKey::Type (SystemV 0x51 = 81,
 *   PosixRealtime 0x100 = 256); it is removed with the segment by qshm's last detach.
 *   On Windows, sleepers wait on a named semaphore, "Local\qshm_notify_<volume serial,
 *   8 lowercase hex>_<file index, 16 lowercase hex>_wake" for a mapped file (created or
 *   opened with CreateSemaphoreW, initial 0, maximum 0x7fffffff), instead of the futex;
 *   notify releases it change_waiters times when that is not 0.
 *
 * Version 1 (earlier builds of qshm) named every owner by thread id; version-1 segments
 * are refused by later readers, and the reverse. Version 3 added the change counter: a
 * version-3 reader also reads version 2 (whose header, at least 128 bytes, has the two
 * words, zero), while a version-2 reader refuses version 3.
 *
 * WINDOWS. The functions below are for Linux. On Windows qshm uses the same file layout
 * (version 3, header_size 4096, pid_ns and time_ns 0) and the same lock word and protocol,
 * with these platform parts, which a C or C++ program must follow to take part:
 *   - open the file with GENERIC_READ|GENERIC_WRITE, sharing FILE_SHARE_READ|
 *     FILE_SHARE_WRITE|FILE_SHARE_DELETE, map it whole (CreateFileMappingW PAGE_READWRITE,
 *     MapViewOfFile FILE_MAP_READ|FILE_MAP_WRITE), and access the lock word with
 *     interlocked 64-bit operations;
 *   - thread bits (0..29): a number per thread of the process (from 1; not the Windows
 *     thread id), the same for every handle the process has to the file;
 *   - liveness: the process locks one byte at offset 2^40 + slot (slot < 2^30, random)
 *     with LockFileEx(LOCKFILE_EXCLUSIVE_LOCK|LOCKFILE_FAIL_IMMEDIATELY) through a handle
 *     it keeps open while it uses the file, and names it with QSHM_LOCK_TOKEN | slot << 32.
 *     A waiter judges a token owner dead when it can lock that byte itself (and then
 *     unlocks it at once); ERROR_LOCK_VIOLATION, or any other answer, means alive. Owners
 *     without QSHM_LOCK_TOKEN are never judged dead on Windows;
 *   - sleeping: instead of a futex, an auto-reset event named
 *     "Local\qshm_mapped_<volume serial, 8 lowercase hex digits>_<file index, 16 lowercase
 *     hex digits>" (GetFileInformationByHandle), created or opened with CreateEventW; a
 *     waiter sets WAITERS and waits on it at most 16 ms at a time; an unlock that clears
 *     WAITERS calls SetEvent;
 *   - removal: a user that detaches from a file flagged QSHM_FLAG_REMOVE_ON_LAST_DETACH
 *     closes its handles and opens the file sharing nothing (DELETE access); if that
 *     succeeds it was the last, and it deletes the file (FILE_DISPOSITION_INFO).
 */
#ifndef QSHM_H
#define QSHM_H

/* glibc and musl leave syscall() undeclared in these cases (see above). */
#if !defined(__cplusplus) && !defined(_GNU_SOURCE) && !defined(_DEFAULT_SOURCE) &&      \
    !defined(_BSD_SOURCE) &&                                                             \
    (defined(__STRICT_ANSI__) || defined(_POSIX_C_SOURCE) || defined(_POSIX_SOURCE) ||  \
     defined(_XOPEN_SOURCE) || defined(_ISOC99_SOURCE) || defined(_ISOC11_SOURCE))
#error "qshm.h needs syscall() and O_CLOEXEC: define _DEFAULT_SOURCE (or _GNU_SOURCE) before the first #include, e.g. cc -std=c11 -D_DEFAULT_SOURCE"
#endif

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Compile-time checks of the layouts below, in C99 (which has no _Static_assert, but GCC
 * and Clang accept it there with __extension__), C11 and C++11. */
#ifdef __cplusplus
#define QSHM_LAYOUT_ASSERT(cond, what) static_assert(cond, what " layout")
#else
#define QSHM_LAYOUT_ASSERT(cond, what) __extension__ _Static_assert(cond, what " layout")
#endif

#define QSHM_MAGIC "QSHM\0SEG" /* 8 bytes, the NUL included */
#define QSHM_VERSION 3u
#define QSHM_OLDEST_VERSION 2u /* the oldest layout version this header reads */
#define QSHM_BYTE_ORDER 0x01020304u
#define QSHM_FLAG_REMOVE_ON_LAST_DETACH 1u
#define QSHM_FLAG_RECORD_LOCKS 2u /* another protocol (see below): qshm_check refuses it */
#define QSHM_STATE_INCONSISTENT 1u
#define QSHM_LOCK_TID_MASK 0x3fffffffull
#define QSHM_LOCK_WAITERS 0x80000000ull
#define QSHM_LOCK_TOKEN 0x8000000000000000ull
#define QSHM_LOCK_TAG_MASK 0x7fffffffull
#define QSHM_SLOT_BASE (1L << 20)
#define QSHM_SLOTS (1u << 30)
#ifdef F_OFD_GETLK
#define QSHM__OFD_GETLK F_OFD_GETLK
#else
#define QSHM__OFD_GETLK 36 /* Linux's value; <fcntl.h> defines it only with _GNU_SOURCE */
#endif

/* Return values of qshm_lock / qshm_trylock besides 0 (taken) and -errno. */
#define QSHM_OWNER_DIED 1

struct qshm_header {
    unsigned char magic[8];   /*  0: QSHM_MAGIC */
    uint32_t version;         /*  8: QSHM_VERSION */
    uint32_t header_size;     /* 12: offset of the data area (a multiple of 64, >= 88) */
    uint64_t data_size;       /* 16: size of the data area */
    uint32_t flags;           /* 24: QSHM_FLAG_* */
    uint32_t byte_order;      /* 28: QSHM_BYTE_ORDER */
    uint64_t pid_ns;          /* 32: creator's PID namespace inode, 0 if unknown */
    uint64_t time_ns;         /* 40: creator's time namespace inode, 0 if unknown */
    uint32_t layout_version;  /* 48: layout stamp: the application's version (0: none) */
    uint32_t reserved0;
    uint64_t layout_hash;     /* 56: layout stamp: FNV-1a 64 of (size, align as 8 bytes little
                                 endian each, then the type's name); 0 with version 0: none */
    uint64_t lock;            /* 64: the lock word (atomic) */
    uint32_t state;           /* 72: QSHM_STATE_* (atomic, changed under the lock) */
    uint32_t reserved1;
    uint64_t generation;      /* 80: take-overs from dead holders (atomic) */
    uint32_t changes;         /* 88: announced changes, wrapping (atomic; the futex word) */
    uint32_t change_waiters;  /* 92: sleepers waiting for a change (atomic) */
};

/* The companion of a Qt-compatible segment (see "Change notification" above). */
#define QSHM_NOTIFY_MAGIC "QSHM\0NTF"
struct qshm_notify {
    unsigned char magic[8];   /*  0: QSHM_NOTIFY_MAGIC */
    uint32_t reserved[2];
    uint32_t changes;         /* 16 */
    uint32_t change_waiters;  /* 20 */
};

QSHM_LAYOUT_ASSERT(sizeof(struct qshm_header) == 96, "qshm_header");
QSHM_LAYOUT_ASSERT(offsetof(struct qshm_header, changes) == 88, "qshm_header");
QSHM_LAYOUT_ASSERT(offsetof(struct qshm_notify, changes) == 16, "qshm_notify");
QSHM_LAYOUT_ASSERT(offsetof(struct qshm_header, lock) == 64, "qshm_header");
QSHM_LAYOUT_ASSERT(offsetof(struct qshm_header, layout_hash) == 56, "qshm_header");

/* Checks a mapped header against the size of the file it came from.
 * Returns 0, -EINVAL (not a qshm segment / corrupt), -EPROTONOSUPPORT (other version or
 * byte order) or -EFBIG (the file is smaller than the header claims). */
static inline int qshm_check(const void *map, uint64_t file_size)
{
    const struct qshm_header *h = (const struct qshm_header *)map;
    if (file_size < sizeof(struct qshm_header))
        return -EFBIG;
    if (memcmp(h->magic, QSHM_MAGIC, 8) != 0)
        return -EINVAL;
    if (h->byte_order != QSHM_BYTE_ORDER || h->version < QSHM_OLDEST_VERSION ||
        h->version > QSHM_VERSION || (h->flags & QSHM_FLAG_RECORD_LOCKS))
        return -EPROTONOSUPPORT;
    if (h->header_size < sizeof(struct qshm_header) || h->header_size % 64 != 0 ||
        h->header_size > (1u << 20) || h->data_size == 0)
        return -EINVAL;
    if (h->data_size > UINT64_MAX - h->header_size ||
        file_size < (uint64_t)h->header_size + h->data_size)
        return -EFBIG;
    return 0;
}

/* The data area of a checked segment. */
static inline void *qshm_data(struct qshm_header *h)
{
    return (unsigned char *)h + h->header_size;
}

/* ---- internals ----------------------------------------------------------------------- */

static volatile uint32_t qshm__fork_generation __attribute__((unused)) = 1;
static pthread_once_t qshm__once __attribute__((unused)) = PTHREAD_ONCE_INIT;
static __thread uint32_t qshm__tls_generation __attribute__((unused));
static __thread uint64_t qshm__tls_id __attribute__((unused));

static inline void qshm__after_fork(void)
{
    __atomic_fetch_add(&qshm__fork_generation, 1, __ATOMIC_RELAXED);
}

static inline void qshm__register_atfork(void)
{
    pthread_atfork(NULL, NULL, qshm__after_fork);
}

/* Reads a /proc stat file: state (field 3) and the low 31 bits of starttime (field 22).
 * Returns 0, or -errno. */
static inline int qshm__read_stat(const char *path, char *state, uint32_t *start_tag)
{
    char buf[1024];
    ssize_t len = 0, n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    while (len < (ssize_t)sizeof(buf) - 1 &&
           (n = read(fd, buf + len, sizeof(buf) - 1 - (size_t)len)) > 0)
        len += n;
    close(fd);
    buf[len] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -EINVAL;
    p++;
    unsigned long long start = 0;
    char st = 0;
    /* fields 3..22 */
    if (sscanf(p, " %c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu",
               &st, &start) != 2)
        return -EINVAL;
    *state = st;
    *start_tag = (uint32_t)(start & QSHM_LOCK_TAG_MASK);
    return 0;
}

/* This thread's identity in the lock word (cached; recomputed after fork). */
static inline uint64_t qshm__self_id(void)
{
    uint32_t gen = __atomic_load_n(&qshm__fork_generation, __ATOMIC_RELAXED);
    if (__builtin_expect(qshm__tls_generation == gen, 1))
        return qshm__tls_id;
    pthread_once(&qshm__once, qshm__register_atfork);
    uint64_t tid = (uint64_t)syscall(SYS_gettid) & QSHM_LOCK_TID_MASK;
    char state;
    uint32_t tag = 0;
    if (qshm__read_stat("/proc/thread-self/stat", &state, &tag) != 0)
        tag = 0;
    qshm__tls_id = ((uint64_t)tag << 32) | tid;
    qshm__tls_generation = __atomic_load_n(&qshm__fork_generation, __ATOMIC_RELAXED);
    return qshm__tls_id;
}

/* Whether the owner encoded in `word` is certainly gone; `fd`: a descriptor of the segment
 * file this process opened itself, or -1. */
static inline int qshm__owner_dead(uint64_t word, int fd)
{
    int tid = (int)(word & QSHM_LOCK_TID_MASK);
    if (tid == 0)
        return 0;
    if (word & QSHM_LOCK_TOKEN) {
        struct flock fl;
        if (fd < 0)
            return 0;
        memset(&fl, 0, sizeof(fl));
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        fl.l_start = QSHM_SLOT_BASE + (off_t)((word >> 32) % QSHM_SLOTS);
        fl.l_len = 1;
        return fcntl(fd, QSHM__OFD_GETLK, &fl) == 0 && fl.l_type == F_UNLCK;
    }
    uint32_t tag = (uint32_t)((word >> 32) & QSHM_LOCK_TAG_MASK);
    char path[64], state;
    uint32_t start;
    snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", tid, tid);
    if (qshm__read_stat(path, &state, &start) == 0)
        return state == 'Z' || state == 'X' || state == 'x' || (tag != 0 && start != tag);
    return kill(tid, 0) == -1 && errno == ESRCH;
}

static inline uint32_t *qshm__futex_word(struct qshm_header *h)
{
    unsigned char *p = (unsigned char *)&h->lock;
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    p += 4;
#endif
    return (uint32_t *)p;
}

static inline int qshm__acquired(struct qshm_header *h, int took_over)
{
    if (took_over) {
        __atomic_fetch_or(&h->state, QSHM_STATE_INCONSISTENT, __ATOMIC_RELAXED);
        __atomic_fetch_add(&h->generation, 1, __ATOMIC_RELAXED);
        return QSHM_OWNER_DIED;
    }
    return (__atomic_load_n(&h->state, __ATOMIC_RELAXED) & QSHM_STATE_INCONSISTENT)
               ? QSHM_OWNER_DIED
               : 0;
}

static inline int qshm__take_over(struct qshm_header *h, uint64_t observed, uint64_t me)
{
    return __atomic_compare_exchange_n(&h->lock, &observed, me | QSHM_LOCK_WAITERS, 0,
                                       __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

/* `poll`: do not wait. */
static inline int qshm__lock_slow(struct qshm_header *h, int fd, uint64_t me, int poll)
{
    int spins = 0, slept = 0;
    long nap_ns = 1000000; /* 1 ms, doubling to 16 ms */
    for (;;) {
        uint64_t cur = __atomic_load_n(&h->lock, __ATOMIC_RELAXED);
        if ((cur & QSHM_LOCK_TID_MASK) == 0) {
            uint64_t want = slept ? (me | QSHM_LOCK_WAITERS) : me;
            if (__atomic_compare_exchange_n(&h->lock, &cur, want, 1, __ATOMIC_ACQUIRE,
                                            __ATOMIC_RELAXED))
                return qshm__acquired(h, 0);
            continue;
        }
        if ((cur & ~QSHM_LOCK_WAITERS) == me)
            return -EDEADLK;
        if (poll) {
            if (qshm__owner_dead(cur, fd) && qshm__take_over(h, cur, me))
                return qshm__acquired(h, 1);
            if ((__atomic_load_n(&h->lock, __ATOMIC_RELAXED) & QSHM_LOCK_TID_MASK) == 0)
                continue;
            return -EBUSY;
        }
        if (spins < 100 && !(cur & QSHM_LOCK_WAITERS)) {
            spins++;
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
            continue;
        }
        if (!(cur & QSHM_LOCK_WAITERS)) {
            uint64_t expected = cur;
            if (!__atomic_compare_exchange_n(&h->lock, &expected, cur | QSHM_LOCK_WAITERS, 1,
                                             __ATOMIC_RELAXED, __ATOMIC_RELAXED))
                continue;
        }
        struct timespec ts = {0, nap_ns};
        long r = syscall(SYS_futex, qshm__futex_word(h), FUTEX_WAIT,
                         (uint32_t)(cur | QSHM_LOCK_WAITERS), &ts, NULL, 0);
        if (r == -1 && errno == ETIMEDOUT) {
            if (nap_ns < 16000000)
                nap_ns *= 2;
            uint64_t now = __atomic_load_n(&h->lock, __ATOMIC_RELAXED);
            if ((now & QSHM_LOCK_TID_MASK) != 0 && (now & ~QSHM_LOCK_WAITERS) != me &&
                qshm__owner_dead(now, fd) && qshm__take_over(h, now, me))
                return qshm__acquired(h, 1);
        } else if (r == -1 && errno != EAGAIN && errno != EINTR) {
            return -errno;
        }
        slept = 1;
    }
}

/* ---- the API ------------------------------------------------------------------------- */

/* Takes the lock, waiting as long as it takes. `fd`: a descriptor of the segment file that
 * this process opened itself (not inherited or received), through which a dead qshm holder
 * is recognised; -1 when there is none (a dead qshm holder is then waited for). Returns 0,
 * QSHM_OWNER_DIED (taken; a holder died and the data may be inconsistent: repair it, then
 * qshm_mark_consistent), -EDEADLK (this thread holds it already) or another -errno. */
static inline int qshm_lock_fd(struct qshm_header *h, int fd)
{
    uint64_t me = qshm__self_id();
    uint64_t expected = 0;
    if (__builtin_expect(__atomic_compare_exchange_n(&h->lock, &expected, me, 0,
                                                     __ATOMIC_ACQUIRE, __ATOMIC_RELAXED),
                         1))
        return qshm__acquired(h, 0);
    return qshm__lock_slow(h, fd, me, 0);
}

/* As qshm_lock_fd, without waiting: -EBUSY when it is held by a live thread. */
static inline int qshm_trylock_fd(struct qshm_header *h, int fd)
{
    uint64_t me = qshm__self_id();
    uint64_t expected = 0;
    if (__atomic_compare_exchange_n(&h->lock, &expected, me, 0, __ATOMIC_ACQUIRE,
                                    __ATOMIC_RELAXED))
        return qshm__acquired(h, 0);
    return qshm__lock_slow(h, fd, me, 1);
}

/* qshm_lock_fd without a descriptor. */
static inline int qshm_lock(struct qshm_header *h)
{
    return qshm_lock_fd(h, -1);
}

/* qshm_trylock_fd without a descriptor. */
static inline int qshm_trylock(struct qshm_header *h)
{
    return qshm_trylock_fd(h, -1);
}

/* Releases the lock. Returns 0, or -EPERM when this thread does not hold it. */
static inline int qshm_unlock(struct qshm_header *h)
{
    uint64_t me = qshm__self_id();
    uint64_t cur = me;
    if (__builtin_expect(__atomic_compare_exchange_n(&h->lock, &cur, 0, 0, __ATOMIC_RELEASE,
                                                     __ATOMIC_RELAXED),
                         1))
        return 0;
    for (;;) {
        if ((cur & ~QSHM_LOCK_WAITERS) != me)
            return -EPERM;
        if (__atomic_compare_exchange_n(&h->lock, &cur, 0, 1, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED))
            break;
    }
    if (cur & QSHM_LOCK_WAITERS)
        syscall(SYS_futex, qshm__futex_word(h), FUTEX_WAKE, 1, NULL, NULL, 0);
    return 0;
}

/* With the lock held after QSHM_OWNER_DIED: the data is repaired. */
static inline void qshm_mark_consistent(struct qshm_header *h)
{
    __atomic_fetch_and(&h->state, ~QSHM_STATE_INCONSISTENT, __ATOMIC_RELAXED);
}

/* ==== Patterns in the data area: a message queue and a latest-value cell ================
 *
 * Both live at the start of a segment's data area (qshm_data), are made by one side
 * (qshm_queue_format / qshm_cell_format, or Rust's qshm::mapped::queue / ::cell) and
 * validated by the other on open. Every field is accessed with __atomic builtins.
 *
 * Ends (a queue's producer and consumer, a cell's writer) are named in a 64-bit word: 0
 * while nobody has attached, QSHM_END_CLOSED once the end was closed (for good), and
 * otherwise the attached process's identity. qshm processes write the identity of their
 * lock word (QSHM_LOCK_TOKEN | slot << 32 | tid: their liveness slot); programs using this
 * header write qshm_process_id() (tag << 32 | pid, the tag being the low 31 bits of the
 * process's start time). A peer is dead when qshm__owner_dead says so (see "Whether an
 * owner is dead" above), asked through `fd`, a descriptor of the segment file this process
 * opened itself, or -1 (then a qshm peer killed with SIGKILL is never recognised as dead:
 * the wait goes on until its timeout). Blocked sides sleep on a futex at most 100 ms at a
 * time and check their peer between sleeps.
 *
 * Return values: 0 or a length on success, else -errno: -EAGAIN (try: full, empty),
 * -ETIMEDOUT, -EPIPE (the peer closed its end or died; for a consumer, once the queue is
 * drained), -EBUSY (the end is held by a live process), -EMSGSIZE (message too long, or
 * buffer too small: the message stays queued), -EINVAL (not a queue / cell, or corrupt),
 * -EPROTONOSUPPORT (another layout version), -EPROTO (corrupt indices or records). */

#define QSHM_END_CLOSED UINT64_MAX

/* This process's identity as the end of a queue or cell: tag << 32 | pid (cached; after
 * fork, recomputed). */
static inline uint64_t qshm_process_id(void)
{
    static __thread uint32_t generation;
    static __thread uint64_t id;
    uint32_t gen = __atomic_load_n(&qshm__fork_generation, __ATOMIC_RELAXED);
    if (generation == gen && id != 0)
        return id;
    pthread_once(&qshm__once, qshm__register_atfork);
    char state;
    uint32_t tag = 0;
    if (qshm__read_stat("/proc/self/stat", &state, &tag) != 0)
        tag = 0;
    id = ((uint64_t)tag << 32) | ((uint64_t)getpid() & QSHM_LOCK_TID_MASK);
    generation = gen;
    return id;
}

/* Takes the end `word` for `me`: free, or held by a dead process. 0, -EBUSY, -EPIPE. */
static inline int qshm__attach_end(uint64_t *word, uint64_t me, int fd)
{
    uint64_t cur = __atomic_load_n(word, __ATOMIC_ACQUIRE);
    for (;;) {
        if (cur == QSHM_END_CLOSED)
            return -EPIPE;
        if (cur != 0 && !qshm__owner_dead(cur, fd))
            return -EBUSY;
        if (__atomic_compare_exchange_n(word, &cur, me, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return 0;
    }
}

/* Whether the end `word` is gone (closed; or, if `check`, its process died). */
static inline int qshm__end_gone(const uint64_t *word, int fd, int check)
{
    uint64_t cur = __atomic_load_n(word, __ATOMIC_ACQUIRE);
    if (cur == QSHM_END_CLOSED)
        return 1;
    return check && cur != 0 && qshm__owner_dead(cur, fd);
}

static inline long qshm__futex_wait(uint32_t *word, uint32_t expected, long timeout_ns)
{
    struct timespec ts;
    ts.tv_sec = timeout_ns / 1000000000L;
    ts.tv_nsec = timeout_ns % 1000000000L;
    return syscall(SYS_futex, word, FUTEX_WAIT, expected, &ts, NULL, 0);
}

static inline void qshm__futex_wake(uint32_t *word, int count)
{
    syscall(SYS_futex, word, FUTEX_WAKE, count, NULL, NULL, 0);
}

static inline int64_t qshm__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- the queue: one producer, one consumer ------------------------------------------- */

#define QSHM_QUEUE_MAGIC "QSHM\0QUE"
#define QSHM_QUEUE_VERSION 1u
#define QSHM_QUEUE_RING_OFFSET 256u
#define QSHM_QUEUE_SKIP 0xffffffffu
#define QSHM_QUEUE_PRODUCER 0
#define QSHM_QUEUE_CONSUMER 1

/* At the start of the data area; the ring follows at ring_offset. A message of n bytes is
 * a record of 8 + (n rounded up to 8) bytes at tail % ring_size: n (4 bytes), 0 (4 bytes),
 * the message, padding. A record never wraps: if it does not fit before the end of the
 * ring, a skip marker (QSHM_QUEUE_SKIP) fills the rest and the record starts at 0. The
 * producer writes a record, then stores tail (release); the consumer loads tail (acquire),
 * copies the record, then stores head (release). Each then fences (seq_cst) and wakes the
 * other side's futex word (tail or head) if its waiter count is not 0; a side about to
 * sleep increments its count, checks the index again, sleeps, and decrements it. */
struct qshm_queue {
    unsigned char magic[8];  /*   0: QSHM_QUEUE_MAGIC, stored last when made */
    uint32_t version;        /*   8: QSHM_QUEUE_VERSION */
    uint32_t ring_offset;    /*  12: QSHM_QUEUE_RING_OFFSET */
    uint32_t ring_size;      /*  16: a power of two, 64 .. 2^30 */
    uint32_t max_message;    /*  20: 1 .. ring_size / 2 - 8 */
    uint32_t reserved0[10];
    uint32_t tail;           /*  64: bytes written, mod 2^32 (producer; futex word) */
    uint32_t space_waiters;  /*  68: the producer sleeps waiting for room */
    uint64_t producer;       /*  72: the producer's identity (an end word) */
    uint64_t reserved1[6];
    uint32_t head;           /* 128: bytes consumed, mod 2^32 (consumer; futex word) */
    uint32_t data_waiters;   /* 132: the consumer sleeps waiting for a message */
    uint64_t consumer;       /* 136: the consumer's identity (an end word) */
    uint64_t reserved2[14];
};

QSHM_LAYOUT_ASSERT(sizeof(struct qshm_queue) == 256, "qshm_queue");
QSHM_LAYOUT_ASSERT(offsetof(struct qshm_queue, tail) == 64, "qshm_queue");
QSHM_LAYOUT_ASSERT(offsetof(struct qshm_queue, head) == 128, "qshm_queue");

/* One end of a queue (fill it with qshm_queue_open). */
struct qshm_queue_end {
    struct qshm_queue *q;
    unsigned char *ring;
    uint32_t size, max_message;
    uint32_t pos;  /* this end's index */
    uint32_t seen; /* the other end's index, as last loaded */
    uint64_t me;
    int role;
    int fd;
};

static inline uint32_t qshm__record_size(uint32_t len)
{
    return 8u + ((len + 7u) & ~7u);
}

/* Makes an empty queue in a data area of `data_size` bytes (8-aligned, its first 8 bytes 0,
 * used by nobody yet). 0 or -EINVAL. */
static inline int qshm_queue_format(void *data, uint64_t data_size, uint32_t ring_size,
                                    uint32_t max_message)
{
    struct qshm_queue *q = (struct qshm_queue *)data;
    if (ring_size < 64 || ring_size > (1u << 30) || (ring_size & (ring_size - 1)) != 0 ||
        max_message == 0 || max_message > ring_size / 2 - 8 ||
        qshm__record_size(max_message) > ring_size / 2 ||
        data_size < QSHM_QUEUE_RING_OFFSET + (uint64_t)ring_size)
        return -EINVAL;
    memset((unsigned char *)data + 8, 0, QSHM_QUEUE_RING_OFFSET - 8);
    __atomic_store_n(&q->version, QSHM_QUEUE_VERSION, __ATOMIC_RELAXED);
    __atomic_store_n(&q->ring_offset, QSHM_QUEUE_RING_OFFSET, __ATOMIC_RELAXED);
    __atomic_store_n(&q->ring_size, ring_size, __ATOMIC_RELAXED);
    __atomic_store_n(&q->max_message, max_message, __ATOMIC_RELAXED);
    uint64_t magic;
    memcpy(&magic, QSHM_QUEUE_MAGIC, 8);
    __atomic_store_n((uint64_t *)(void *)q->magic, magic, __ATOMIC_RELEASE);
    return 0;
}

/* Validates the queue at `data` and attaches as `role` (QSHM_QUEUE_PRODUCER or
 * QSHM_QUEUE_CONSUMER). `fd`: see above. 0, -EINVAL, -EPROTONOSUPPORT, -EBUSY, -EPIPE. */
static inline int qshm_queue_open(struct qshm_queue_end *e, void *data, uint64_t data_size,
                                  int role, int fd)
{
    struct qshm_queue *q = (struct qshm_queue *)data;
    uint64_t magic = __atomic_load_n((uint64_t *)(void *)q->magic, __ATOMIC_ACQUIRE);
    if (data_size < QSHM_QUEUE_RING_OFFSET + 64 || memcmp(&magic, QSHM_QUEUE_MAGIC, 8) != 0)
        return -EINVAL;
    if (__atomic_load_n(&q->version, __ATOMIC_RELAXED) != QSHM_QUEUE_VERSION)
        return -EPROTONOSUPPORT;
    uint32_t off = __atomic_load_n(&q->ring_offset, __ATOMIC_RELAXED);
    uint32_t size = __atomic_load_n(&q->ring_size, __ATOMIC_RELAXED);
    uint32_t max = __atomic_load_n(&q->max_message, __ATOMIC_RELAXED);
    if (off != QSHM_QUEUE_RING_OFFSET || size < 64 || size > (1u << 30) ||
        (size & (size - 1)) != 0 || (uint64_t)off + size > data_size || max == 0 ||
        max > size / 2 - 8 || qshm__record_size(max) > size / 2)
        return -EINVAL;
    e->q = q;
    e->ring = (unsigned char *)data + off;
    e->size = size;
    e->max_message = max;
    e->me = qshm_process_id();
    e->role = role;
    e->fd = fd;
    int r = qshm__attach_end(role == QSHM_QUEUE_PRODUCER ? &q->producer : &q->consumer, e->me,
                             fd);
    if (r != 0)
        return r;
    if (role == QSHM_QUEUE_PRODUCER) {
        e->pos = __atomic_load_n(&q->tail, __ATOMIC_ACQUIRE);
        e->seen = __atomic_load_n(&q->head, __ATOMIC_ACQUIRE);
    } else {
        e->pos = __atomic_load_n(&q->head, __ATOMIC_ACQUIRE);
        e->seen = __atomic_load_n(&q->tail, __ATOMIC_ACQUIRE);
    }
    return 0;
}

/* Closes the end for good (the peer gets -EPIPE / Disconnected) and wakes the peer. */
static inline void qshm_queue_close(struct qshm_queue_end *e)
{
    uint64_t *own = e->role == QSHM_QUEUE_PRODUCER ? &e->q->producer : &e->q->consumer;
    uint32_t *peer_sleeps_on = e->role == QSHM_QUEUE_PRODUCER ? &e->q->tail : &e->q->head;
    uint64_t me = e->me;
    __atomic_compare_exchange_n(own, &me, QSHM_END_CLOSED, 0, __ATOMIC_ACQ_REL,
                                __ATOMIC_RELAXED);
    qshm__futex_wake(peer_sleeps_on, 0x7fffffff);
}

static inline void qshm__queue_publish(struct qshm_queue_end *e)
{
    uint32_t *index = e->role == QSHM_QUEUE_PRODUCER ? &e->q->tail : &e->q->head;
    uint32_t *waiters =
        e->role == QSHM_QUEUE_PRODUCER ? &e->q->data_waiters : &e->q->space_waiters;
    __atomic_store_n(index, e->pos, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(waiters, __ATOMIC_RELAXED) != 0)
        qshm__futex_wake(index, 1);
}

/* Sends `len` bytes if there is room: 0, -EAGAIN (full), -EMSGSIZE, -EPIPE (the consumer
 * closed), -EPROTO. */
static inline int qshm_queue_try_send(struct qshm_queue_end *e, const void *msg, uint32_t len)
{
    if (len > e->max_message)
        return -EMSGSIZE;
    if (__atomic_load_n(&e->q->consumer, __ATOMIC_RELAXED) == QSHM_END_CLOSED)
        return -EPIPE;
    uint32_t rec = qshm__record_size(len);
    uint32_t off = e->pos & (e->size - 1);
    uint32_t contiguous = e->size - off;
    uint32_t need = rec <= contiguous ? rec : contiguous + rec;
    if (e->size - (e->pos - e->seen) < need) {
        e->seen = __atomic_load_n(&e->q->head, __ATOMIC_ACQUIRE);
        uint32_t used = e->pos - e->seen;
        if (used > e->size)
            return -EPROTO;
        if (e->size - used < need)
            return -EAGAIN;
    }
    if (rec > contiguous) {
        uint32_t skip = QSHM_QUEUE_SKIP;
        memcpy(e->ring + off, &skip, 4);
        e->pos += contiguous;
        off = 0;
    }
    uint32_t header[2];
    header[0] = len;
    header[1] = 0;
    memcpy(e->ring + off, header, 8);
    if (len != 0)
        memcpy(e->ring + off + 8, msg, len);
    e->pos += rec;
    qshm__queue_publish(e);
    return 0;
}

/* The next message's length (skipping skip markers), -EAGAIN when empty, -EPROTO. */
static inline int64_t qshm__queue_peek(struct qshm_queue_end *e)
{
    for (;;) {
        if (e->pos == e->seen) {
            e->seen = __atomic_load_n(&e->q->tail, __ATOMIC_ACQUIRE);
            if (e->pos == e->seen)
                return -EAGAIN;
        }
        uint32_t used = e->seen - e->pos;
        if (used > e->size)
            return -EPROTO;
        uint32_t off = e->pos & (e->size - 1);
        uint32_t len, contiguous = e->size - off;
        memcpy(&len, e->ring + off, 4);
        if (len == QSHM_QUEUE_SKIP) {
            if (contiguous > used)
                return -EPROTO;
            e->pos += contiguous;
            continue;
        }
        if (len > e->max_message || qshm__record_size(len) > used ||
            qshm__record_size(len) > contiguous)
            return -EPROTO;
        return len;
    }
}

/* Receives the next message into `buf` (`cap` bytes) if there is one: its length,
 * -EAGAIN (empty), -EPIPE (empty, and the producer closed its end), -EMSGSIZE (longer than
 * `cap`: it stays queued), -EPROTO. */
static inline int64_t qshm_queue_try_recv(struct qshm_queue_end *e, void *buf, uint32_t cap)
{
    int64_t len = qshm__queue_peek(e);
    if (len == -EAGAIN && qshm__end_gone(&e->q->producer, e->fd, 0)) {
        len = qshm__queue_peek(e);
        if (len == -EAGAIN)
            return -EPIPE;
    }
    if (len < 0)
        return len;
    if ((uint64_t)len > cap)
        return -EMSGSIZE;
    memcpy(buf, e->ring + (e->pos & (e->size - 1)) + 8, (size_t)len);
    e->pos += qshm__record_size((uint32_t)len);
    qshm__queue_publish(e);
    return len;
}

/* Waits until `word` leaves `expected` (spin, then futex slices of at most 100 ms), the
 * peer is gone (-EPIPE) or the deadline passes (-ETIMEDOUT; deadline < 0: none). Returns 0
 * to try again. */
static inline int qshm__queue_wait(struct qshm_queue_end *e, uint32_t *word, uint32_t *waiters,
                                   const uint64_t *peer, int64_t deadline, int *check)
{
    int spins;
    for (spins = 0; spins < 1000; spins++) {
        if (__atomic_load_n(word, __ATOMIC_ACQUIRE) != e->seen)
            return 0;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
    if (qshm__end_gone(peer, e->fd, *check))
        return -EPIPE;
    long slice = 100000000L;
    if (deadline >= 0) {
        int64_t left = deadline - qshm__now_ns();
        if (left <= 0)
            return -ETIMEDOUT;
        if (left < slice)
            slice = (long)left;
    }
    __atomic_fetch_add(waiters, 1, __ATOMIC_SEQ_CST);
    long r = 0;
    if (__atomic_load_n(word, __ATOMIC_SEQ_CST) == e->seen)
        r = qshm__futex_wait(word, e->seen, slice);
    __atomic_fetch_sub(waiters, 1, __ATOMIC_SEQ_CST);
    *check = r == -1 && errno == ETIMEDOUT;
    return 0;
}

/* Sends, waiting for room at most `timeout_ms` (-1: forever): 0, -ETIMEDOUT, -EPIPE (the
 * consumer closed its end or died), -EMSGSIZE, -EPROTO. */
static inline int qshm_queue_send(struct qshm_queue_end *e, const void *msg, uint32_t len,
                                  int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? -1 : qshm__now_ns() + (int64_t)timeout_ms * 1000000;
    int check = 0;
    for (;;) {
        int r = qshm_queue_try_send(e, msg, len);
        if (r != -EAGAIN)
            return r;
        r = qshm__queue_wait(e, &e->q->head, &e->q->space_waiters, &e->q->consumer, deadline,
                             &check);
        if (r != 0)
            return r;
    }
}

/* Receives, waiting at most `timeout_ms` (-1: forever): the message's length, -ETIMEDOUT,
 * -EPIPE (the producer closed its end or died, and every message it sent was received),
 * -EMSGSIZE, -EPROTO. */
static inline int64_t qshm_queue_recv(struct qshm_queue_end *e, void *buf, uint32_t cap,
                                      int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? -1 : qshm__now_ns() + (int64_t)timeout_ms * 1000000;
    int check = 0;
    for (;;) {
        int64_t n = qshm_queue_try_recv(e, buf, cap);
        if (n != -EAGAIN)
            return n;
        int r = qshm__queue_wait(e, &e->q->tail, &e->q->data_waiters, &e->q->producer,
                                 deadline, &check);
        if (r == -EPIPE) {
            n = qshm_queue_try_recv(e, buf, cap);
            return n == -EAGAIN ? -EPIPE : n;
        }
        if (r != 0)
            return r;
    }
}

/* ---- the latest-value cell: one writer, many readers (a seqlock) --------------------- */

#define QSHM_CELL_MAGIC "QSHM\0CEL"
#define QSHM_CELL_VERSION 1u
#define QSHM_CELL_VALUE_OFFSET 128u

/* At the start of the data area; the value follows at value_offset. The writer stores seq
 * odd (relaxed), a release fence, the value as relaxed 64-bit atomic stores, len, then seq
 * even (release), a seq_cst fence, and wakes every sleeper of seq if waiters is not 0. A
 * reader loads seq (acquire); if even, len and the value as relaxed 64-bit atomic loads, an
 * acquire fence, and seq again (relaxed): the copy is whole if both were equal. */
struct qshm_cell {
    unsigned char magic[8]; /*   0: QSHM_CELL_MAGIC, stored last when made */
    uint32_t version;       /*   8: QSHM_CELL_VERSION */
    uint32_t value_offset;  /*  12: QSHM_CELL_VALUE_OFFSET */
    uint32_t capacity;      /*  16: a multiple of 8, 8 .. 2^30 */
    uint32_t reserved0[11];
    uint32_t seq;           /*  64: odd while written; even: the value's version (futex) */
    uint32_t waiters;       /*  68: readers sleeping in qshm_cell_wait_next */
    uint32_t len;           /*  72: the value's length */
    uint32_t reserved1;
    uint64_t writer;        /*  80: the writer's identity (an end word) */
    uint64_t reserved2[5];
};

QSHM_LAYOUT_ASSERT(sizeof(struct qshm_cell) == 128, "qshm_cell");
QSHM_LAYOUT_ASSERT(offsetof(struct qshm_cell, seq) == 64, "qshm_cell");
QSHM_LAYOUT_ASSERT(offsetof(struct qshm_cell, writer) == 80, "qshm_cell");

/* Makes an empty cell of `capacity` bytes (a multiple of 8) in a data area of `data_size`
 * bytes (8-aligned, its first 8 bytes 0, used by nobody yet). 0 or -EINVAL. */
static inline int qshm_cell_format(void *data, uint64_t data_size, uint32_t capacity)
{
    struct qshm_cell *c = (struct qshm_cell *)data;
    if (capacity < 8 || capacity % 8 != 0 || capacity > (1u << 30) ||
        data_size < QSHM_CELL_VALUE_OFFSET + (uint64_t)capacity)
        return -EINVAL;
    memset((unsigned char *)data + 8, 0, QSHM_CELL_VALUE_OFFSET - 8);
    __atomic_store_n(&c->version, QSHM_CELL_VERSION, __ATOMIC_RELAXED);
    __atomic_store_n(&c->value_offset, QSHM_CELL_VALUE_OFFSET, __ATOMIC_RELAXED);
    __atomic_store_n(&c->capacity, capacity, __ATOMIC_RELAXED);
    uint64_t magic;
    memcpy(&magic, QSHM_CELL_MAGIC, 8);
    __atomic_store_n((uint64_t *)(void *)c->magic, magic, __ATOMIC_RELEASE);
    return 0;
}

/* Validates the cell at `data`: 0, -EINVAL, -EPROTONOSUPPORT. */
static inline int qshm_cell_check(const void *data, uint64_t data_size)
{
    const struct qshm_cell *c = (const struct qshm_cell *)data;
    uint64_t magic = __atomic_load_n((const uint64_t *)(const void *)c->magic, __ATOMIC_ACQUIRE);
    if (data_size < QSHM_CELL_VALUE_OFFSET + 8 || memcmp(&magic, QSHM_CELL_MAGIC, 8) != 0)
        return -EINVAL;
    if (__atomic_load_n(&c->version, __ATOMIC_RELAXED) != QSHM_CELL_VERSION)
        return -EPROTONOSUPPORT;
    uint32_t off = __atomic_load_n(&c->value_offset, __ATOMIC_RELAXED);
    uint32_t cap = __atomic_load_n(&c->capacity, __ATOMIC_RELAXED);
    if (off != QSHM_CELL_VALUE_OFFSET || cap < 8 || cap % 8 != 0 || cap > (1u << 30) ||
        (uint64_t)off + cap > data_size)
        return -EINVAL;
    return 0;
}

/* Attaches this process as the writer of a checked cell: 0, -EBUSY, -EPIPE. */
static inline int qshm_cell_attach_writer(struct qshm_cell *c, int fd)
{
    return qshm__attach_end(&c->writer, qshm_process_id(), fd);
}

/* Closes the writer's end for good and wakes the readers that wait. */
static inline void qshm_cell_close_writer(struct qshm_cell *c)
{
    uint64_t me = qshm_process_id();
    __atomic_compare_exchange_n(&c->writer, &me, QSHM_END_CLOSED, 0, __ATOMIC_ACQ_REL,
                                __ATOMIC_RELAXED);
    qshm__futex_wake(&c->seq, 0x7fffffff);
}

static inline uint64_t *qshm__cell_words(struct qshm_cell *c)
{
    return (uint64_t *)(void *)((unsigned char *)c + QSHM_CELL_VALUE_OFFSET);
}

/* Publishes `len` bytes (the attached writer only): the new sequence number (as an
 * int64_t), or -EMSGSIZE. */
static inline int64_t qshm_cell_write(struct qshm_cell *c, const void *value, uint32_t len)
{
    if (len > __atomic_load_n(&c->capacity, __ATOMIC_RELAXED))
        return -EMSGSIZE;
    uint32_t s = __atomic_load_n(&c->seq, __ATOMIC_RELAXED);
    uint32_t writing = (s & 1u) ? s + 2u : s + 1u;
    __atomic_store_n(&c->seq, writing, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    uint64_t *words = qshm__cell_words(c);
    const unsigned char *src = (const unsigned char *)value;
    uint32_t i;
    for (i = 0; i < len / 8; i++) {
        uint64_t w;
        memcpy(&w, src + 8 * i, 8);
        __atomic_store_n(&words[i], w, __ATOMIC_RELAXED);
    }
    if (len % 8 != 0) {
        uint64_t w = 0;
        memcpy(&w, src + 8 * i, len % 8);
        __atomic_store_n(&words[i], w, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&c->len, len, __ATOMIC_RELAXED);
    __atomic_store_n(&c->seq, writing + 1u, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&c->waiters, __ATOMIC_RELAXED) != 0)
        qshm__futex_wake(&c->seq, 0x7fffffff);
    return (int64_t)(writing + 1u);
}

/* Copies the latest value into `buf` (`cap` bytes), never torn, and its sequence number
 * into `*seq`: its length, -EMSGSIZE (longer than `cap`) or -EPROTO (corrupt). Retries
 * while a write is under way (a writer killed half-way makes it retry until another writer
 * writes: bound it with qshm_cell_wait_next if that matters). */
static inline int64_t qshm_cell_read(struct qshm_cell *c, void *buf, uint32_t cap, uint32_t *seq)
{
    uint64_t *words = qshm__cell_words(c);
    uint32_t capacity = __atomic_load_n(&c->capacity, __ATOMIC_RELAXED);
    unsigned char *dst = (unsigned char *)buf;
    for (;;) {
        uint32_t s1 = __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE);
        if (s1 & 1u) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
            continue;
        }
        uint32_t len = __atomic_load_n(&c->len, __ATOMIC_RELAXED);
        int fits = len <= capacity && len <= cap;
        if (fits) {
            uint32_t i;
            for (i = 0; i < len / 8; i++) {
                uint64_t w = __atomic_load_n(&words[i], __ATOMIC_RELAXED);
                memcpy(dst + 8 * i, &w, 8);
            }
            if (len % 8 != 0) {
                uint64_t w = __atomic_load_n(&words[i], __ATOMIC_RELAXED);
                memcpy(dst + 8 * i, &w, len % 8);
            }
        }
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&c->seq, __ATOMIC_RELAXED) == s1) {
            if (seq)
                *seq = s1;
            if (fits)
                return len;
            return len > capacity ? -EPROTO : -EMSGSIZE;
        }
    }
}

/* Waits at most `timeout_ms` (-1: forever) for a value newer than sequence number `seen`:
 * its sequence number (as an int64_t), -ETIMEDOUT, or -EPIPE (the writer closed its end or
 * died, and nothing newer is there). `fd`: see above. */
static inline int64_t qshm_cell_wait_next(struct qshm_cell *c, uint32_t seen, int timeout_ms,
                                          int fd)
{
    int64_t deadline = timeout_ms < 0 ? -1 : qshm__now_ns() + (int64_t)timeout_ms * 1000000;
    int check = 0, spins = 0;
    for (;;) {
        uint32_t cur = __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE);
        if (cur != seen && !(cur & 1u))
            return (int64_t)cur;
        if ((cur & 1u) && spins < 1000) {
            spins++;
            continue;
        }
        if (qshm__end_gone(&c->writer, fd, check))
            return -EPIPE;
        long slice = 100000000L;
        if (deadline >= 0) {
            int64_t left = deadline - qshm__now_ns();
            if (left <= 0)
                return -ETIMEDOUT;
            if (left < slice)
                slice = (long)left;
        }
        __atomic_fetch_add(&c->waiters, 1, __ATOMIC_SEQ_CST);
        long r = 0;
        if (__atomic_load_n(&c->seq, __ATOMIC_SEQ_CST) == cur)
            r = qshm__futex_wait(&c->seq, cur, slice);
        __atomic_fetch_sub(&c->waiters, 1, __ATOMIC_SEQ_CST);
        check = r == -1 && errno == ETIMEDOUT;
    }
}

/* ---- change notification -------------------------------------------------------- */

/* The change counter now: read it before reading the data, and wait with it. */
static inline uint32_t qshm_changes(const uint32_t *changes)
{
    return __atomic_load_n(changes, __ATOMIC_ACQUIRE);
}

/* Announces a change to `changes` (with its `waiters`): &h->changes, &h->change_waiters of
 * a mapped segment, or of a companion's struct qshm_notify. Returns the new count. */
static inline uint32_t qshm_notify(uint32_t *changes, uint32_t *waiters)
{
    uint32_t now = __atomic_add_fetch(changes, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(waiters, __ATOMIC_SEQ_CST) != 0)
        syscall(SYS_futex, changes, FUTEX_WAKE, 0x7fffffff, NULL, NULL, 0);
    return now;
}

/* Waits until `changes` differs from `seen`, at most `timeout_ns` nanoseconds (< 0: for
 * ever). Returns the count then (>= 0 as an int64_t), or -ETIMEDOUT, or another -errno. */
static inline int64_t qshm_wait_change(uint32_t *changes, uint32_t *waiters, uint32_t seen,
                                       int64_t timeout_ns)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    if (timeout_ns >= 0) {
        deadline.tv_sec += (time_t)(timeout_ns / 1000000000);
        deadline.tv_nsec += (long)(timeout_ns % 1000000000);
        if (deadline.tv_nsec >= 1000000000) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000;
        }
    }
    for (;;) {
        uint32_t now = __atomic_load_n(changes, __ATOMIC_ACQUIRE);
        if (now != seen)
            return (int64_t)now;
        struct timespec ts = {1, 0}, t;
        if (timeout_ns >= 0) {
            clock_gettime(CLOCK_MONOTONIC, &t);
            int64_t left = (int64_t)(deadline.tv_sec - t.tv_sec) * 1000000000 +
                           (deadline.tv_nsec - t.tv_nsec);
            if (left <= 0)
                return -ETIMEDOUT;
            if (left < 1000000000) {
                ts.tv_sec = 0;
                ts.tv_nsec = (long)left;
            }
        }
        __atomic_add_fetch(waiters, 1, __ATOMIC_SEQ_CST);
        long r = 0;
        int err = 0;
        if (__atomic_load_n(changes, __ATOMIC_SEQ_CST) == seen) {
            r = syscall(SYS_futex, changes, FUTEX_WAIT, seen, &ts, NULL, 0);
            err = errno;
        }
        __atomic_sub_fetch(waiters, 1, __ATOMIC_SEQ_CST);
        if (r == -1 && err != EAGAIN && err != EINTR && err != ETIMEDOUT)
            return -err;
    }
}

/* qshm_notify on a mapped segment's header. */
static inline uint32_t qshm_header_notify(struct qshm_header *h)
{
    return qshm_notify(&h->changes, &h->change_waiters);
}

/* qshm_wait_change on a mapped segment's header. */
static inline int64_t qshm_header_wait_change(struct qshm_header *h, uint32_t seen,
                                              int64_t timeout_ns)
{
    return qshm_wait_change(&h->changes, &h->change_waiters, seen, timeout_ns);
}

#ifdef __cplusplus
}
#endif

#endif /* QSHM_H */
