/*
 * The scalar reference: plain C, one element at a time, auto-vectorization disabled so it
 * stays a reference (and a fair baseline for the SIMD paths). Every SIMD path performs
 * exactly these operations in exactly this order; see kernels_simd.h.
 */
#include "kernels_internal.h"
#include "kernels_scalar_common.h"

dc_step_stats dc_sgd_step_scalar(const dc_sgd_params *hp, float *w, const float *g,
                                 float *buf, size_t n) {
    dc_step_stats s = {0, 0, 0.0};
    const float lr = hp->lr, mu = hp->momentum, damp = 1.0f - hp->dampening;
    const float keep = hp->reg.decay_keep;
    DC_NO_VECTORIZE
    for (size_t i = 0; i < n; i++) {
        const float w0 = w[i];
        const float gi = dc_coupled(&hp->reg, w0, g[i]);
        const float gs = hp->lr_in_momentum ? lr * gi : gi;   /* what enters the buffer */
        float d = gs;
        if (mu != 0.0f) {
            const float b = hp->first_step ? gs : mu * buf[i] + damp * gs;
            buf[i] = b;
            d = hp->nesterov ? gs + mu * b : b;
        }
        const float step = hp->lr_in_momentum ? d : lr * d;
        const float w1 = w0 * keep - step;
        w[i] = w1;
        dc_account(&s, g[i], w1);
    }
    return s;
}

dc_step_stats dc_adam_step_scalar(const dc_adam_params *hp, float *w, const float *g,
                                  float *m, float *v, float *vmax, size_t n) {
    dc_step_stats s = {0, 0, 0.0};
    const float ob1 = hp->one_minus_beta1, b2 = hp->beta2, ob2 = hp->one_minus_beta2;
    const float ss = hp->step_size, ibc2 = hp->inv_bc2_sqrt, eps = hp->eps;
    const float keep = hp->reg.decay_keep;
    DC_NO_VECTORIZE
    for (size_t i = 0; i < n; i++) {
        const float w0 = w[i];
        const float gi = dc_coupled(&hp->reg, w0, g[i]);
        const float mi = m[i] + ob1 * (gi - m[i]);          /* torch lerp_(g, 1 − β1) */
        const float vi = v[i] * b2 + ob2 * gi * gi;         /* torch mul_(β2).addcmul_(g, g, 1 − β2) */
        m[i] = mi;
        v[i] = vi;
        float vd = vi;
        if (hp->amsgrad) {
            vd = vmax[i] > vi ? vmax[i] : vi;
            vmax[i] = vd;
        }
        const float denom = sqrtf(vd) * ibc2 + eps;
        const float w1 = w0 * keep - (ss * mi) / denom;
        w[i] = w1;
        dc_account(&s, g[i], w1);
    }
    return s;
}

/* One probe loop per state count, so the count is a constant inside each loop; `st` holds the state arrays. */
#define DC_PROBE_SCALAR_LOOP(k)                                            \
    DC_NO_VECTORIZE                                                        \
    for (size_t i = 0; i < n; i++) {                                       \
        const float gi = scale * g[i];                                     \
        w[i] += gi;                                                        \
        for (int32_t j = 0; j < (k); j++) st[j][i] += gi;                  \
    }

void dc_probe_scalar(float scale, float *w, const float *g, float *const *states, int32_t state_count, size_t n) {
    float *st[DC_PROBE_MAX_STATES] = {NULL}; /* local: stores through w cannot change them */
    for (int32_t j = 0; j < state_count && j < DC_PROBE_MAX_STATES; j++) st[j] = states[j];
    switch (state_count) {
    case 0: DC_PROBE_SCALAR_LOOP(0) break;
    case 1: DC_PROBE_SCALAR_LOOP(1) break;
    case 2: DC_PROBE_SCALAR_LOOP(2) break;
    default: DC_PROBE_SCALAR_LOOP(3) break;
    }
}

void dc_coupled_scalar(const dc_reg_terms *reg, const float *w, const float *g, float *out, size_t n) {
    DC_NO_VECTORIZE
    for (size_t i = 0; i < n; i++) out[i] = dc_coupled(reg, w[i], g[i]);
}

dc_step_stats dc_apply_direction_scalar(const dc_reg_terms *reg, float *w, const float *g, const float *d,
                                        size_t n) {
    dc_step_stats s = {0, 0, 0.0};
    const float keep = reg->decay_keep;
    DC_NO_VECTORIZE
    for (size_t i = 0; i < n; i++) {
        const float w1 = w[i] * keep - d[i];
        w[i] = w1;
        dc_account(&s, g[i], w1);
    }
    return s;
}
