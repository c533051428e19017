/* The C side of the lock benchmarks: the qshm.h protocol and a bare CAS pair, each looped
 * n times in C so that the call from Rust is amortised. */
#include "qshm.h"

void qshm_bench_protocol(struct qshm_header *h, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        qshm_lock(h);
        qshm_unlock(h);
    }
}

void qshm_bench_cas_pair(uint32_t *word, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        uint32_t expected = 0;
        while (!__atomic_compare_exchange_n(word, &expected, 1, 0, __ATOMIC_ACQUIRE,
                                            __ATOMIC_RELAXED))
            expected = 0;
        __atomic_store_n(word, 0, __ATOMIC_RELEASE);
    }
}
