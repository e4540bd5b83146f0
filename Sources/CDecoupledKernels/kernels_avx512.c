/* AVX-512 path: 16 lanes. Chosen only when the CPU (and OS) support AVX-512F. */
#include "kernels_internal.h"
#if DC_HAVE_AVX512
#include <immintrin.h>

#pragma clang attribute push(__attribute__((target("avx512f"))), apply_to = function)

#define DC_ISA avx512
#define DC_VW 16
typedef __m512 dc_v;
typedef struct { __m512d lo, hi; } dc_acc;

static inline dc_v vload(const float *p) { return _mm512_loadu_ps(p); }
static inline void vstore(float *p, dc_v x) { _mm512_storeu_ps(p, x); }
static inline dc_v vset(float x) { return _mm512_set1_ps(x); }
static inline dc_v vadd(dc_v a, dc_v b) { return _mm512_add_ps(a, b); }
static inline dc_v vsub(dc_v a, dc_v b) { return _mm512_sub_ps(a, b); }
static inline dc_v vmul(dc_v a, dc_v b) { return _mm512_mul_ps(a, b); }
static inline dc_v vdiv(dc_v a, dc_v b) { return _mm512_div_ps(a, b); }
static inline dc_v vsqrt(dc_v a) { return _mm512_sqrt_ps(a); }
static inline dc_v vmax_keep(dc_v a, dc_v b) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_GT_OQ), b, a);
}
static inline dc_v vsign(dc_v w) {
    const dc_v zero = _mm512_setzero_ps();
    const dc_v pos = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(w, zero, _CMP_GT_OQ), zero, _mm512_set1_ps(1.0f));
    const dc_v neg = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(w, zero, _CMP_LT_OQ), zero, _mm512_set1_ps(1.0f));
    return _mm512_sub_ps(pos, neg);
}
static inline int count_nonfinite(dc_v g) {
    const dc_v d = _mm512_sub_ps(g, g);
    return __builtin_popcount((unsigned)_mm512_cmp_ps_mask(d, d, _CMP_UNORD_Q));
}
static inline int count_zero(dc_v w) {
    return __builtin_popcount((unsigned)_mm512_cmp_ps_mask(w, _mm512_setzero_ps(), _CMP_EQ_OQ));
}
static inline dc_acc acc_init(void) { return (dc_acc){_mm512_setzero_pd(), _mm512_setzero_pd()}; }
static inline void acc_sumsq(dc_acc *a, dc_v w) {
    const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(w));
    const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(w), 1)));
    a->lo = _mm512_add_pd(a->lo, _mm512_mul_pd(lo, lo));
    a->hi = _mm512_add_pd(a->hi, _mm512_mul_pd(hi, hi));
}
static inline double acc_total(const dc_acc *a) {
    double t[8];
    _mm512_storeu_pd(t, _mm512_add_pd(a->lo, a->hi));
    return ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
}

#include "kernels_simd.h"
#include "kernels_family_simd.h"

#pragma clang attribute pop
#endif
