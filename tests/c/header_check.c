/* Compiled by ci/header.sh in every C and C++ dialect qshm.h supports: the header must
 * compile cleanly with -Wall -Wextra -Wpedantic -Werror and define no feature macro the
 * program did not ask for. Uses every function so that each is checked where it is called,
 * and links (the program is not run; its assertions hold if it is). */
#include "qshm.h"

/* C compilers define no feature macro themselves (C++ ones define _GNU_SOURCE). */
#if !defined(__cplusplus) && !defined(QSHM_CHECK_ASKED_GNU) && defined(_GNU_SOURCE)
#error "qshm.h defined _GNU_SOURCE"
#endif

int main(void)
{
    static uint64_t storage[64];
    struct qshm_header *h = (struct qshm_header *)storage;
    memcpy(h->magic, QSHM_MAGIC, 8);
    h->version = QSHM_VERSION;
    h->header_size = 128;
    h->data_size = sizeof(storage) - 128;
    h->byte_order = QSHM_BYTE_ORDER;
    if (qshm_check(h, sizeof(storage)) != 0)
        return 1;
    int r = qshm_lock(h);
    if (r == QSHM_OWNER_DIED)
        qshm_mark_consistent(h);
    ((unsigned char *)qshm_data(h))[0] = 1;
    qshm_unlock(h);
    if (qshm_trylock_fd(h, -1) == 0)
        qshm_unlock(h);
    if (qshm_lock_fd(h, -1) < 0 || qshm_unlock(h) != 0)
        return 1;

    /* The queue and the cell, in memory of our own. */
    static uint64_t area[128];
    unsigned char msg[16] = {1, 2, 3};
    struct qshm_queue_end tx, rx;
    if (qshm_queue_format(area, sizeof(area), 512, 100) != 0 ||
        qshm_queue_open(&tx, area, sizeof(area), QSHM_QUEUE_PRODUCER, -1) != 0 ||
        qshm_queue_open(&rx, area, sizeof(area), QSHM_QUEUE_CONSUMER, -1) != 0)
        return 1;
    if (qshm_queue_try_send(&tx, msg, 3) != 0 || qshm_queue_send(&tx, msg, 16, 0) != 0)
        return 1;
    if (qshm_queue_try_recv(&rx, msg, sizeof(msg)) != 3 ||
        qshm_queue_recv(&rx, msg, sizeof(msg), -1) != 16)
        return 1;
    qshm_queue_close(&tx);
    if (qshm_queue_recv(&rx, msg, sizeof(msg), 0) != -EPIPE)
        return 1;
    qshm_queue_close(&rx);

    memset(area, 0, sizeof(area));
    struct qshm_cell *c = (struct qshm_cell *)(void *)area;
    uint32_t seq = 0;
    if (qshm_cell_format(area, sizeof(area), 64) != 0 || qshm_cell_check(area, sizeof(area)) != 0 ||
        qshm_cell_attach_writer(c, -1) != 0 || qshm_cell_write(c, msg, 5) != 2 ||
        qshm_cell_read(c, msg, sizeof(msg), &seq) != 5 || seq != 2 ||
        qshm_cell_wait_next(c, 0, 0, -1) != 2)
        return 1;
    qshm_cell_close_writer(c);
    return qshm_cell_wait_next(c, 2, -1, -1) != -EPIPE;
}
