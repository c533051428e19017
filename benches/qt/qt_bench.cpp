// qt_bench: measures Qt's own QSharedMemory (Qt 6.4, System V backend, legacy
// QString keys) so that the qshm crate's criterion numbers have a reference.
//
// Written against Qt's public API only (Qt is LGPL). Output contract: one JSON
// object per benchmark on stdout, {"id":..,"iters":[..],"times":[..]}, in the
// shape of criterion's sample.json (times = ns per sample). Progress and the
// medians go to stderr. Usage: qt_bench [FILTER]; QT_BENCH_QUICK=1 = smoke test.
//
// Children are this executable re-run (fork + exec of /proc/self/exe with a
// --child-* argument), so each child is a fresh process with nothing mapped.

#include <QtCore/QSharedMemory>
#include <QtCore/QString>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/prctl.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace {

// ---------------------------------------------------------------- utilities

struct Failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string qs(const QString &s) { return s.toStdString(); }

// Throw a Failure if !ok; `m` adds Qt's error string to the message.
void check(bool ok, const char *what, const QSharedMemory *m = nullptr)
{
    if (!ok)
        throw Failure(std::string(what) + (m ? ": " + qs(m->errorString()) : std::string()));
}

uint64_t now_ns()
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

bool g_quick = false;
std::string g_filter;
std::vector<QString> g_keys;  // every key used, for the leftover sweep at exit

bool wanted(const char *id) { return std::string(id).find(g_filter) != std::string::npos; }

// A unique key per run: qshm-qtbench-<pid>-<name>.
QString make_key(const char *name)
{
    QString key = QStringLiteral("qshm-qtbench-%1-%2").arg(getpid()).arg(QLatin1String(name));
    g_keys.push_back(key);
    return key;
}

void write_full(int fd, const void *buf, size_t n)
{
    auto *p = static_cast<const char *>(buf);
    while (n > 0) {
        ssize_t r = write(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            throw Failure(std::string("pipe write: ") + strerror(errno));
        p += r;
        n -= size_t(r);
    }
}

// Returns false on EOF (the peer exited, e.g. a child that failed).
bool read_full(int fd, void *buf, size_t n)
{
    auto *p = static_cast<char *>(buf);
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            throw Failure(std::string("pipe read: ") + strerror(errno));
        if (r == 0)
            return false;
        p += r;
        n -= size_t(r);
    }
    return true;
}

void expect_byte(int fd, char want, const char *what)
{
    char c = 0;
    if (!read_full(fd, &c, 1) || c != want)
        throw Failure(std::string(what) + ": child failed (see its message above)");
}

// A pipe whose ends close themselves; both ends are O_CLOEXEC, the child
// clears the flag on the ends it is given.
struct Pipe {
    int r = -1, w = -1;
    Pipe()
    {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0) throw Failure(std::string("pipe2: ") + strerror(errno));
        r = fds[0], w = fds[1];
    }
    ~Pipe() { close_r(), close_w(); }
    void close_r() { if (r >= 0) close(r), r = -1; }
    void close_w() { if (w >= 0) close(w), w = -1; }
};

// A child process; if it is still running when this goes out of scope (an
// error path), it is killed and reaped so nothing outlives the run.
struct Child {
    pid_t pid = -1;
    Child(const std::vector<std::string> &args, const std::vector<int> &keep_fds)
    {
        std::vector<char *> argv;
        std::string exe = "/proc/self/exe";
        argv.push_back(exe.data());
        for (const std::string &a : args)
            argv.push_back(const_cast<char *>(a.c_str()));
        argv.push_back(nullptr);
        pid_t parent = getpid();
        fflush(stdout);
        pid = fork();
        if (pid < 0)
            throw Failure(std::string("fork: ") + strerror(errno));
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);  // die with the parent
            if (getppid() != parent)
                _exit(1);
            dup2(2, 1);  // a child never writes to the JSON stdout
            for (int fd : keep_fds)
                fcntl(fd, F_SETFD, 0);
            execv(exe.c_str(), argv.data());
            _exit(127);
        }
    }
    Child(const Child &) = delete;
    bool alive() { return pid > 0 && waitpid(pid, nullptr, WNOHANG) == 0; }
    void wait_ok(const char *what)
    {
        int st = 0;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
        pid = -1;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            throw Failure(std::string(what) + ": child exited with status " + std::to_string(st));
    }
    ~Child()
    {
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
    }
};

// ---------------------------------------------------------------- sampler

// body(iters) runs `iters` iterations and returns their elapsed ns (so a body
// can exclude its own setup). timed() wraps a plain void(uint64_t) loop.
using Body = std::function<double(uint64_t)>;

Body timed(std::function<void(uint64_t)> loop)
{
    return [loop](uint64_t n) {
        uint64_t t0 = now_ns();
        loop(n);
        return double(now_ns() - t0);
    };
}

struct Opts {
    int samples;          // S (QT_BENCH_QUICK: 2)
    bool single;          // always 1 iteration per sample
    uint64_t iter_scale;  // reported iters = K * iter_scale
    Opts(int s = 30, bool one = false, uint64_t scale = 1) : samples(s), single(one), iter_scale(scale) {}
};

// Criterion's flat sampling: warm up for ~0.3 s with doubling iteration counts
// to estimate the time per iteration, then take S samples of K iterations,
// K chosen so that all samples together take ~2 s.
void run_bench(const char *id, Opts o, const Body &body)
{
    const double warmup_ns = 0.3e9, measure_ns = 2e9;
    int S = g_quick ? 2 : o.samples;
    uint64_t K = 1;
    fprintf(stderr, "%s: warming up\n", id);
    if (g_quick) {
        body(1);
    } else {
        uint64_t n = 1, total_iters = 0;
        double total_ns = 0;
        uint64_t start = now_ns();
        for (;;) {
            total_ns += body(n);
            total_iters += n;
            if (double(now_ns() - start) >= warmup_ns)
                break;
            if (!o.single)
                n *= 2;
        }
        double per_iter = std::max(total_ns / double(total_iters), 1e-3);
        if (!o.single)
            K = std::max<uint64_t>(1, uint64_t(std::ceil(measure_ns / (S * per_iter))));
    }
    fprintf(stderr, "%s: %d samples x %llu iterations\n", id, S, (unsigned long long)K);
    std::vector<double> times, per;
    for (int s = 0; s < S; s++) {
        times.push_back(body(K));
        per.push_back(times.back() / double(K * o.iter_scale));
    }
    std::string json = std::string("{\"id\":\"") + id + "\",\"iters\":[";
    for (int s = 0; s < S; s++)
        json += (s ? "," : "") + std::to_string(K * o.iter_scale);
    json += "],\"times\":[";
    char buf[64];
    for (int s = 0; s < S; s++) {
        snprintf(buf, sizeof buf, "%s%.1f", s ? "," : "", times[s]);
        json += buf;
    }
    printf("%s]}\n", json.c_str());
    fflush(stdout);
    std::sort(per.begin(), per.end());
    double med = S % 2 ? per[S / 2] : (per[S / 2 - 1] + per[S / 2]) / 2;
    fprintf(stderr, "%s: median %.1f ns/iter\n", id, med);
}

// ---------------------------------------------------------------- benchmarks

// qt/lock_unlock: the uncontended cost of Qt's lock, i.e. two semop() calls
// on the key's System V semaphore.
void bench_lock_unlock()
{
    const char *id = "qt/lock_unlock";
    if (!wanted(id)) return;
    QSharedMemory shm(make_key("lock-unlock"));
    check(shm.create(64), "lock_unlock: create", &shm);
    run_bench(id, {}, timed([&](uint64_t n) {
        for (uint64_t i = 0; i < n; i++) {
            check(shm.lock(), "lock_unlock: lock", &shm);
            check(shm.unlock(), "lock_unlock: unlock", &shm);
        }
    }));
    check(shm.detach(), "lock_unlock: detach", &shm);
}

// qt/attach_detach: attaching to and detaching from a live segment (key file,
// semaphore set-up, lock, shmget/shmat, unlock; then lock, shmdt, stat, unlock).
void bench_attach_detach()
{
    const char *id = "qt/attach_detach";
    if (!wanted(id)) return;
    QString key = make_key("attach-detach");
    QSharedMemory owner(key), other(key);
    check(owner.create(4096), "attach_detach: create", &owner);
    run_bench(id, {}, timed([&](uint64_t n) {
        for (uint64_t i = 0; i < n; i++) {
            check(other.attach(), "attach_detach: attach", &other);
            check(other.detach(), "attach_detach: detach", &other);
        }
    }));
    check(owner.detach(), "attach_detach: detach owner", &owner);
}

// qt/create_detach_4k: the full life cycle of a small segment; the last
// detach removes segment and key file, so the key can be reused.
void bench_create_detach_4k()
{
    const char *id = "qt/create_detach_4k";
    if (!wanted(id)) return;
    QSharedMemory shm(make_key("create-detach-4k"));
    run_bench(id, {}, timed([&](uint64_t n) {
        for (uint64_t i = 0; i < n; i++) {
            check(shm.create(4096), "create_detach_4k: create", &shm);
            check(shm.detach(), "create_detach_4k: detach", &shm);
        }
    }));
}

// qt/create_attach_{1g,8g}: create + attach + detach + detach of a big
// segment whose pages are never touched: shows whether the cost scales with
// the size (it should not; nothing is populated).
void bench_create_attach(const char *id, const char *name, qsizetype size)
{
    if (!wanted(id)) return;
    QString key = make_key(name);
    QSharedMemory a(key), b(key);
    if (!a.create(size)) {
        auto err = a.error();
        if (size > (qsizetype(1) << 30) &&
            (err == QSharedMemory::InvalidSize || err == QSharedMemory::OutOfResources)) {
            fprintf(stderr, "%s: SKIPPED, create(%lld) failed: %s (kernel.shmmax/shmall?)\n", id,
                    (long long)size, qs(a.errorString()).c_str());
            return;
        }
        check(false, "create_attach: create", &a);
    }
    check(a.detach(), "create_attach: detach", &a);
    run_bench(id, Opts(10), timed([&](uint64_t n) {
        for (uint64_t i = 0; i < n; i++) {
            check(a.create(size), "create_attach: create", &a);
            check(b.attach(), "create_attach: attach", &b);
            check(b.detach(), "create_attach: detach B", &b);
            check(a.detach(), "create_attach: detach A", &a);
        }
    }));
}

// qt/handoff: two processes take turns through Qt's lock. Words: [0] turn,
// [1] stop. The parent moves turn even -> odd, the child odd -> even. One
// iteration is one parent turn; as the child only moves after the parent did,
// consecutive parent turns measure a round trip.
int child_handoff(const QString &key, int ready_fd)
{
    QSharedMemory shm(key);
    if (!shm.attach()) {
        fprintf(stderr, "handoff child: attach: %s\n", qs(shm.errorString()).c_str());
        return 2;
    }
    auto *w = static_cast<volatile uint64_t *>(shm.data());
    write_full(ready_fd, "R", 1);
    for (;;) {
        if (!shm.lock())
            return 3;
        if (w[1]) {
            shm.unlock();
            break;
        }
        bool mine = w[0] % 2 == 1;
        if (mine)
            w[0] = w[0] + 1;
        shm.unlock();
        if (!mine)
            sched_yield();
    }
    return shm.detach() ? 0 : 4;
}

void bench_handoff()
{
    const char *id = "qt/handoff";
    if (!wanted(id)) return;
    QString key = make_key("handoff");
    QSharedMemory shm(key);
    check(shm.create(64), "handoff: create", &shm);
    auto *w = static_cast<volatile uint64_t *>(shm.data());
    Pipe ready;
    Child child({"--child-handoff", qs(key), std::to_string(ready.w)}, {ready.w});
    ready.close_w();
    expect_byte(ready.r, 'R', "handoff");

    uint64_t turns = 0, spins = 0;
    auto take_turn = [&] {
        for (;;) {
            check(shm.lock(), "handoff: lock", &shm);
            bool mine = w[0] % 2 == 0;
            if (mine)
                w[0] = w[0] + 1;
            check(shm.unlock(), "handoff: unlock", &shm);
            if (mine)
                return;
            if (++spins % 65536 == 0 && !child.alive())
                throw Failure("handoff: child died");
            sched_yield();
        }
    };
    run_bench(id, {}, timed([&](uint64_t n) {
        for (uint64_t i = 0; i < n; i++)
            take_turn();
        turns += n;
    }));
    check(shm.lock(), "handoff: lock", &shm);
    w[1] = 1;
    uint64_t turn = w[0];
    check(shm.unlock(), "handoff: unlock", &shm);
    child.wait_ok("handoff");
    if (turn != 2 * turns && turn != 2 * turns - 1)
        throw Failure("handoff: turn counter " + std::to_string(turn) + " after " +
                      std::to_string(turns) + " parent turns");
    check(shm.detach(), "handoff: detach", &shm);
}

// qt/contended: parent and child each do M locked increments of word [0];
// word [1] is the start flag. Per sample the parent sends M over a pipe, the
// child answers 'R' when ready and 'D' when done; the sample time runs from
// the start flag until both are done. iters = 2*M (ns per increment of the pair).
int child_contend(const QString &key, int cmd_fd, int resp_fd)
{
    QSharedMemory shm(key);
    if (!shm.attach()) {
        fprintf(stderr, "contended child: attach: %s\n", qs(shm.errorString()).c_str());
        return 2;
    }
    auto *w = static_cast<uint64_t *>(shm.data());
    write_full(resp_fd, "R", 1);
    uint64_t m;
    while (read_full(cmd_fd, &m, sizeof m) && m != 0) {
        write_full(resp_fd, "R", 1);
        while (__atomic_load_n(&w[1], __ATOMIC_ACQUIRE) == 0)
            sched_yield();
        for (uint64_t i = 0; i < m; i++) {
            if (!shm.lock())
                return 3;
            *static_cast<volatile uint64_t *>(&w[0]) += 1;
            if (!shm.unlock())
                return 3;
        }
        write_full(resp_fd, "D", 1);
    }
    return shm.detach() ? 0 : 4;
}

void bench_contended()
{
    const char *id = "qt/contended";
    if (!wanted(id)) return;
    QString key = make_key("contended");
    QSharedMemory shm(key);
    check(shm.create(64), "contended: create", &shm);
    auto *w = static_cast<uint64_t *>(shm.data());
    auto *counter = static_cast<volatile uint64_t *>(&w[0]);
    Pipe cmd, resp;
    Child child({"--child-contend", qs(key), std::to_string(cmd.r), std::to_string(resp.w)},
                {cmd.r, resp.w});
    cmd.close_r();
    resp.close_w();
    expect_byte(resp.r, 'R', "contended");

    run_bench(id, Opts(30, false, 2), [&](uint64_t m) {
        *counter = 0;  // the child is idle, waiting for the next command
        __atomic_store_n(&w[1], 0, __ATOMIC_RELEASE);
        write_full(cmd.w, &m, sizeof m);
        expect_byte(resp.r, 'R', "contended");
        uint64_t t0 = now_ns();
        __atomic_store_n(&w[1], 1, __ATOMIC_RELEASE);  // start barrier
        for (uint64_t i = 0; i < m; i++) {
            check(shm.lock(), "contended: lock", &shm);
            *counter = *counter + 1;
            check(shm.unlock(), "contended: unlock", &shm);
        }
        expect_byte(resp.r, 'D', "contended");
        double ns = double(now_ns() - t0);
        check(shm.lock(), "contended: lock", &shm);
        uint64_t total = *counter;
        check(shm.unlock(), "contended: unlock", &shm);
        if (total != 2 * m)
            throw Failure("contended: counter " + std::to_string(total) + ", expected " +
                          std::to_string(2 * m));
        return ns;
    });
    uint64_t stop = 0;
    write_full(cmd.w, &stop, sizeof stop);
    child.wait_ok("contended");
    check(shm.detach(), "contended: detach", &shm);
}

// qt/first_read_1g(_readonly): a fresh process attaches (ReadOnly) to a 1 GiB
// segment the parent filled, and reads every word once: the cost of faulting
// in an existing segment. The child times attach start -> read end ("full")
// or the read alone ("read") and sends the ns through a pipe.
constexpr qsizetype kReadSize = qsizetype(1) << 30;
constexpr unsigned char kFill = 0x5a;

int child_read(const QString &key, const char *mode, int resp_fd)
{
    QSharedMemory shm(key);
    uint64_t t0 = now_ns();
    if (!shm.attach(QSharedMemory::ReadOnly)) {
        fprintf(stderr, "read child: attach: %s\n", qs(shm.errorString()).c_str());
        return 2;
    }
    uint64_t t1 = now_ns();
    const auto *p = static_cast<const uint64_t *>(shm.constData());
    size_t words = size_t(shm.size()) / sizeof(uint64_t);
    uint64_t sum = 0;
    for (size_t i = 0; i < words; i++)
        sum += p[i];
    volatile uint64_t sink = sum;  // the sum is checked below as well
    uint64_t t2 = now_ns();
    uint64_t word;
    memset(&word, kFill, sizeof word);
    if (shm.size() != kReadSize || sink != word * words) {
        fprintf(stderr, "read child: wrong size or contents\n");
        return 3;
    }
    double ns = double(t2 - (strcmp(mode, "read") == 0 ? t1 : t0));
    if (!shm.detach())
        return 4;
    write_full(resp_fd, &ns, sizeof ns);
    return 0;
}

void bench_first_read()
{
    bool full = wanted("qt/first_read_1g"), ro = wanted("qt/first_read_1g_readonly");
    if (!full && !ro) return;
    QString key = make_key("first-read");
    QSharedMemory shm(key);
    check(shm.create(kReadSize), "first_read: create 1 GiB", &shm);
    memset(shm.data(), kFill, size_t(kReadSize));  // populate once, not timed
    auto sampler = [&](const char *mode) {
        return [&, mode](uint64_t n) {
            double total = 0;
            for (uint64_t i = 0; i < n; i++) {
                Pipe resp;
                Child child({"--child-read", qs(key), mode, std::to_string(resp.w)}, {resp.w});
                resp.close_w();
                double ns = 0;
                if (!read_full(resp.r, &ns, sizeof ns))
                    throw Failure("first_read: child failed (see its message above)");
                child.wait_ok("first_read");
                total += ns;
            }
            return total;
        };
    };
    if (full) run_bench("qt/first_read_1g", Opts(10, true), sampler("full"));
    if (ro) run_bench("qt/first_read_1g_readonly", Opts(10, true), sampler("read"));
    check(shm.detach(), "first_read: detach", &shm);
}

// ---------------------------------------------------------------- cleanup

// Removes whatever Qt left behind for our own keys: the lock semaphore (with
// its /tmp/qipc_systemsem_* file) and, should it ever happen, a segment and
// its /tmp/qipc_sharedmemory_* file. Returns the number of leftovers found.
int sweep_leftovers()
{
    int found = 0;
    for (const QString &key : g_keys) {
        std::string shm_file = qs(QSharedMemory(key).nativeKey());
        std::string sem_file = shm_file;
        size_t pos = sem_file.rfind("qipc_sharedmemory_");
        if (pos == std::string::npos)
            continue;
        sem_file.replace(pos, strlen("qipc_sharedmemory_"), "qipc_systemsem_");
        if (access(sem_file.c_str(), F_OK) == 0) {
            key_t k = ftok(sem_file.c_str(), 'Q');
            int id = k == -1 ? -1 : semget(k, 0, 0);
            if (id >= 0)
                semctl(id, 0, IPC_RMID);
            unlink(sem_file.c_str());
            fprintf(stderr, "note: removed leftover semaphore%s of key %s (%s)\n",
                    id >= 0 ? "" : " file", qs(key).c_str(), sem_file.c_str());
            found++;
        }
        if (access(shm_file.c_str(), F_OK) == 0) {
            key_t k = ftok(shm_file.c_str(), 'Q');
            int id = k == -1 ? -1 : shmget(k, 0, 0);
            if (id >= 0)  // all our users are gone; if not, removed at their last detach
                shmctl(id, IPC_RMID, nullptr);
            unlink(shm_file.c_str());
            fprintf(stderr, "note: removed leftover segment of key %s (%s)\n", qs(key).c_str(),
                    shm_file.c_str());
            found++;
        }
    }
    return found;
}

int child_main(int argc, char **argv)
{
    std::string mode = argv[1];
    try {
        if (mode == "--child-handoff" && argc == 4)
            return child_handoff(QString::fromStdString(argv[2]), atoi(argv[3]));
        if (mode == "--child-contend" && argc == 5)
            return child_contend(QString::fromStdString(argv[2]), atoi(argv[3]), atoi(argv[4]));
        if (mode == "--child-read" && argc == 5)
            return child_read(QString::fromStdString(argv[2]), argv[3], atoi(argv[4]));
    } catch (const std::exception &e) {
        fprintf(stderr, "qt_bench child: %s\n", e.what());
        return 5;
    }
    fprintf(stderr, "qt_bench: bad child arguments\n");
    return 64;
}

}  // namespace

int main(int argc, char **argv)
{
    if (argc >= 2 && strncmp(argv[1], "--child-", 8) == 0)
        return child_main(argc, argv);
    alarm(600);  // watchdog: a deadlock kills the run (children follow via PDEATHSIG)
    signal(SIGPIPE, SIG_IGN);
    const char *quick = getenv("QT_BENCH_QUICK");
    g_quick = quick && *quick && strcmp(quick, "0") != 0;
    g_filter = argc >= 2 ? argv[1] : "";

    int rc = 0;
    try {
        bench_lock_unlock();
        bench_attach_detach();
        bench_create_detach_4k();
        bench_create_attach("qt/create_attach_1g", "create-attach-1g", qsizetype(1) << 30);
        bench_create_attach("qt/create_attach_8g", "create-attach-8g", qsizetype(8) << 30);
        bench_handoff();
        bench_contended();
        bench_first_read();
    } catch (const std::exception &e) {
        fprintf(stderr, "qt_bench: FAILED: %s\n", e.what());
        rc = 1;
    }
    if (int n = sweep_leftovers())
        fprintf(stderr, "qt_bench: %d leftover(s) of Qt removed\n", n);
    return rc;
}
