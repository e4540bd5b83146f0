/*
 * Fused optimizer update kernels, float32, one pass over memory per step.
 *
 * Each kernel reads every array once and writes each state array once: the coupled
 * regularizer terms, the optimizer's moment updates, decoupled decay and the parameter
 * update all happen in registers. The same pass counts non-finite gradients and gathers
 * the weight statistics the coordinator reports, so neither costs an extra trip to memory.
 *
 * Every ISA path (scalar reference, AVX2, AVX-512, NEON) performs the same IEEE
 * operations in the same order, without fused multiply-add, so all paths give
 * bit-identical results; tests hold them to a relative 1e-6 and check that too.
 *
 * The update math and its conventions are documented in docs/kernels.md.
 */
#ifndef DECOUPLED_KERNELS_H
#define DECOUPLED_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Statistics gathered in the update pass. */
typedef struct dc_step_stats {
    int64_t nonfinite_grads; /**< gradient elements that were NaN or ±Inf */
    int64_t zero_params;     /**< parameters exactly 0 after the step */
    double param_sumsq;      /**< Σ w² after the step */
} dc_step_stats;

/**
 * Regularizer terms fused into every kernel. Coefficients arrive fully resolved:
 * conventions (half/full), schedule and learning-rate scaling are applied by the caller.
 */
typedef struct dc_reg_terms {
    float l2;         /**< coupled L2: g ← g + l2·w (λ for convention half, 2λ for full) */
    float l1;         /**< coupled L1: g ← g + l1·sign(w) */
    float decay_keep; /**< decoupled L2: w ← keep·w before the step; keep = 1 − s_t·λ (1 = off) */
} dc_reg_terms;

/** SGD with momentum, dampening and Nesterov (PyTorch semantics by default). */
typedef struct dc_sgd_params {
    float lr;               /**< lr_t = lr · η_t · group multiplier */
    float momentum;         /**< μ; 0 = plain SGD, no buffer is read or written */
    float dampening;        /**< d: buf ← μ·buf + (1 − d)·g */
    int32_t nesterov;       /**< d = g + μ·buf instead of buf */
    int32_t first_step;     /**< PyTorch: the first step sets buf ← g (no dampening) */
    int32_t lr_in_momentum; /**< Caffe/Keras/paper form: buf ← μ·buf + lr·g, w ← w − buf */
    dc_reg_terms reg;
} dc_sgd_params;

/**
 * Adam / AMSGrad with bias correction, in PyTorch's order of operations except that
 * √v is multiplied by 1/√(1 − β2ᵗ) instead of divided by √(1 − β2ᵗ): the divider is the
 * bottleneck of this kernel (two divisions and a square root per element on x86), and the
 * product differs from the quotient by at most about one ulp.
 */
typedef struct dc_adam_params {
    float step_size;      /**< lr_t / (1 − β1ᵗ), computed in double, rounded once */
    float inv_bc2_sqrt;   /**< 1 / √(1 − β2ᵗ), computed in double, rounded once */
    float eps;            /**< ε added to √v · inv_bc2_sqrt */
    float one_minus_beta1;
    float beta2;
    float one_minus_beta2;
    int32_t amsgrad;      /**< keep vmax ← max(vmax, v) and use it in the denominator */
    dc_reg_terms reg;
} dc_adam_params;

typedef dc_step_stats (*dc_sgd_fn)(const dc_sgd_params *hp, float *w, const float *g,
                                   float *buf, size_t n);
typedef dc_step_stats (*dc_adam_fn)(const dc_adam_params *hp, float *w, const float *g,
                                    float *m, float *v, float *vmax, size_t n);
/** Most state arrays a bandwidth probe moves (AMSGrad's m, v, v̂max). */
#define DC_PROBE_MAX_STATES 3

/**
 * The bandwidth probe: an optimizer's memory traffic with no math to speak of. Reads g and
 * `state_count` state arrays besides w, and writes w and the state arrays back (each gets
 * scale·g added), one pass: 12 + 8·state_count bytes per element, the traffic of SGD (0
 * states), momentum (1), Adam (2), AMSGrad or a three-state optimizer (3). With scale 0 the
 * data stay as they were, so the probe can alternate with steps on the same arrays.
 * `state_count` must be at most DC_PROBE_MAX_STATES.
 */
typedef void (*dc_probe_fn)(float scale, float *w, const float *g, float *const *states,
                            int32_t state_count, size_t n);

/**
 * The host's two passes around an external optimizer's direction d (the plugin ABI's
 * `direction`), so a plugin's step runs the same pipeline as the fused kernels: `coupled`
 * writes the gradient the direction sees, out = (g + l2·w) + l1·sign(w); `apply_direction`
 * writes w ← keep·w − d (keep = reg->decay_keep) and returns the statistics of g as read and
 * w as written. `out` must not overlap w or g.
 */
typedef void (*dc_coupled_fn)(const dc_reg_terms *reg, const float *w, const float *g, float *out, size_t n);
typedef dc_step_stats (*dc_apply_direction_fn)(const dc_reg_terms *reg, float *w, const float *g,
                                               const float *d, size_t n);

#include "decoupled_kernels_family.h"

/** One instruction-set path: every kernel compiled for it. */
typedef struct dc_kernel_table {
    const char *name;     /**< "scalar", "avx2", "avx512", "neon" */
    int32_t vector_width; /**< float lanes per vector (1 for scalar) */
    dc_sgd_fn sgd;
    dc_adam_fn adam;
    dc_probe_fn probe;
    /* The rest of the torch.optim family (decoupled_kernels_family.h). */
    dc_adagrad_fn adagrad;
    dc_rmsprop_fn rmsprop;
    dc_adadelta_fn adadelta;
    dc_adamax_fn adamax;
    dc_nadam_fn nadam;
    dc_radam_fn radam;
    /* Around an external optimizer's direction. */
    dc_coupled_fn coupled;
    dc_apply_direction_fn apply_direction;
} dc_kernel_table;

/** The path named `name` if this build has it and this CPU can run it, else NULL. */
const dc_kernel_table *dc_kernels_named(const char *name);

/** The fastest path this CPU can run. */
const dc_kernel_table *dc_kernels_best(void);

/** Names of all paths compiled into this build, NULL-terminated (whether runnable or not). */
const char *const *dc_kernels_compiled(void);

#ifdef __cplusplus
}
#endif
#endif
