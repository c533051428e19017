/* A C peer for tests/mapped.rs: maps a qshm file segment through include/qshm.h and
 * increments the u64 at the start of its data area `iterations` times under the lock.
 *
 *   counter <path> <iterations>
 *
 * Prints "ready" once mapped; exits 0 on success, 2 on a bad segment, 3 on a lock error. */
#include "qshm.h"
#include "peer.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: counter <path> <iterations>\n");
        return 1;
    }
    long iterations = atol(argv[2]);
    int fd;
    size_t len;
    void *map = peer_map_file(argv[1], &fd, &len);
    int rc = qshm_check(map, len);
    if (rc != 0) {
        fprintf(stderr, "qshm_check: %s\n", strerror(-rc));
        return 2;
    }
    struct qshm_header *h = (struct qshm_header *)map;
    volatile uint64_t *counter = (volatile uint64_t *)qshm_data(h);
    printf("ready\n");
    fflush(stdout);
    for (long i = 0; i < iterations; i++) {
        rc = qshm_lock_fd(h, fd);
        if (rc == QSHM_OWNER_DIED) {
            qshm_mark_consistent(h);
        } else if (rc != 0) {
            fprintf(stderr, "qshm_lock: %s\n", strerror(-rc));
            return 3;
        }
        *counter = *counter + 1;
        rc = qshm_unlock(h);
        if (rc != 0) {
            fprintf(stderr, "qshm_unlock: %s\n", strerror(-rc));
            return 3;
        }
    }
    munmap(map, len);
    close(fd);
    return 0;
}
