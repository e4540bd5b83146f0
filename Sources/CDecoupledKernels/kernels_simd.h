/*
 * The SIMD kernel bodies, written once and instantiated per ISA. The including file
 * defines DC_ISA (name suffix), DC_VW (lanes), the vector type dc_v, the accumulator
 * type dc_acc, and these inline operations:
 *   vload vstore vset vadd vsub vmul vdiv vsqrt   plain IEEE float lanes
 *   vmax_keep(a, b)   a > b ? a : b per lane (the scalar reference's NaN behaviour)
 *   vsign(w)          +1, −1, or 0 for ±0 and NaN
 *   count_nonfinite(g), count_zero(w)   lane counts
 *   acc_init(), acc_sumsq(&acc, w), acc_total(&acc)   Σ w² in double
 * The operations and their order mirror kernels_scalar.c exactly, with no fused
 * multiply-add, so every path rounds like the reference. A tail shorter than one vector
 * goes through the same vector code on a zero-padded copy, so an element's result never
 * depends on where a chunk boundary fell.
 */
#include <math.h>
#include <string.h>

#define DC_CAT2(a, b) a##_##b
#define DC_CAT(a, b) DC_CAT2(a, b)
#define DC_FN(name) DC_CAT(name, DC_ISA)

static inline dc_v DC_FN(coupled)(dc_v l2, dc_v l1, dc_v w, dc_v g) {
    g = vadd(g, vmul(l2, w));
    return vadd(g, vmul(l1, vsign(w)));
}

/* Tail statistics, element by element, exactly as the scalar reference counts them. */
static inline void DC_FN(account_tail)(dc_step_stats *s, const float *g, const float *w, size_t n) {
    for (size_t i = 0; i < n; i++) {
        s->nonfinite_grads += !isfinite(g[i]);
        s->zero_params += (w[i] == 0.0f);
        s->param_sumsq += (double)w[i] * (double)w[i];
    }
}

typedef struct {
    dc_v lr, mu, damp, keep, l2, l1;
    int has_momentum, nesterov, first_step, lr_in_momentum;
} DC_FN(sgd_consts);

/* One vector of SGD at w/g/buf; returns the new weights (already stored). */
static inline dc_v DC_FN(sgd_vec)(const DC_FN(sgd_consts) *c, float *w, const float *g, float *buf) {
    const dc_v w0 = vload(w);
    const dc_v gi = DC_FN(coupled)(c->l2, c->l1, w0, vload(g));
    const dc_v gs = c->lr_in_momentum ? vmul(c->lr, gi) : gi;
    dc_v d = gs;
    if (c->has_momentum) {
        const dc_v b = c->first_step ? gs : vadd(vmul(c->mu, vload(buf)), vmul(c->damp, gs));
        vstore(buf, b);
        d = c->nesterov ? vadd(gs, vmul(c->mu, b)) : b;
    }
    const dc_v step = c->lr_in_momentum ? d : vmul(c->lr, d);
    const dc_v w1 = vsub(vmul(w0, c->keep), step);
    vstore(w, w1);
    return w1;
}

dc_step_stats DC_FN(dc_sgd_step)(const dc_sgd_params *hp, float *w, const float *g,
                                 float *buf, size_t n) {
    const DC_FN(sgd_consts) c = {
        vset(hp->lr), vset(hp->momentum), vset(1.0f - hp->dampening), vset(hp->reg.decay_keep),
        vset(hp->reg.l2), vset(hp->reg.l1),
        hp->momentum != 0.0f, hp->nesterov != 0, hp->first_step != 0, hp->lr_in_momentum != 0,
    };
    dc_step_stats s = {0, 0, 0.0};
    dc_acc acc = acc_init();
    size_t i = 0;
    for (; i + DC_VW <= n; i += DC_VW) {
        const dc_v gv = vload(g + i);
        const dc_v w1 = DC_FN(sgd_vec)(&c, w + i, g + i, c.has_momentum ? buf + i : NULL);
        s.nonfinite_grads += count_nonfinite(gv);
        s.zero_params += count_zero(w1);
        acc_sumsq(&acc, w1);
    }
    s.param_sumsq = acc_total(&acc);
    if (i < n) {
        const size_t r = n - i;
        float tw[DC_VW] = {0}, tg[DC_VW] = {0}, tb[DC_VW] = {0};
        memcpy(tw, w + i, r * sizeof(float));
        memcpy(tg, g + i, r * sizeof(float));
        if (c.has_momentum) memcpy(tb, buf + i, r * sizeof(float));
        DC_FN(sgd_vec)(&c, tw, tg, tb);
        memcpy(w + i, tw, r * sizeof(float));
        if (c.has_momentum) memcpy(buf + i, tb, r * sizeof(float));
        DC_FN(account_tail)(&s, tg, tw, r);
    }
    return s;
}

typedef struct {
    dc_v ob1, b2, ob2, ss, ibc2, eps, keep, l2, l1;
    int amsgrad;
} DC_FN(adam_consts);

static inline dc_v DC_FN(adam_vec)(const DC_FN(adam_consts) *c, float *w, const float *g,
                                   float *m, float *v, float *vmax) {
    const dc_v w0 = vload(w);
    const dc_v gi = DC_FN(coupled)(c->l2, c->l1, w0, vload(g));
    const dc_v m0 = vload(m);
    const dc_v mi = vadd(m0, vmul(c->ob1, vsub(gi, m0)));
    const dc_v vi = vadd(vmul(vload(v), c->b2), vmul(vmul(c->ob2, gi), gi));
    vstore(m, mi);
    vstore(v, vi);
    dc_v vd = vi;
    if (c->amsgrad) {
        vd = vmax_keep(vload(vmax), vi);
        vstore(vmax, vd);
    }
    const dc_v denom = vadd(vmul(vsqrt(vd), c->ibc2), c->eps);
    const dc_v w1 = vsub(vmul(w0, c->keep), vdiv(vmul(c->ss, mi), denom));
    vstore(w, w1);
    return w1;
}

dc_step_stats DC_FN(dc_adam_step)(const dc_adam_params *hp, float *w, const float *g,
                                  float *m, float *v, float *vmax, size_t n) {
    const DC_FN(adam_consts) c = {
        vset(hp->one_minus_beta1), vset(hp->beta2), vset(hp->one_minus_beta2),
        vset(hp->step_size), vset(hp->inv_bc2_sqrt), vset(hp->eps), vset(hp->reg.decay_keep),
        vset(hp->reg.l2), vset(hp->reg.l1), hp->amsgrad != 0,
    };
    dc_step_stats s = {0, 0, 0.0};
    dc_acc acc = acc_init();
    size_t i = 0;
    for (; i + DC_VW <= n; i += DC_VW) {
        const dc_v gv = vload(g + i);
        const dc_v w1 = DC_FN(adam_vec)(&c, w + i, g + i, m + i, v + i, c.amsgrad ? vmax + i : NULL);
        s.nonfinite_grads += count_nonfinite(gv);
        s.zero_params += count_zero(w1);
        acc_sumsq(&acc, w1);
    }
    s.param_sumsq = acc_total(&acc);
    if (i < n) {
        const size_t r = n - i;
        float tw[DC_VW] = {0}, tg[DC_VW] = {0}, tm[DC_VW] = {0}, tv[DC_VW] = {0}, tx[DC_VW] = {0};
        memcpy(tw, w + i, r * sizeof(float));
        memcpy(tg, g + i, r * sizeof(float));
        memcpy(tm, m + i, r * sizeof(float));
        memcpy(tv, v + i, r * sizeof(float));
        if (c.amsgrad) memcpy(tx, vmax + i, r * sizeof(float));
        DC_FN(adam_vec)(&c, tw, tg, tm, tv, tx);
        memcpy(w + i, tw, r * sizeof(float));
        memcpy(m + i, tm, r * sizeof(float));
        memcpy(v + i, tv, r * sizeof(float));
        if (c.amsgrad) memcpy(vmax + i, tx, r * sizeof(float));
        DC_FN(account_tail)(&s, tg, tw, r);
    }
    return s;
}

/* The probe's body for a constant number of state arrays (inlined once per count). */
static inline __attribute__((always_inline)) void DC_FN(probe_states)(
    float scale, float *w, const float *g, float *const *states, const int32_t k, size_t n) {
    float *st[DC_PROBE_MAX_STATES] = {NULL}; /* local: stores through w cannot change them */
    for (int32_t j = 0; j < k && j < DC_PROBE_MAX_STATES; j++) st[j] = states[j];
    const dc_v sv = vset(scale);
    size_t i = 0;
    for (; i + DC_VW <= n; i += DC_VW) {
        const dc_v gi = vmul(sv, vload(g + i));
        vstore(w + i, vadd(vload(w + i), gi));
        for (int32_t j = 0; j < k; j++) vstore(st[j] + i, vadd(vload(st[j] + i), gi));
    }
    for (; i < n; i++) {
        const float gi = scale * g[i];
        w[i] += gi;
        for (int32_t j = 0; j < k; j++) st[j][i] += gi;
    }
}

void DC_FN(dc_probe)(float scale, float *w, const float *g, float *const *states, int32_t state_count, size_t n) {
    switch (state_count) {
    case 0: DC_FN(probe_states)(scale, w, g, states, 0, n); break;
    case 1: DC_FN(probe_states)(scale, w, g, states, 1, n); break;
    case 2: DC_FN(probe_states)(scale, w, g, states, 2, n); break;
    default: DC_FN(probe_states)(scale, w, g, states, 3, n); break;
    }
}

void DC_FN(dc_coupled)(const dc_reg_terms *reg, const float *w, const float *g, float *out, size_t n) {
    const dc_v l2 = vset(reg->l2), l1 = vset(reg->l1);
    size_t i = 0;
    for (; i + DC_VW <= n; i += DC_VW) vstore(out + i, DC_FN(coupled)(l2, l1, vload(w + i), vload(g + i)));
    if (i < n) {
        const size_t r = n - i;
        float tw[DC_VW] = {0}, tg[DC_VW] = {0}, to[DC_VW];
        memcpy(tw, w + i, r * sizeof(float));
        memcpy(tg, g + i, r * sizeof(float));
        vstore(to, DC_FN(coupled)(l2, l1, vload(tw), vload(tg)));
        memcpy(out + i, to, r * sizeof(float));
    }
}

dc_step_stats DC_FN(dc_apply_direction)(const dc_reg_terms *reg, float *w, const float *g, const float *d,
                                        size_t n) {
    const dc_v keep = vset(reg->decay_keep);
    dc_step_stats s = {0, 0, 0.0};
    dc_acc acc = acc_init();
    size_t i = 0;
    for (; i + DC_VW <= n; i += DC_VW) {
        const dc_v w1 = vsub(vmul(vload(w + i), keep), vload(d + i));
        vstore(w + i, w1);
        s.nonfinite_grads += count_nonfinite(vload(g + i));
        s.zero_params += count_zero(w1);
        acc_sumsq(&acc, w1);
    }
    s.param_sumsq = acc_total(&acc);
    if (i < n) {
        const size_t r = n - i;
        float tw[DC_VW] = {0}, tg[DC_VW] = {0}, td[DC_VW] = {0};
        memcpy(tw, w + i, r * sizeof(float));
        memcpy(tg, g + i, r * sizeof(float));
        memcpy(td, d + i, r * sizeof(float));
        vstore(tw, vsub(vmul(vload(tw), keep), vload(td)));
        memcpy(w + i, tw, r * sizeof(float));
        DC_FN(account_tail)(&s, tg, tw, r);
    }
    return s;
}
