/*
 * Fused kernels of the torch.optim family beyond SGD and Adam: Adagrad, RMSprop (plain,
 * centered, momentum), Adadelta, Adamax, NAdam and RAdam. Included by decoupled_kernels.h,
 * whose conventions they share: one pass over memory, coupled terms → direction → decoupled
 * decay → apply → statistics in registers, no fused multiply-add, the same operations in the
 * same order on every ISA path, so every path is bit-identical to the scalar reference.
 *
 * Each kernel's per-element arithmetic is the Swift element function of its optimizer
 * (Sources/DecoupledCore/Plugins/Optimizers/, one file each) operation for operation; the
 * per-step scalars (bias corrections, NAdam's μ products, RAdam's rectification, lr_t)
 * arrive computed once per step in double by those same Swift types (docs/kernels.md).
 * FusedFamilyTests holds every path to the Swift element functions bit for bit.
 */
/* decoupled_kernels.h includes this header where its table needs the types below; included
 * on its own first (the module's umbrella directory may do so), this header lets it. */
#include "decoupled_kernels.h"
#ifndef DECOUPLED_KERNELS_FAMILY_H
#define DECOUPLED_KERNELS_FAMILY_H

#ifdef __cplusplus
extern "C" {
#endif

/**
 * PyTorch's `a.lerp_(b, weight)` on CPU with a per-step weight: a + weight·(b − a) when
 * |weight| < 0.5, else b − (b − a)·(1 − weight), so moving averages round as PyTorch's do.
 */
typedef struct dc_lerp {
    float weight;           /**< e.g. 1 − β1 */
    float one_minus_weight; /**< 1 − weight, computed in float */
    int32_t from_end;       /**< |weight| ≥ 0.5: the second form */
} dc_lerp;

/** Adagrad: sum ← sum + g²; d = clr·g / (√sum + ε). */
typedef struct dc_adagrad_params {
    float clr; /**< lr_t / (1 + (t − 1)·lr_decay) */
    float eps;
    dc_reg_terms reg;
} dc_adagrad_params;

/**
 * RMSprop: v ← v·α + (1 − α)·g·g; centered: ḡ ← lerp(ḡ, g, 1 − α), r = √(v − ḡ²) + ε,
 * else r = √v + ε; momentum: buf ← buf·μ + g/r, d = lr·buf; else d = lr·g / r.
 */
typedef struct dc_rmsprop_params {
    float lr;
    float alpha;
    float one_minus_alpha;
    float eps;
    float momentum;       /**< μ, used when has_momentum */
    dc_lerp grad_avg;     /**< lerp weight 1 − α, used when centered */
    int32_t centered;     /**< grad_avg state present */
    int32_t has_momentum; /**< momentum_buffer state present */
    dc_reg_terms reg;
} dc_rmsprop_params;

/** Adadelta: v ← v·ρ + (1 − ρ)·g·g; δ = √(u + ε)/√(v + ε)·g; u ← u·ρ + (1 − ρ)·δ·δ; d = lr·δ. */
typedef struct dc_adadelta_params {
    float lr;
    float rho;
    float one_minus_rho;
    float eps;
    dc_reg_terms reg;
} dc_adadelta_params;

/** Adamax: m ← lerp(m, g, 1 − β1); u ← max(u·β2, |g| + ε); d = clr·m / u. */
typedef struct dc_adamax_params {
    float clr; /**< lr_t / (1 − β1ᵗ) */
    float beta2;
    float eps;
    dc_lerp exp_avg;
    dc_reg_terms reg;
} dc_adamax_params;

/** Adam's moments as the family updates them: m ← lerp(m, g, 1 − β1), v ← v·β2 + (1 − β2)·g·g. */
typedef struct dc_moments {
    dc_lerp exp_avg;
    float beta2;
    float one_minus_beta2;
} dc_moments;

/** NAdam: r = √(v / (1 − β2ᵗ)) + ε; d = grad_scale·g / r + avg_scale·m / r. */
typedef struct dc_nadam_params {
    dc_moments moments;
    float grad_scale; /**< lr_t·(1 − μ_t)/(1 − Π_t) */
    float avg_scale;  /**< lr_t·μ_{t+1}/(1 − Π_t·μ_{t+1}) */
    float bc2;        /**< 1 − β2ᵗ */
    float eps;
    dc_reg_terms reg;
} dc_nadam_params;

/** RAdam: c = m / (1 − β1ᵗ) · lr_t; rectified: d = c·(√(1 − β2ᵗ) / (√v + ε))·r_t, else d = c. */
typedef struct dc_radam_params {
    dc_moments moments;
    float lr;
    float bc1;        /**< 1 − β1ᵗ */
    float sqrt_bc2;   /**< √(1 − β2ᵗ) */
    float eps;
    float rect;       /**< r_t */
    int32_t rectified; /**< ρ_t > 5 */
    dc_reg_terms reg;
} dc_radam_params;

typedef dc_step_stats (*dc_adagrad_fn)(const dc_adagrad_params *hp, float *w, const float *g,
                                       float *sum, size_t n);
/** grad_avg may be NULL unless centered, momentum_buffer unless has_momentum. */
typedef dc_step_stats (*dc_rmsprop_fn)(const dc_rmsprop_params *hp, float *w, const float *g,
                                       float *square_avg, float *grad_avg,
                                       float *momentum_buffer, size_t n);
typedef dc_step_stats (*dc_adadelta_fn)(const dc_adadelta_params *hp, float *w, const float *g,
                                        float *square_avg, float *acc_delta, size_t n);
typedef dc_step_stats (*dc_adamax_fn)(const dc_adamax_params *hp, float *w, const float *g,
                                      float *exp_avg, float *exp_inf, size_t n);
typedef dc_step_stats (*dc_nadam_fn)(const dc_nadam_params *hp, float *w, const float *g,
                                     float *exp_avg, float *exp_avg_sq, size_t n);
typedef dc_step_stats (*dc_radam_fn)(const dc_radam_params *hp, float *w, const float *g,
                                     float *exp_avg, float *exp_avg_sq, size_t n);

#ifdef __cplusplus
}
#endif
#endif
