/* Per-ISA entry points of the family kernels (decoupled_kernels_family.h), wired into the
 * tables by dispatch.c after the SGD/Adam entries. Included by kernels_internal.h. */
#ifndef DECOUPLED_KERNELS_FAMILY_INTERNAL_H
#define DECOUPLED_KERNELS_FAMILY_INTERNAL_H
#include "decoupled_kernels.h"

#define DC_DECLARE_FAMILY(isa)                                                                    \
    dc_step_stats dc_adagrad_step_##isa(const dc_adagrad_params *, float *, const float *,       \
                                        float *, size_t);                                         \
    dc_step_stats dc_rmsprop_step_##isa(const dc_rmsprop_params *, float *, const float *,       \
                                        float *, float *, float *, size_t);                       \
    dc_step_stats dc_adadelta_step_##isa(const dc_adadelta_params *, float *, const float *,     \
                                         float *, float *, size_t);                               \
    dc_step_stats dc_adamax_step_##isa(const dc_adamax_params *, float *, const float *,         \
                                       float *, float *, size_t);                                 \
    dc_step_stats dc_nadam_step_##isa(const dc_nadam_params *, float *, const float *, float *,   \
                                      float *, size_t);                                           \
    dc_step_stats dc_radam_step_##isa(const dc_radam_params *, float *, const float *, float *,   \
                                      float *, size_t);

/* The table entries, in the order of dc_kernel_table's fields after `probe`. */
#define DC_FAMILY_ENTRIES(isa)                                                                    \
    dc_adagrad_step_##isa, dc_rmsprop_step_##isa, dc_adadelta_step_##isa, dc_adamax_step_##isa,   \
        dc_nadam_step_##isa, dc_radam_step_##isa

DC_DECLARE_FAMILY(scalar)
#if DC_HAVE_AVX2
DC_DECLARE_FAMILY(avx2)
#endif
#if DC_HAVE_AVX512
DC_DECLARE_FAMILY(avx512)
#endif
#if DC_HAVE_NEON
DC_DECLARE_FAMILY(neon)
#endif
#endif
