/*
 * The SIMD bodies of the family kernels (decoupled_kernels_family.h), written once and
 * instantiated per ISA right after kernels_simd.h, whose primitives and helpers
 * (DC_FN(coupled), DC_FN(account_tail)) they use. Every operation mirrors
 * kernels_family_scalar.c in order, without fused multiply-add, so each path rounds like
 * the reference. Adamax's max(u·β2, |g| + ε) is vmax_keep(|g| + ε, u·β2), the reference's
 * `norm > decayed ? norm : decayed` lane by lane; |g| is max(g, 0 − g), exact for every
 * non-NaN g.
 *
 * One driver runs every kernel: whole vectors in place, then a tail shorter than a vector
 * through the same vector code on zero-padded copies, so an element's result never depends
 * on where a piece boundary fell. The driver and the per-vector bodies are always inlined,
 * so each kernel compiles to its own loop with the constant state count folded in.
 */
#define DC_FAMILY_MAX_STATES 3
#define DC_FAMILY_PREFETCH 512
#define DC_ALWAYS_INLINE static inline __attribute__((always_inline))

/* The engine's terms around every direction: coupled L2/L1 before, keep·w − d after. */
typedef struct {
    dc_v l2, l1, keep;
} DC_FN(reg_c);

DC_ALWAYS_INLINE DC_FN(reg_c) DC_FN(reg_consts)(const dc_reg_terms *r) {
    return (DC_FN(reg_c)){vset(r->l2), vset(r->l1), vset(r->decay_keep)};
}

typedef struct {
    dc_v weight, one_minus_weight;
    int from_end;
} DC_FN(lerp_c);

DC_ALWAYS_INLINE DC_FN(lerp_c) DC_FN(lerp_consts)(const dc_lerp *l) {
    return (DC_FN(lerp_c)){vset(l->weight), vset(l->one_minus_weight), l->from_end != 0};
}

DC_ALWAYS_INLINE dc_v DC_FN(lerp)(const DC_FN(lerp_c) *l, dc_v a, dc_v b) {
    return l->from_end ? vsub(b, vmul(vsub(b, a), l->one_minus_weight))
                       : vadd(a, vmul(l->weight, vsub(b, a)));
}

/* Software prefetch DC_FAMILY_PREFETCH floats (2 KiB) ahead of every stream. These kernels
 * wait on the divider and square root, and the guess is that the hardware prefetcher falls
 * behind while they do: with the hint Adadelta's median over seven alternated runs on one
 * worker went from 0.83 to 0.88 of its probe, though single runs under that load still
 * range 0.81–0.93 (docs/kernels.md). A hint only: no value changes. The address is computed as an
 * integer because it may lie past the array's end, where C forbids forming a pointer, and
 * a prefetch there does not fault. */
DC_ALWAYS_INLINE void DC_FN(family_prefetch)(const float *p, int for_write) {
    const void *ahead = (const void *)((uintptr_t)p + DC_FAMILY_PREFETCH * sizeof(float));
    if (for_write) __builtin_prefetch(ahead, 1, 3);
    else __builtin_prefetch(ahead, 0, 3);
}

/* One vector of a family kernel: reads w, g and its states at s[k], writes the new w and
 * states, returns the new w. `c` is the kernel's vector constants. */
typedef dc_v (*DC_FN(family_vec))(const void *c, float *w, const float *g, float *const *s);

DC_ALWAYS_INLINE dc_step_stats DC_FN(family_drive)(DC_FN(family_vec) vec, const void *c, float *w,
                                                   const float *g, float *const *s, int states,
                                                   size_t n) {
    dc_step_stats st = {0, 0, 0.0};
    dc_acc acc = acc_init();
    size_t i = 0;
    for (; i + DC_VW <= n; i += DC_VW) {
        float *si[DC_FAMILY_MAX_STATES] = {NULL, NULL, NULL};
        for (int k = 0; k < states; k++) si[k] = s[k] + i;
        DC_FN(family_prefetch)(w + i, 1);
        DC_FN(family_prefetch)(g + i, 0);
        for (int k = 0; k < states; k++) DC_FN(family_prefetch)(s[k] + i, 1);
        const dc_v gv = vload(g + i);
        const dc_v w1 = vec(c, w + i, g + i, si);
        st.nonfinite_grads += count_nonfinite(gv);
        st.zero_params += count_zero(w1);
        acc_sumsq(&acc, w1);
    }
    st.param_sumsq = acc_total(&acc);
    if (i < n) {
        const size_t r = n - i;
        float tw[DC_VW] = {0}, tg[DC_VW] = {0}, ts[DC_FAMILY_MAX_STATES][DC_VW] = {{0}};
        float *tp[DC_FAMILY_MAX_STATES] = {ts[0], ts[1], ts[2]};
        memcpy(tw, w + i, r * sizeof(float));
        memcpy(tg, g + i, r * sizeof(float));
        for (int k = 0; k < states; k++) memcpy(ts[k], s[k] + i, r * sizeof(float));
        vec(c, tw, tg, tp);
        memcpy(w + i, tw, r * sizeof(float));
        for (int k = 0; k < states; k++) memcpy(s[k] + i, ts[k], r * sizeof(float));
        DC_FN(account_tail)(&st, tg, tw, r);
    }
    return st;
}

/* ---- Adagrad ---- */
typedef struct {
    DC_FN(reg_c) reg;
    dc_v clr, eps;
} DC_FN(adagrad_c);

DC_ALWAYS_INLINE dc_v DC_FN(adagrad_vec)(const void *cp, float *w, const float *g, float *const *s) {
    const DC_FN(adagrad_c) *c = cp;
    const dc_v w0 = vload(w);
    const dc_v gi = DC_FN(coupled)(c->reg.l2, c->reg.l1, w0, vload(g));
    const dc_v sum = vadd(vload(s[0]), vmul(gi, gi));
    vstore(s[0], sum);
    const dc_v d = vdiv(vmul(c->clr, gi), vadd(vsqrt(sum), c->eps));
    const dc_v w1 = vsub(vmul(w0, c->reg.keep), d);
    vstore(w, w1);
    return w1;
}

dc_step_stats DC_FN(dc_adagrad_step)(const dc_adagrad_params *hp, float *w, const float *g,
                                     float *sum, size_t n) {
    const DC_FN(adagrad_c) c = {DC_FN(reg_consts)(&hp->reg), vset(hp->clr), vset(hp->eps)};
    float *const s[DC_FAMILY_MAX_STATES] = {sum, NULL, NULL};
    return DC_FN(family_drive)(DC_FN(adagrad_vec), &c, w, g, s, 1, n);
}

/* ---- RMSprop: slot 0 square_avg, then grad_avg if centered, then momentum_buffer ---- */
typedef struct {
    DC_FN(reg_c) reg;
    DC_FN(lerp_c) grad_avg;
    dc_v lr, alpha, oma, eps, mu;
} DC_FN(rmsprop_c);

DC_ALWAYS_INLINE dc_v DC_FN(rmsprop_body)(const DC_FN(rmsprop_c) *c, int centered, int momentum,
                                          float *w, const float *g, float *const *s) {
    const dc_v w0 = vload(w);
    const dc_v gi = DC_FN(coupled)(c->reg.l2, c->reg.l1, w0, vload(g));
    const dc_v v = vadd(vmul(vload(s[0]), c->alpha), vmul(vmul(c->oma, gi), gi));
    vstore(s[0], v);
    dc_v root;
    if (centered) {
        const dc_v mean = DC_FN(lerp)(&c->grad_avg, vload(s[1]), gi);
        vstore(s[1], mean);
        root = vsqrt(vsub(v, vmul(mean, mean)));
    } else {
        root = vsqrt(v);
    }
    root = vadd(root, c->eps);
    dc_v d;
    if (momentum) {
        float *b = s[centered ? 2 : 1];
        const dc_v buf = vadd(vmul(vload(b), c->mu), vdiv(gi, root));
        vstore(b, buf);
        d = vmul(c->lr, buf);
    } else {
        d = vdiv(vmul(c->lr, gi), root);
    }
    const dc_v w1 = vsub(vmul(w0, c->reg.keep), d);
    vstore(w, w1);
    return w1;
}

/* The four variants, each its own loop so the flags are constants inside it. */
DC_ALWAYS_INLINE dc_v DC_FN(rmsprop_plain_vec)(const void *c, float *w, const float *g, float *const *s) {
    return DC_FN(rmsprop_body)(c, 0, 0, w, g, s);
}
DC_ALWAYS_INLINE dc_v DC_FN(rmsprop_centered_vec)(const void *c, float *w, const float *g, float *const *s) {
    return DC_FN(rmsprop_body)(c, 1, 0, w, g, s);
}
DC_ALWAYS_INLINE dc_v DC_FN(rmsprop_momentum_vec)(const void *c, float *w, const float *g, float *const *s) {
    return DC_FN(rmsprop_body)(c, 0, 1, w, g, s);
}
DC_ALWAYS_INLINE dc_v DC_FN(rmsprop_centered_momentum_vec)(const void *c, float *w, const float *g,
                                                           float *const *s) {
    return DC_FN(rmsprop_body)(c, 1, 1, w, g, s);
}

dc_step_stats DC_FN(dc_rmsprop_step)(const dc_rmsprop_params *hp, float *w, const float *g,
                                     float *square_avg, float *grad_avg, float *momentum_buffer,
                                     size_t n) {
    const DC_FN(rmsprop_c) c = {DC_FN(reg_consts)(&hp->reg), DC_FN(lerp_consts)(&hp->grad_avg),
                                vset(hp->lr), vset(hp->alpha), vset(hp->one_minus_alpha),
                                vset(hp->eps), vset(hp->momentum)};
    const int centered = hp->centered != 0, momentum = hp->has_momentum != 0;
    float *const s[DC_FAMILY_MAX_STATES] = {square_avg, centered ? grad_avg : momentum_buffer,
                                            centered ? momentum_buffer : NULL};
    if (centered && momentum)
        return DC_FN(family_drive)(DC_FN(rmsprop_centered_momentum_vec), &c, w, g, s, 3, n);
    if (centered) return DC_FN(family_drive)(DC_FN(rmsprop_centered_vec), &c, w, g, s, 2, n);
    if (momentum) return DC_FN(family_drive)(DC_FN(rmsprop_momentum_vec), &c, w, g, s, 2, n);
    return DC_FN(family_drive)(DC_FN(rmsprop_plain_vec), &c, w, g, s, 1, n);
}

/* ---- Adadelta ---- */
typedef struct {
    DC_FN(reg_c) reg;
    dc_v lr, rho, omr, eps;
} DC_FN(adadelta_c);

DC_ALWAYS_INLINE dc_v DC_FN(adadelta_vec)(const void *cp, float *w, const float *g, float *const *s) {
    const DC_FN(adadelta_c) *c = cp;
    const dc_v w0 = vload(w);
    const dc_v gi = DC_FN(coupled)(c->reg.l2, c->reg.l1, w0, vload(g));
    const dc_v v = vadd(vmul(vload(s[0]), c->rho), vmul(vmul(c->omr, gi), gi));
    vstore(s[0], v);
    const dc_v u = vload(s[1]);
    const dc_v delta = vmul(vdiv(vsqrt(vadd(u, c->eps)), vsqrt(vadd(v, c->eps))), gi);
    vstore(s[1], vadd(vmul(u, c->rho), vmul(vmul(c->omr, delta), delta)));
    const dc_v w1 = vsub(vmul(w0, c->reg.keep), vmul(c->lr, delta));
    vstore(w, w1);
    return w1;
}

dc_step_stats DC_FN(dc_adadelta_step)(const dc_adadelta_params *hp, float *w, const float *g,
                                      float *square_avg, float *acc_delta, size_t n) {
    const DC_FN(adadelta_c) c = {DC_FN(reg_consts)(&hp->reg), vset(hp->lr), vset(hp->rho),
                                 vset(hp->one_minus_rho), vset(hp->eps)};
    float *const s[DC_FAMILY_MAX_STATES] = {square_avg, acc_delta, NULL};
    return DC_FN(family_drive)(DC_FN(adadelta_vec), &c, w, g, s, 2, n);
}

/* ---- Adamax ---- */
typedef struct {
    DC_FN(reg_c) reg;
    DC_FN(lerp_c) exp_avg;
    dc_v clr, b2, eps;
} DC_FN(adamax_c);

DC_ALWAYS_INLINE dc_v DC_FN(adamax_vec)(const void *cp, float *w, const float *g, float *const *s) {
    const DC_FN(adamax_c) *c = cp;
    const dc_v w0 = vload(w);
    const dc_v gi = DC_FN(coupled)(c->reg.l2, c->reg.l1, w0, vload(g));
    const dc_v m = DC_FN(lerp)(&c->exp_avg, vload(s[0]), gi);
    const dc_v decayed = vmul(vload(s[1]), c->b2);
    const dc_v norm = vadd(vmax_keep(gi, vsub(vset(0.0f), gi)), c->eps);
    const dc_v u = vmax_keep(norm, decayed);
    vstore(s[0], m);
    vstore(s[1], u);
    const dc_v w1 = vsub(vmul(w0, c->reg.keep), vdiv(vmul(c->clr, m), u));
    vstore(w, w1);
    return w1;
}

dc_step_stats DC_FN(dc_adamax_step)(const dc_adamax_params *hp, float *w, const float *g,
                                    float *exp_avg, float *exp_inf, size_t n) {
    const DC_FN(adamax_c) c = {DC_FN(reg_consts)(&hp->reg), DC_FN(lerp_consts)(&hp->exp_avg),
                               vset(hp->clr), vset(hp->beta2), vset(hp->eps)};
    float *const s[DC_FAMILY_MAX_STATES] = {exp_avg, exp_inf, NULL};
    return DC_FN(family_drive)(DC_FN(adamax_vec), &c, w, g, s, 2, n);
}

/* ---- Adam's moments, shared by NAdam and RAdam ---- */
typedef struct {
    DC_FN(lerp_c) exp_avg;
    dc_v b2, ob2;
} DC_FN(moments_c);

DC_ALWAYS_INLINE DC_FN(moments_c) DC_FN(moments_consts)(const dc_moments *m) {
    return (DC_FN(moments_c)){DC_FN(lerp_consts)(&m->exp_avg), vset(m->beta2), vset(m->one_minus_beta2)};
}

/* Updates and stores m (s[0]) and v (s[1]). */
DC_ALWAYS_INLINE void DC_FN(moments_update)(const DC_FN(moments_c) *c, dc_v gi, float *const *s,
                                            dc_v *m, dc_v *v) {
    *m = DC_FN(lerp)(&c->exp_avg, vload(s[0]), gi);
    *v = vadd(vmul(vload(s[1]), c->b2), vmul(vmul(c->ob2, gi), gi));
    vstore(s[0], *m);
    vstore(s[1], *v);
}

/* ---- NAdam ---- */
typedef struct {
    DC_FN(reg_c) reg;
    DC_FN(moments_c) moments;
    dc_v gs, as, bc2, eps;
} DC_FN(nadam_c);

DC_ALWAYS_INLINE dc_v DC_FN(nadam_vec)(const void *cp, float *w, const float *g, float *const *s) {
    const DC_FN(nadam_c) *c = cp;
    const dc_v w0 = vload(w);
    const dc_v gi = DC_FN(coupled)(c->reg.l2, c->reg.l1, w0, vload(g));
    dc_v m, v;
    DC_FN(moments_update)(&c->moments, gi, s, &m, &v);
    const dc_v r = vadd(vsqrt(vdiv(v, c->bc2)), c->eps);
    const dc_v d = vadd(vdiv(vmul(c->gs, gi), r), vdiv(vmul(c->as, m), r));
    const dc_v w1 = vsub(vmul(w0, c->reg.keep), d);
    vstore(w, w1);
    return w1;
}

dc_step_stats DC_FN(dc_nadam_step)(const dc_nadam_params *hp, float *w, const float *g,
                                   float *exp_avg, float *exp_avg_sq, size_t n) {
    const DC_FN(nadam_c) c = {DC_FN(reg_consts)(&hp->reg), DC_FN(moments_consts)(&hp->moments),
                              vset(hp->grad_scale), vset(hp->avg_scale), vset(hp->bc2), vset(hp->eps)};
    float *const s[DC_FAMILY_MAX_STATES] = {exp_avg, exp_avg_sq, NULL};
    return DC_FN(family_drive)(DC_FN(nadam_vec), &c, w, g, s, 2, n);
}

/* ---- RAdam ---- */
typedef struct {
    DC_FN(reg_c) reg;
    DC_FN(moments_c) moments;
    dc_v lr, bc1, sbc2, eps, rect;
} DC_FN(radam_c);

DC_ALWAYS_INLINE dc_v DC_FN(radam_body)(const DC_FN(radam_c) *c, int rectified, float *w,
                                        const float *g, float *const *s) {
    const dc_v w0 = vload(w);
    const dc_v gi = DC_FN(coupled)(c->reg.l2, c->reg.l1, w0, vload(g));
    dc_v m, v;
    DC_FN(moments_update)(&c->moments, gi, s, &m, &v);
    const dc_v corrected = vmul(vdiv(m, c->bc1), c->lr);
    const dc_v d = rectified ? vmul(vmul(corrected, vdiv(c->sbc2, vadd(vsqrt(v), c->eps))), c->rect)
                             : corrected;
    const dc_v w1 = vsub(vmul(w0, c->reg.keep), d);
    vstore(w, w1);
    return w1;
}
DC_ALWAYS_INLINE dc_v DC_FN(radam_rectified_vec)(const void *c, float *w, const float *g, float *const *s) {
    return DC_FN(radam_body)(c, 1, w, g, s);
}
DC_ALWAYS_INLINE dc_v DC_FN(radam_warmup_vec)(const void *c, float *w, const float *g, float *const *s) {
    return DC_FN(radam_body)(c, 0, w, g, s);
}

dc_step_stats DC_FN(dc_radam_step)(const dc_radam_params *hp, float *w, const float *g,
                                   float *exp_avg, float *exp_avg_sq, size_t n) {
    const DC_FN(radam_c) c = {DC_FN(reg_consts)(&hp->reg), DC_FN(moments_consts)(&hp->moments),
                              vset(hp->lr), vset(hp->bc1), vset(hp->sqrt_bc2), vset(hp->eps),
                              vset(hp->rect)};
    float *const s[DC_FAMILY_MAX_STATES] = {exp_avg, exp_avg_sq, NULL};
    return hp->rectified ? DC_FN(family_drive)(DC_FN(radam_rectified_vec), &c, w, g, s, 2, n)
                         : DC_FN(family_drive)(DC_FN(radam_warmup_vec), &c, w, g, s, 2, n);
}
