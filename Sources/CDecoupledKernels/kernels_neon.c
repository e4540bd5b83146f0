/* NEON path (AArch64): 4 lanes. AArch64 always has NEON with IEEE division and sqrt. */
#include "kernels_internal.h"
#if DC_HAVE_NEON
#include <arm_neon.h>

#define DC_ISA neon
#define DC_VW 4
typedef float32x4_t dc_v;
typedef struct { float64x2_t lo, hi; } dc_acc;

static inline dc_v vload(const float *p) { return vld1q_f32(p); }
static inline void vstore(float *p, dc_v x) { vst1q_f32(p, x); }
static inline dc_v vset(float x) { return vdupq_n_f32(x); }
static inline dc_v vadd(dc_v a, dc_v b) { return vaddq_f32(a, b); }
static inline dc_v vsub(dc_v a, dc_v b) { return vsubq_f32(a, b); }
static inline dc_v vmul(dc_v a, dc_v b) { return vmulq_f32(a, b); }
static inline dc_v vdiv(dc_v a, dc_v b) { return vdivq_f32(a, b); }
static inline dc_v vsqrt(dc_v a) { return vsqrtq_f32(a); }
/* vmaxq_f32 propagates NaN; the reference keeps b unless a > b, so select explicitly. */
static inline dc_v vmax_keep(dc_v a, dc_v b) { return vbslq_f32(vcgtq_f32(a, b), a, b); }
static inline dc_v vsign(dc_v w) {
    const dc_v one = vdupq_n_f32(1.0f), zero = vdupq_n_f32(0.0f);
    const dc_v pos = vreinterpretq_f32_u32(vandq_u32(vcgtq_f32(w, zero), vreinterpretq_u32_f32(one)));
    const dc_v neg = vreinterpretq_f32_u32(vandq_u32(vcltq_f32(w, zero), vreinterpretq_u32_f32(one)));
    return vsubq_f32(pos, neg);
}
static inline int count_lanes(uint32x4_t mask) { return (int)vaddvq_u32(vshrq_n_u32(mask, 31)); }
static inline int count_nonfinite(dc_v g) {
    const dc_v d = vsubq_f32(g, g);
    return count_lanes(vmvnq_u32(vceqq_f32(d, d)));
}
static inline int count_zero(dc_v w) { return count_lanes(vceqq_f32(w, vdupq_n_f32(0.0f))); }
static inline dc_acc acc_init(void) { return (dc_acc){vdupq_n_f64(0.0), vdupq_n_f64(0.0)}; }
static inline void acc_sumsq(dc_acc *a, dc_v w) {
    const float64x2_t lo = vcvt_f64_f32(vget_low_f32(w));
    const float64x2_t hi = vcvt_high_f64_f32(w);
    a->lo = vaddq_f64(a->lo, vmulq_f64(lo, lo));
    a->hi = vaddq_f64(a->hi, vmulq_f64(hi, hi));
}
static inline double acc_total(const dc_acc *a) {
    const float64x2_t t = vaddq_f64(a->lo, a->hi);
    return vgetq_lane_f64(t, 0) + vgetq_lane_f64(t, 1);
}

#include "kernels_simd.h"
#include "kernels_family_simd.h"
#endif
