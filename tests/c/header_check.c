/* Compiled by ci/header.sh in every C and C++ dialect qshm.h supports: the header must
 * compile cleanly with -Wall -Wextra -Wpedantic -Werror and define no feature macro the
 * program did not ask for. Uses every function so that each is checked where it is called,
 * and links (the program is not run). */
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
    return qshm_lock_fd(h, -1) < 0 || qshm_unlock(h) != 0;
}
