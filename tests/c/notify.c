/* A C peer for tests/notify.rs: change notification through include/qshm.h.
 *
 *   notify pong <path> <rounds>    the ping-pong of tests/notify.rs with a mapped file:
 *                                  waits for request i (u64 at data offset 0), answers
 *                                  it (offset 8), notifies; rounds times
 *   notify companion <path>        maps a companion (struct qshm_notify), sleeps 100 ms,
 *                                  notifies once
 *
 * Prints "ready" once mapped; exits 0 on success, 2 on a bad segment, 3 on a lost wake-up
 * (a wait of 5 s) or another error. */
#include "qshm.h"
#include "peer.h"

static uint64_t get(struct qshm_header *h, size_t offset)
{
    if (qshm_lock(h) < 0)
        exit(3);
    uint64_t v;
    memcpy(&v, (unsigned char *)qshm_data(h) + offset, 8);
    qshm_unlock(h);
    return v;
}

static void set(struct qshm_header *h, size_t offset, uint64_t v)
{
    if (qshm_lock(h) < 0)
        exit(3);
    memcpy((unsigned char *)qshm_data(h) + offset, &v, 8);
    qshm_unlock(h);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: notify pong <path> <rounds> | notify companion <path>\n");
        return 1;
    }
    int fd;
    size_t len;
    void *map = peer_map_file(argv[2], &fd, &len);
    if (strcmp(argv[1], "companion") == 0) {
        struct qshm_notify *n = (struct qshm_notify *)map;
        if (len < sizeof *n || memcmp(n->magic, QSHM_NOTIFY_MAGIC, 8) != 0)
            return 2;
        printf("ready\n");
        fflush(stdout);
        struct timespec pause = {0, 100000000};
        nanosleep(&pause, NULL);
        qshm_notify(&n->changes, &n->change_waiters);
        return 0;
    }
    if (argc != 4 || qshm_check(map, len) != 0)
        return 2;
    struct qshm_header *h = (struct qshm_header *)map;
    uint64_t rounds = strtoull(argv[3], NULL, 10);
    printf("ready\n");
    fflush(stdout);
    for (uint64_t i = 1; i <= rounds; i++) {
        for (;;) {
            uint32_t seen = qshm_changes(&h->changes);
            if (get(h, 0) == i)
                break;
            int64_t r = qshm_header_wait_change(h, seen, 5000000000LL);
            if (r < 0) {
                fprintf(stderr, "waiting for request %llu: %s\n", (unsigned long long)i,
                        strerror((int)-r));
                return 3;
            }
        }
        set(h, 8, i);
        qshm_header_notify(h);
    }
    printf("answered %llu\n", (unsigned long long)rounds);
    return 0;
}
