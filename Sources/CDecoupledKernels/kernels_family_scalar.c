/*
 * The scalar reference of the family kernels (decoupled_kernels_family.h): plain C, one
 * element at a time, auto-vectorization disabled. Each loop body is its optimizer's Swift
 * element function (Sources/DecoupledCore/Plugins/Optimizers/) operation for operation,
 * wrapped in the engine's pipeline: coupled terms, direction d, w ← keep·w − d, statistics.
 * kernels_family_simd.h performs exactly these operations in exactly this order.
 */
#include "kernels_internal.h"
#include "kernels_scalar_common.h"

/* PyTorch's lerp_ with a per-step weight (dc_lerp). */
static inline float dc_lerp_apply(const dc_lerp *l, float a, float b) {
    return l->from_end ? b - (b - a) * l->one_minus_weight : a + l->weight * (b - a);
}

dc_step_stats dc_adagrad_step_scalar(const dc_adagrad_params *hp, float *w, const float *g,
                                     float *sum, size_t n) {
    dc_step_stats s = {0, 0, 0.0};
    const float clr = hp->clr, eps = hp->eps, keep = hp->reg.decay_keep;
    DC_NO_VECTORIZE
    for (size_t i = 0; i < n; i++) {
        const float w0 = w[i];
        const float gi = dc_coupled(&hp->reg, w0, g[i]);
        const float si = sum[i] + gi * gi;
        sum[i] = si;
        const float d = clr * gi / (sqrtf(si) + eps);
        const float w1 = w0 * keep - d;
        w[i] = w1;
        dc_account(&s, g[i], w1);
    }
    return s;
}

dc_step_stats dc_rmsprop_step_scalar(const dc_rmsprop_params *hp, float *w, const float *g,
                                     float *square_avg, float *grad_avg, float *momentum_buffer,
                                     size_t n) {
    dc_step_stats s = {0, 0, 0.0};
    const float lr = hp->lr, alpha = hp->alpha, oma = hp->one_minus_alpha, eps = hp->eps;
    const float mu = hp->momentum, keep = hp->reg.decay_keep;
    DC_NO_VECTORIZE
    for (size_t i = 0; i < n; i++) {
        const float w0 = w[i];
        const float gi = dc_coupled(&hp->reg, w0, g[i]);
        const float v = square_avg[i] * alpha + oma * gi * gi;
        square_avg[i] = v;
        float root;
        if (hp->centered) {
            const float mean = dc_lerp_apply(&hp->grad_avg, grad_avg[i], gi);
            grad_avg[i] = mean;
            /* Swift writes v + −1·mean·mean: −1·mean is exact, so this is v − mean·mean. */
            root = sqrtf(v - mean * mean);
        } else {
            root = sqrtf(v);
        }
        root = root + eps;
        float d;
        if (hp->has_momentum) {
            const float buf = momentum_buffer[i] * mu + gi / root;
            momentum_buffer[i] = buf;
            d = lr * buf;
        } else {
            d = lr * gi / root;
        }
        const float w1 = w0 * keep - d;
        w[i] = w1;
        dc_account(&s, g[i], w1);
    }
    return s;
}

dc_step_stats dc_adadelta_step_scalar(const dc_adadelta_params *hp, float *w, const float *g,
                                      float *square_avg, float *acc_delta, size_t n) {
    dc_step_stats s = {0, 0, 0.0};
    const float lr = hp->lr, rho = hp->rho, omr = hp->one_minus_rho, eps = hp->eps;
    const float keep = hp->reg.decay_keep;
    DC_NO_VECTORIZE
    for (size_t i = 0; i < n; i++) {
        const float w0 = w[i];
        const float gi = dc_coupled(&hp->reg, w0, g[i]);
        const float v = square_avg[i] * rho + omr * gi * gi;
        square_avg[i] = v;
        const float u = acc_delta[i];
        const float delta = sqrtf(u + eps) / sqrtf(v + eps) * gi;
        acc_delta[i] = u * rho + omr * delta * delta;
        const float w1 = w0 * keep - lr * delta;
        w[i] = w1;
        dc_account(&s, g[i], w1);
    }
    return s;
}

dc_step_stats dc_adamax_step_scalar(const dc_adamax_params *hp, float *w, const float *g,
                                    float *exp_avg, float *exp_inf, size_t n) {
    dc_step_stats s = {0, 0, 0.0};
    const float clr = hp->clr, b2 = hp->beta2, eps = hp->eps, keep = hp->reg.decay_keep;
    DC_NO_VECTORIZE
    for (size_t i = 0; i < n; i++) {
        const float w0 = w[i];
        const float gi = dc_coupled(&hp->reg, w0, g[i]);
        const float m = dc_lerp_apply(&hp->exp_avg, exp_avg[i], gi);
        const float decayed = exp_inf[i] * b2, norm = fabsf(gi) + eps;
        const float u = norm > decayed ? norm : decayed;
        exp_avg[i] = m;
        exp_inf[i] = u;
        const float w1 = w0 * keep - clr * m / u;
        w[i] = w1;
        dc_account(&s, g[i], w1);
    }
    return s;
}

/* m ← lerp(m, g, 1 − β1), v ← v·β2 + (1 − β2)·g·g, as AdamMoments.update. */
static inline void dc_moments_update(const dc_moments *c, float gi, float *m, float *v) {
    *m = dc_lerp_apply(&c->exp_avg, *m, gi);
    *v = *v * c->beta2 + c->one_minus_beta2 * gi * gi;
}

dc_step_stats dc_nadam_step_scalar(const dc_nadam_params *hp, float *w, const float *g,
                                   float *exp_avg, float *exp_avg_sq, size_t n) {
    dc_step_stats s = {0, 0, 0.0};
    const float gs = hp->grad_scale, as = hp->avg_scale, bc2 = hp->bc2, eps = hp->eps;
    const float keep = hp->reg.decay_keep;
    DC_NO_VECTORIZE
    for (size_t i = 0; i < n; i++) {
        const float w0 = w[i];
        const float gi = dc_coupled(&hp->reg, w0, g[i]);
        float m = exp_avg[i], v = exp_avg_sq[i];
        dc_moments_update(&hp->moments, gi, &m, &v);
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        const float r = sqrtf(v / bc2) + eps;
        const float w1 = w0 * keep - (gs * gi / r + as * m / r);
        w[i] = w1;
        dc_account(&s, g[i], w1);
    }
    return s;
}

dc_step_stats dc_radam_step_scalar(const dc_radam_params *hp, float *w, const float *g,
                                   float *exp_avg, float *exp_avg_sq, size_t n) {
    dc_step_stats s = {0, 0, 0.0};
    const float lr = hp->lr, bc1 = hp->bc1, sbc2 = hp->sqrt_bc2, eps = hp->eps, rect = hp->rect;
    const float keep = hp->reg.decay_keep;
    DC_NO_VECTORIZE
    for (size_t i = 0; i < n; i++) {
        const float w0 = w[i];
        const float gi = dc_coupled(&hp->reg, w0, g[i]);
        float m = exp_avg[i], v = exp_avg_sq[i];
        dc_moments_update(&hp->moments, gi, &m, &v);
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        const float corrected = m / bc1 * lr;
        const float d = hp->rectified ? corrected * (sbc2 / (sqrtf(v) + eps)) * rect : corrected;
        const float w1 = w0 * keep - d;
        w[i] = w1;
        dc_account(&s, g[i], w1);
    }
    return s;
}
