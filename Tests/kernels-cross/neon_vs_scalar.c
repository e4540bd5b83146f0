/*
 * The NEON kernel path against the scalar reference, on AArch64: every entry of
 * dc_kernels_named("neon") against the same entry of dc_kernels_named("scalar"). Built by
 * this directory's Makefile with clang --target=aarch64-linux-gnu and run under qemu-user on
 * x86 (make test runs it), or natively on an AArch64 machine.
 *
 * Every kernel runs three steps from the same start on both paths, over every flag of its
 * parameter struct, six sets of regularizer terms, lengths 0–17 and a few longer ones with
 * tails, three kinds of values (plain; ±0, subnormals, huge and tiny magnitudes; plus NaN and
 * ±Inf), the data at every offset from a 16-byte boundary, and each of these with the FPU's
 * subnormal flushing (FPCR.FZ, through CDecoupledSystem.h) off and on; the probe with every
 * state count and several scales. After each step weights, gradients and every state array
 * must hold the same bits on both paths (a NaN must be a NaN, its payload and sign are not
 * compared: see same()), the eight floats after each array must be untouched, the counts
 * must be equal, and Σw² equal to a relative 1e-12 (each path sums in its own order, as
 * Tests/DecoupledCoreTests/FusedFamilyTests.swift allows). A mismatch prints the kernel, its
 * flags, the step, the array, the index and both values, and the exit status is 1.
 */
#include "decoupled_kernels.h"
#include "CDecoupledSystem.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STEPS 3
#define MAX_STATES 3
#define GUARD 8      /* floats checked after each array */
#define MAX_REPORTS 25

static const dc_kernel_table *neon, *scalar;
static long checks = 0, failures = 0;

/* What the current run is, for the messages. */
static char label[512];

static void fail(const char *fmt, ...) {
    failures++;
    if (failures > MAX_REPORTS) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL %s: ", label);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

static uint32_t bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float from_bits(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* ---- values ---- */

typedef struct { uint64_t s; } rng;

static uint64_t next(rng *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

enum profile { PLAIN, SPECIAL, NONFINITE, PROFILES };
static const char *const profile_names[PROFILES] = {"plain", "special", "nonfinite"};

/* Finite corner cases: signed zeros, subnormals (the smallest too), the smallest normal,
 * huge and tiny magnitudes. */
static const float finite_specials[] = {
    0.0f, -0.0f, 1e-40f, -1e-40f, FLT_TRUE_MIN, -FLT_TRUE_MIN, 0x1.fffffcp-127f, FLT_MIN, -FLT_MIN,
    1e-30f, -1e-30f, 1e-20f, 1e30f, -1e30f, 3e38f, -3e38f, FLT_MAX, 1.0f, -1.0f, 0.5f,
};
#define N_FINITE (sizeof finite_specials / sizeof finite_specials[0])

/* NaNs (quiet with either sign and a payload, and signalling) and infinities. */
static float nonfinite_special(uint64_t u) {
    static const uint32_t b[] = {0x7fc00000u, 0xffc00000u, 0x7fc12345u, 0xffe00001u, 0x7fa00000u,
                                 0x7f800000u, 0xff800000u};
    return from_bits(b[u % (sizeof b / sizeof b[0])]);
}

/* n values around ±scale; positive: |x| (for sums of squares and the like) except with NaNs. */
static void fill(float *x, size_t n, rng *r, enum profile p, float scale, int positive) {
    for (size_t i = 0; i < n; i++) {
        const uint64_t u = next(r);
        float v = ((float)(u >> 40) / (float)(1 << 24) - 0.5f) * 2.0f * scale;
        if (u % 17 == 0) v = 0.0f;
        if (p != PLAIN && u % 4 == 1) v = finite_specials[(u >> 8) % N_FINITE];
        if (p == NONFINITE && u % 9 == 2) v = nonfinite_special(u >> 12);
        if (positive && p != NONFINITE) v = fabsf(v);
        x[i] = v;
    }
}

/* ---- one kernel, both paths ---- */

/* Runs step t (1-based) of the kernel described by `c` on table `k`. */
typedef dc_step_stats (*step_fn)(const dc_kernel_table *k, const void *c, int t, float *w,
                                 const float *g, float *const *s, size_t n);

typedef struct {
    const char *kernel;
    step_fn step;
    const void *c;
    int states;           /* state arrays the kernel gets */
    unsigned positive;    /* bit j: state j starts ≥ 0 */
    unsigned null_states; /* bit j: state j is passed as NULL (the header allows it) */
    float state_scale;
} kernel_run;

/* A buffer of n floats at `offset` floats past a 16-byte boundary, with a guard after it. */
typedef struct {
    float *base, *p;
} buffer;

static const uint32_t guard_bits = 0x7fbadbadu;

static buffer buffer_new(size_t n, size_t offset) {
    buffer b;
    b.base = aligned_alloc(16, ((offset + n + GUARD + 3) / 4 * 4) * sizeof(float) + 16);
    if (b.base == NULL) { perror("aligned_alloc"); exit(2); }
    b.p = b.base + offset;
    for (size_t i = 0; i < GUARD; i++) b.p[n + i] = from_bits(guard_bits);
    return b;
}

/* Same bits, or both NaN: IEEE 754 leaves open which NaN operand's payload and sign an
 * operation passes on, and clang may swap the operands of a commutative one (a + b, a · b) in
 * either path, so only the NaN-ness is compared. NaNs that differ are counted. */
static long nan_payloads_differ = 0;

static int same(float a, float b) {
    if (bits(a) == bits(b)) return 1;
    if (isnan(a) && isnan(b)) {
        nan_payloads_differ++;
        return 1;
    }
    return 0;
}

static void compare(const char *what, int t, const float *got, const float *want, size_t n) {
    checks++;
    for (size_t i = 0; i < n; i++) {
        if (!same(got[i], want[i])) {
            size_t differ = 0;
            for (size_t j = i; j < n; j++) differ += !same(got[j], want[j]);
            fail("step %d: %s[%zu]: neon %a (0x%08" PRIx32 ") scalar %a (0x%08" PRIx32 "); %zu of %zu differ",
                 t, what, i, (double)got[i], bits(got[i]), (double)want[i], bits(want[i]), differ, n);
            return;
        }
    }
    for (size_t i = 0; i < GUARD; i++) {
        if (bits(got[n + i]) != guard_bits) {
            fail("step %d: %s written past its end, at [%zu]", t, what, n + i);
            return;
        }
    }
}

static void compare_stats(int t, dc_step_stats got, dc_step_stats want) {
    checks += 3;
    if (got.nonfinite_grads != want.nonfinite_grads)
        fail("step %d: nonfinite_grads: neon %" PRId64 " scalar %" PRId64, t, got.nonfinite_grads,
             want.nonfinite_grads);
    if (got.zero_params != want.zero_params)
        fail("step %d: zero_params: neon %" PRId64 " scalar %" PRId64, t, got.zero_params, want.zero_params);
    const double a = got.param_sumsq, b = want.param_sumsq;
    if (!(a == b || (isnan(a) && isnan(b)) || fabs(a - b) <= 1e-12 * fabs(b)))
        fail("step %d: param_sumsq: neon %.17g scalar %.17g", t, a, b);
}

static const size_t lengths[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 31, 33, 64, 67, 130, 259};
#define N_LENGTHS (sizeof lengths / sizeof lengths[0])

static void run_kernel(const kernel_run *kr, const char *flags, int flush) {
    for (size_t li = 0; li < N_LENGTHS; li++) {
        const size_t n = lengths[li];
        for (int p = 0; p < PROFILES; p++) {
            const size_t offset = (li + (size_t)p) % 4;
            snprintf(label, sizeof label, "%s [%s] values=%s n=%zu offset=%zu flush=%d", kr->kernel, flags,
                     profile_names[p], n, offset, flush);
            rng r = {n * 1000003u + (uint64_t)p * 7919u + (uint64_t)kr->states};
            buffer w[2], g[2], s[2][MAX_STATES];
            for (int k = 0; k < 2; k++) {
                w[k] = buffer_new(n, offset);
                g[k] = buffer_new(n, offset);
                for (int j = 0; j < MAX_STATES; j++) s[k][j] = buffer_new(n, offset);
            }
            fill(w[0].p, n, &r, (enum profile)p, 4.0f, 0);
            for (int j = 0; j < kr->states; j++)
                fill(s[0][j].p, n, &r, (enum profile)p, kr->state_scale, (kr->positive >> j) & 1);
            memcpy(w[1].p, w[0].p, n * sizeof(float));
            for (int j = 0; j < kr->states; j++) memcpy(s[1][j].p, s[0][j].p, n * sizeof(float));
            for (int t = 1; t <= STEPS; t++) {
                fill(g[0].p, n, &r, (enum profile)p, 2.0f, 0);
                memcpy(g[1].p, g[0].p, n * sizeof(float));
                float *sp[2][MAX_STATES] = {{NULL}};
                for (int k = 0; k < 2; k++)
                    for (int j = 0; j < kr->states; j++)
                        sp[k][j] = ((kr->null_states >> j) & 1) ? NULL : s[k][j].p;
                const dc_step_stats got = kr->step(neon, kr->c, t, w[0].p, g[0].p, sp[0], n);
                const dc_step_stats want = kr->step(scalar, kr->c, t, w[1].p, g[1].p, sp[1], n);
                compare("w", t, w[0].p, w[1].p, n);
                compare("g", t, g[0].p, g[1].p, n);
                for (int j = 0; j < kr->states; j++) {
                    if ((kr->null_states >> j) & 1) continue;
                    char name[16];
                    snprintf(name, sizeof name, "state%d", j);
                    compare(name, t, s[0][j].p, s[1][j].p, n);
                }
                compare_stats(t, got, want);
            }
            for (int k = 0; k < 2; k++) {
                free(w[k].base);
                free(g[k].base);
                for (int j = 0; j < MAX_STATES; j++) free(s[k][j].base);
            }
        }
    }
}

/* ---- the regularizer terms every kernel fuses ---- */

static const dc_reg_terms regs[] = {
    {0.0f, 0.0f, 1.0f},        /* none */
    {0.01f, 0.0f, 1.0f},       /* coupled L2 */
    {0.0f, 0.001f, 1.0f},      /* coupled L1 */
    {0.0f, 0.0f, 0.999f},      /* decoupled decay (AdamW, SGDW) */
    {5e-3f, 1e-3f, 0.9999f},   /* all three */
    {1.5f, 0.25f, 0.5f},       /* all three, large */
};
#define N_REGS (sizeof regs / sizeof regs[0])

static int reg_label(char *out, size_t cap, const dc_reg_terms *r) {
    return snprintf(out, cap, "l2=%g l1=%g decay_keep=%g", (double)r->l2, (double)r->l1, (double)r->decay_keep);
}

static dc_lerp lerp(float weight) {
    const dc_lerp l = {weight, 1.0f - weight, fabsf(weight) >= 0.5f};
    return l;
}

/* ---- SGD ---- */
typedef struct {
    dc_reg_terms reg;
    float momentum, dampening;
    int nesterov, first_step, lr_in_momentum;
} sgd_case;

static dc_step_stats sgd_step(const dc_kernel_table *k, const void *cp, int t, float *w, const float *g,
                              float *const *s, size_t n) {
    const sgd_case *c = cp;
    const dc_sgd_params hp = {0.01f, c->momentum, c->dampening, c->nesterov, c->first_step && t == 1,
                              c->lr_in_momentum, c->reg};
    return k->sgd(&hp, w, g, s[0], n);
}

/* ---- Adam, AdamW (decay_keep < 1), AMSGrad ---- */
typedef struct {
    dc_reg_terms reg;
    double beta1, beta2;
    float eps;
    int amsgrad;
} adam_case;

static dc_step_stats adam_step(const dc_kernel_table *k, const void *cp, int t, float *w, const float *g,
                               float *const *s, size_t n) {
    const adam_case *c = cp;
    const dc_adam_params hp = {(float)(1e-3 / (1.0 - pow(c->beta1, t))), (float)(1.0 / sqrt(1.0 - pow(c->beta2, t))),
                               c->eps, (float)(1.0 - c->beta1), (float)c->beta2, (float)(1.0 - c->beta2),
                               c->amsgrad, c->reg};
    return k->adam(&hp, w, g, s[0], s[1], s[2], n);
}

/* ---- around an external optimizer's direction: the coupled gradient into s[1], then
 * w ← keep·w − d with d = s[0] (read only) ---- */
static dc_step_stats external_step(const dc_kernel_table *k, const void *cp, int t, float *w, const float *g,
                                   float *const *s, size_t n) {
    (void)t;
    const dc_reg_terms *reg = cp;
    k->coupled(reg, w, g, s[1], n);
    return k->apply_direction(reg, w, g, s[0], n);
}

/* ---- the family ---- */
/* Adagrad and Adadelta: the terms and ε. */
typedef struct {
    dc_reg_terms reg;
    float eps;
} eps_case;

static dc_step_stats adagrad_step(const dc_kernel_table *k, const void *cp, int t, float *w, const float *g,
                                  float *const *s, size_t n) {
    const eps_case *c = cp;
    const dc_adagrad_params hp = {(float)(0.05 / (1.0 + (t - 1) * 0.01)), c->eps, c->reg};
    return k->adagrad(&hp, w, g, s[0], n);
}

typedef struct {
    dc_reg_terms reg;
    float alpha;
    int centered, has_momentum;
} rmsprop_case;

static dc_step_stats rmsprop_step(const dc_kernel_table *k, const void *cp, int t, float *w, const float *g,
                                  float *const *s, size_t n) {
    (void)t;
    const rmsprop_case *c = cp;
    const dc_rmsprop_params hp = {0.01f, c->alpha, 1.0f - c->alpha, 1e-8f, 0.5f, lerp(1.0f - c->alpha),
                                  c->centered, c->has_momentum, c->reg};
    return k->rmsprop(&hp, w, g, s[0], s[1], s[2], n);
}

static dc_step_stats adadelta_step(const dc_kernel_table *k, const void *cp, int t, float *w, const float *g,
                                   float *const *s, size_t n) {
    (void)t;
    const eps_case *c = cp;
    const dc_adadelta_params hp = {1.0f, 0.9f, 1.0f - 0.9f, c->eps, c->reg};
    return k->adadelta(&hp, w, g, s[0], s[1], n);
}

typedef struct {
    dc_reg_terms reg;
    double beta1;
} adamax_case;

static dc_step_stats adamax_step(const dc_kernel_table *k, const void *cp, int t, float *w, const float *g,
                                 float *const *s, size_t n) {
    const adamax_case *c = cp;
    const dc_adamax_params hp = {(float)(0.01 / (1.0 - pow(c->beta1, t))), 0.999f, 1e-8f,
                                 lerp((float)(1.0 - c->beta1)), c->reg};
    return k->adamax(&hp, w, g, s[0], s[1], n);
}

typedef struct {
    dc_reg_terms reg;
    double beta1;
    int rectified; /* RAdam only */
} moments_case;

static dc_moments moments(double beta1) {
    const dc_moments m = {lerp((float)(1.0 - beta1)), 0.999f, (float)(1.0 - 0.999)};
    return m;
}

static dc_step_stats nadam_step(const dc_kernel_table *k, const void *cp, int t, float *w, const float *g,
                                float *const *s, size_t n) {
    const moments_case *c = cp;
    /* PyTorch's μ_t = β1·(1 − ½·0.96^(t·ψ)), ψ = 0.004, and its running product. */
    double prod = 1.0;
    for (int i = 1; i <= t; i++) prod *= c->beta1 * (1.0 - 0.5 * pow(0.96, i * 0.004));
    const double mu = c->beta1 * (1.0 - 0.5 * pow(0.96, t * 0.004));
    const double mu_next = c->beta1 * (1.0 - 0.5 * pow(0.96, (t + 1) * 0.004));
    const dc_nadam_params hp = {moments(c->beta1), (float)(0.002 * (1.0 - mu) / (1.0 - prod)),
                                (float)(0.002 * mu_next / (1.0 - prod * mu_next)),
                                (float)(1.0 - pow(0.999, t)), 1e-8f, c->reg};
    return k->nadam(&hp, w, g, s[0], s[1], n);
}

static dc_step_stats radam_step(const dc_kernel_table *k, const void *cp, int t, float *w, const float *g,
                                float *const *s, size_t n) {
    const moments_case *c = cp;
    const dc_radam_params hp = {moments(c->beta1), 1e-3f, (float)(1.0 - pow(c->beta1, t)),
                                (float)sqrt(1.0 - pow(0.999, t)), 1e-8f, (float)(0.3 + 0.1 * t), c->rectified,
                                c->reg};
    return k->radam(&hp, w, g, s[0], s[1], n);
}

/* ---- the probe ---- */
static void run_probe(int flush) {
    static const float scales[] = {0.0f, 1.0f, -0.5f, 1e-3f, 3e38f};
    for (size_t si = 0; si < sizeof scales / sizeof scales[0]; si++) {
        for (int states = 0; states <= DC_PROBE_MAX_STATES; states++) {
            for (size_t li = 0; li < N_LENGTHS; li++) {
                const size_t n = lengths[li];
                for (int p = 0; p < PROFILES; p++) {
                    const size_t offset = (li + si) % 4;
                    snprintf(label, sizeof label, "probe [scale=%g state_count=%d] values=%s n=%zu offset=%zu flush=%d",
                             (double)scales[si], states, profile_names[p], n, offset, flush);
                    rng r = {n * 31u + (uint64_t)p};
                    buffer w[2], g = buffer_new(n, offset), s[2][DC_PROBE_MAX_STATES];
                    fill(g.p, n, &r, (enum profile)p, 2.0f, 0);
                    for (int k = 0; k < 2; k++) {
                        w[k] = buffer_new(n, offset);
                        for (int j = 0; j < DC_PROBE_MAX_STATES; j++) s[k][j] = buffer_new(n, offset);
                    }
                    fill(w[0].p, n, &r, (enum profile)p, 4.0f, 0);
                    memcpy(w[1].p, w[0].p, n * sizeof(float));
                    for (int j = 0; j < DC_PROBE_MAX_STATES; j++) {
                        fill(s[0][j].p, n, &r, (enum profile)p, 1.0f, 0);
                        memcpy(s[1][j].p, s[0][j].p, n * sizeof(float));
                    }
                    /* Only the first `states` arrays are passed; the rest must stay as they were. */
                    float *sp[2][DC_PROBE_MAX_STATES] = {{NULL}};
                    for (int k = 0; k < 2; k++)
                        for (int j = 0; j < states; j++) sp[k][j] = s[k][j].p;
                    neon->probe(scales[si], w[0].p, g.p, sp[0], states, n);
                    scalar->probe(scales[si], w[1].p, g.p, sp[1], states, n);
                    compare("w", 1, w[0].p, w[1].p, n);
                    for (int j = 0; j < DC_PROBE_MAX_STATES; j++) {
                        char name[16];
                        snprintf(name, sizeof name, "state%d", j);
                        compare(name, 1, s[0][j].p, s[1][j].p, n);
                    }
                    free(g.base);
                    for (int k = 0; k < 2; k++) {
                        free(w[k].base);
                        for (int j = 0; j < DC_PROBE_MAX_STATES; j++) free(s[k][j].base);
                    }
                }
            }
        }
    }
}

/* ---- every kernel with every flag ---- */
static void run_all(int flush) {
    char flags[256];
    for (size_t ri = 0; ri < N_REGS; ri++) {
        const dc_reg_terms reg = regs[ri];
        char rl[96];
        reg_label(rl, sizeof rl, &reg);

        static const float momenta[] = {0.0f, 0.9f};
        static const float dampenings[] = {0.0f, 0.25f};
        for (int mi = 0; mi < 2; mi++)
            for (int di = 0; di < 2; di++)
                for (int bits = 0; bits < 8; bits++) {
                    const sgd_case c = {reg, momenta[mi], dampenings[di], bits & 1, (bits >> 1) & 1, (bits >> 2) & 1};
                    snprintf(flags, sizeof flags, "momentum=%g dampening=%g nesterov=%d first_step=%d lr_in_momentum=%d %s",
                             (double)c.momentum, (double)c.dampening, c.nesterov, c.first_step, c.lr_in_momentum, rl);
                    const kernel_run kr = {"sgd", sgd_step, &c, 1, 0, 0, 0.1f};
                    run_kernel(&kr, flags, flush);
                }

        for (int amsgrad = 0; amsgrad < 2; amsgrad++)
            for (int betas = 0; betas < 2; betas++) {
                const adam_case c = {reg, betas ? 0.5 : 0.9, betas ? 0.9 : 0.999, betas ? 1e-3f : 1e-8f, amsgrad};
                snprintf(flags, sizeof flags, "beta1=%g beta2=%g eps=%g amsgrad=%d %s", c.beta1, c.beta2, (double)c.eps,
                         amsgrad, rl);
                const kernel_run kr = {"adam", adam_step, &c, 3, 6, 0, 1e-2f};
                run_kernel(&kr, flags, flush);
            }

        for (int e = 0; e < 2; e++) {
            const eps_case c = {reg, e ? 0.0f : 1e-10f};
            snprintf(flags, sizeof flags, "eps=%g %s", (double)c.eps, rl);
            const kernel_run kr = {"adagrad", adagrad_step, &c, 1, 1, 0, 1e-1f};
            run_kernel(&kr, flags, flush);
        }

        /* α = 0.3: the lerp weight 1 − α ≥ 0.5 takes PyTorch's second form. */
        for (int a = 0; a < 2; a++)
            for (int centered = 0; centered < 2; centered++)
                for (int momentum = 0; momentum < 2; momentum++) {
                    const rmsprop_case c = {reg, a ? 0.3f : 0.99f, centered, momentum};
                    snprintf(flags, sizeof flags, "alpha=%g centered=%d has_momentum=%d %s", (double)c.alpha, centered,
                             momentum, rl);
                    /* Slots as the header's: square_avg, grad_avg (NULL unless centered),
                     * momentum_buffer (NULL unless has_momentum). */
                    const kernel_run kr = {"rmsprop", rmsprop_step, &c, 3, 1,
                                           (centered ? 0u : 2u) | (momentum ? 0u : 4u), 1e-2f};
                    run_kernel(&kr, flags, flush);
                }

        for (int e = 0; e < 2; e++) {
            const eps_case c = {reg, e ? 0.0f : 1e-6f};
            snprintf(flags, sizeof flags, "eps=%g %s", (double)c.eps, rl);
            const kernel_run kr = {"adadelta", adadelta_step, &c, 2, 3, 0, 1e-2f};
            run_kernel(&kr, flags, flush);
        }

        /* β1 = 0.2: lerp weight 0.8, the second form. */
        for (int b = 0; b < 2; b++) {
            const adamax_case c = {reg, b ? 0.2 : 0.9};
            snprintf(flags, sizeof flags, "beta1=%g %s", c.beta1, rl);
            const kernel_run kr = {"adamax", adamax_step, &c, 2, 2, 0, 1e-2f};
            run_kernel(&kr, flags, flush);
        }

        for (int b = 0; b < 2; b++) {
            const moments_case c = {reg, b ? 0.2 : 0.9, 0};
            snprintf(flags, sizeof flags, "beta1=%g %s", c.beta1, rl);
            const kernel_run kr = {"nadam", nadam_step, &c, 2, 2, 0, 1e-2f};
            run_kernel(&kr, flags, flush);
        }

        for (int b = 0; b < 2; b++)
            for (int rectified = 0; rectified < 2; rectified++) {
                const moments_case c = {reg, b ? 0.2 : 0.9, rectified};
                snprintf(flags, sizeof flags, "beta1=%g rectified=%d %s", c.beta1, rectified, rl);
                const kernel_run kr = {"radam", radam_step, &c, 2, 2, 0, 1e-2f};
                run_kernel(&kr, flags, flush);
            }

        const kernel_run external = {"external direction", external_step, &reg, 2, 0, 0, 1e-2f};
        run_kernel(&external, rl, flush);
    }
    run_probe(flush);
}

/* The table, and FPCR.FZ through CDecoupledSystem.h: on, a product below FLT_MIN is 0. */
static void check_setup(void) {
    snprintf(label, sizeof label, "setup");
    checks++;
    if (neon == NULL || scalar == NULL) {
        fail("dc_kernels_named: neon %p, scalar %p", (const void *)neon, (const void *)scalar);
        return;
    }
    if (strcmp(neon->name, "neon") != 0 || neon->vector_width != 4 || dc_kernels_best() != neon)
        fail("neon table: name %s, width %d, best %s", neon->name, neon->vector_width, dc_kernels_best()->name);
    const void *const np[] = {(const void *)neon->sgd, (const void *)neon->adam, (const void *)neon->probe,
                              (const void *)neon->adagrad, (const void *)neon->rmsprop, (const void *)neon->adadelta,
                              (const void *)neon->adamax, (const void *)neon->nadam, (const void *)neon->radam,
                              (const void *)neon->coupled, (const void *)neon->apply_direction};
    const void *const sp[] = {(const void *)scalar->sgd, (const void *)scalar->adam, (const void *)scalar->probe,
                              (const void *)scalar->adagrad, (const void *)scalar->rmsprop,
                              (const void *)scalar->adadelta, (const void *)scalar->adamax,
                              (const void *)scalar->nadam, (const void *)scalar->radam,
                              (const void *)scalar->coupled, (const void *)scalar->apply_direction};
    for (size_t i = 0; i < sizeof np / sizeof np[0]; i++)
        if (np[i] == NULL || np[i] == sp[i]) fail("neon table entry %zu is NULL or the scalar kernel", i);
    if (!dc_flush_subnormals_supported()) fail("dc_flush_subnormals_supported() is 0 on AArch64");
}

static void check_flush(int on) {
    snprintf(label, sizeof label, "FPCR.FZ");
    checks++;
    volatile float tiny = 1e-20f;
    const float product = tiny * tiny; /* 1e-40: subnormal */
    if (dc_flush_subnormals_get() != on || (product == 0.0f) != on)
        fail("flush %d: dc_flush_subnormals_get() %d, 1e-20·1e-20 = %a", on, dc_flush_subnormals_get(),
             (double)product);
}

int main(void) {
    neon = dc_kernels_named("neon");
    scalar = dc_kernels_named("scalar");
    check_setup();
    if (failures) return 1;
    for (int flush = 0; flush < 2; flush++) {
        dc_flush_subnormals_set(flush);
        check_flush(flush);
        run_all(flush);
    }
    dc_flush_subnormals_set(0);
    printf("neon: NaN payload or sign differed from scalar at %ld places (not compared)\n", nan_payloads_differ);
    if (failures > MAX_REPORTS) fprintf(stderr, "... and %ld more failures\n", failures - MAX_REPORTS);
    printf("neon: %ld passed, %ld failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
