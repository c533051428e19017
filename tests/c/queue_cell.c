/* A C peer for tests/queue.rs and tests/cell.rs: either end of a qshm queue, or a cell's
 * writer or reader, through include/qshm.h, on a qshm file segment.
 *
 *   queue_cell queue-produce <path> <n>   sends n messages of (i * 37) % 201 bytes
 *   queue_cell queue-consume <path> <n>   receives and checks them, then expects -EPIPE
 *   queue_cell cell-write <path> <n>      formats a cell, prints "ready", writes n values
 *   queue_cell cell-read <path> <n>       reads n times, checking every value
 *
 * Byte j of message i of length len is (i * 31) ^ (j * 7) ^ len (mod 256); value n of the
 * cell is 64 bytes ((n / 3) even) or 4096 bytes, every byte n mod 256.
 * Exits 0 on success, 2 on a bad segment, 3 on a protocol error, 4 on wrong data. */
#include "qshm.h"
#include "peer.h"

static unsigned char byte_of(long i, long j, long len)
{
    return (unsigned char)((i * 31) ^ (j * 7) ^ len);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: queue_cell <mode> <path> <n>\n");
        return 1;
    }
    const char *mode = argv[1];
    long n = atol(argv[3]);
    int fd;
    size_t len;
    void *map = peer_map_file(argv[2], &fd, &len);
    if (qshm_check(map, len) != 0) {
        fprintf(stderr, "not a qshm segment\n");
        return 2;
    }
    struct qshm_header *h = (struct qshm_header *)map;
    void *data = qshm_data(h);
    uint64_t size = h->data_size;
    static unsigned char buf[1 << 16];
    int rc;

    if (strcmp(mode, "queue-produce") == 0 || strcmp(mode, "queue-consume") == 0) {
        int producer = strcmp(mode, "queue-produce") == 0;
        struct qshm_queue_end end;
        rc = qshm_queue_open(&end, data, size,
                             producer ? QSHM_QUEUE_PRODUCER : QSHM_QUEUE_CONSUMER, fd);
        if (rc != 0) {
            fprintf(stderr, "qshm_queue_open: %s\n", strerror(-rc));
            return 3;
        }
        for (long i = 0; i < n; i++) {
            long len = (i * 37) % 201;
            if (producer) {
                for (long j = 0; j < len; j++)
                    buf[j] = byte_of(i, j, len);
                rc = qshm_queue_send(&end, buf, (uint32_t)len, 60000);
                if (rc != 0) {
                    fprintf(stderr, "qshm_queue_send %ld: %s\n", i, strerror(-rc));
                    return 3;
                }
            } else {
                int64_t got = qshm_queue_recv(&end, buf, sizeof(buf), 60000);
                if (got < 0) {
                    fprintf(stderr, "qshm_queue_recv %ld: %s\n", i, strerror((int)-got));
                    return 3;
                }
                if (got != len) {
                    fprintf(stderr, "message %ld: %lld bytes, expected %ld\n", i,
                            (long long)got, len);
                    return 4;
                }
                for (long j = 0; j < len; j++)
                    if (buf[j] != byte_of(i, j, len)) {
                        fprintf(stderr, "message %ld: byte %ld wrong\n", i, j);
                        return 4;
                    }
            }
        }
        if (!producer) {
            int64_t end_rc = qshm_queue_recv(&end, buf, sizeof(buf), 60000);
            if (end_rc != -EPIPE) {
                fprintf(stderr, "after the last message: %lld\n", (long long)end_rc);
                return 3;
            }
        }
        qshm_queue_close(&end);
        return 0;
    }

    struct qshm_cell *cell = (struct qshm_cell *)data;
    if (strcmp(mode, "cell-write") == 0) {
        rc = qshm_cell_format(data, size, 4096);
        if (rc == 0)
            rc = qshm_cell_attach_writer(cell, fd);
        if (rc != 0) {
            fprintf(stderr, "cell: %s\n", strerror(-rc));
            return 3;
        }
        printf("ready\n");
        fflush(stdout);
        for (long i = 1; i <= n; i++) {
            uint32_t len = (i / 3) % 2 == 0 ? 64 : 4096;
            memset(buf, (int)(i & 0xff), len);
            if (qshm_cell_write(cell, buf, len) < 0)
                return 3;
        }
        qshm_cell_close_writer(cell);
        return 0;
    }
    if (strcmp(mode, "cell-read") == 0) {
        rc = qshm_cell_check(data, size);
        if (rc != 0) {
            fprintf(stderr, "qshm_cell_check: %s\n", strerror(-rc));
            return 2;
        }
        uint32_t seq = 0, last = 0;
        for (long i = 0; i < n; i++) {
            if (i % 1000 == 999 && qshm_cell_wait_next(cell, last, 1000, fd) < 0)
                return 3;
            int64_t len = qshm_cell_read(cell, buf, sizeof(buf), &seq);
            if (len < 0)
                return 3;
            if (seq < last || (len != 64 && len != 4096)) {
                fprintf(stderr, "read %ld: seq %u after %u, %lld bytes\n", i, seq, last,
                        (long long)len);
                return 4;
            }
            for (int64_t j = 1; j < len; j++)
                if (buf[j] != buf[0]) {
                    fprintf(stderr, "read %ld: torn value\n", i);
                    return 4;
                }
            last = seq;
        }
        return 0;
    }
    fprintf(stderr, "unknown mode %s\n", mode);
    return 1;
}
