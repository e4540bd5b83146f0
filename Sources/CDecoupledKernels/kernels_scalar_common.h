/* What every scalar reference kernel shares (kernels_scalar.c, kernels_family_scalar.c): the
 * coupled terms, the statistics, and the pragma that keeps the loops scalar. */
#ifndef DECOUPLED_KERNELS_SCALAR_COMMON_H
#define DECOUPLED_KERNELS_SCALAR_COMMON_H
#include "decoupled_kernels.h"
#include <math.h>

#if defined(__clang__)
#define DC_NO_VECTORIZE _Pragma("clang loop vectorize(disable) interleave(disable)")
#else
#define DC_NO_VECTORIZE _Pragma("GCC novector")
#endif

/* sign(w) as a float: +1, −1, or 0 for ±0 and NaN. */
static inline float dc_sign(float w) { return (float)(w > 0.0f) - (float)(w < 0.0f); }

/* Coupled regularizers: the gradient the optimizer sees. */
static inline float dc_coupled(const dc_reg_terms *r, float w, float g) {
    g = g + r->l2 * w;
    return g + r->l1 * dc_sign(w);
}

static inline void dc_account(dc_step_stats *s, float g, float w) {
    s->nonfinite_grads += !isfinite(g);
    s->zero_params += (w == 0.0f);
    s->param_sumsq += (double)w * (double)w;
}
#endif
