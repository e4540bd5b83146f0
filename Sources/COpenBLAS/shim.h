#ifndef DECOUPLED_COPENBLAS_SHIM_H
#define DECOUPLED_COPENBLAS_SHIM_H

// OpenBLAS's <cblas.h> also declares openblas_set_num_threads / openblas_get_num_threads /
// openblas_get_config, which the models use to pin OpenBLAS to one thread per call (they
// parallelise deterministically themselves).
#include <cblas.h>

// A relaxed atomic counter for the models' work distribution (tasks are claimed dynamically;
// which thread runs a task never changes its result). Kept here so Swift needs no
// `Synchronization` import (macOS 15-only).
static inline long decoupled_atomic_fetch_add(long *counter, long value) {
    return __atomic_fetch_add(counter, value, __ATOMIC_RELAXED);
}

static inline void decoupled_atomic_store(long *counter, long value) {
    __atomic_store_n(counter, value, __ATOMIC_RELAXED);
}

#endif
