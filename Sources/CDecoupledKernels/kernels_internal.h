/* Per-ISA entry points, wired into tables by dispatch.c. Not part of the public header. */
#ifndef DECOUPLED_KERNELS_INTERNAL_H
#define DECOUPLED_KERNELS_INTERNAL_H
#include "decoupled_kernels.h"

#define DC_DECLARE_PATH(isa)                                                                 \
    dc_step_stats dc_sgd_step_##isa(const dc_sgd_params *, float *, const float *, float *,  \
                                    size_t);                                                 \
    dc_step_stats dc_adam_step_##isa(const dc_adam_params *, float *, const float *, float *, \
                                     float *, float *, size_t);                              \
    void dc_probe_##isa(float, float *, const float *, float *const *, int32_t, size_t);        \
    void dc_coupled_##isa(const dc_reg_terms *, const float *, const float *, float *, size_t);  \
    dc_step_stats dc_apply_direction_##isa(const dc_reg_terms *, float *, const float *,         \
                                           const float *, size_t);

DC_DECLARE_PATH(scalar)
#if defined(__x86_64__)
#define DC_HAVE_AVX2 1
#define DC_HAVE_AVX512 1
DC_DECLARE_PATH(avx2)
DC_DECLARE_PATH(avx512)
#endif
#if defined(__aarch64__)
#define DC_HAVE_NEON 1
DC_DECLARE_PATH(neon)
#endif
#include "kernels_family_internal.h"
#endif
