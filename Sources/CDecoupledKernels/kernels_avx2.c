/* AVX2 path: 8 lanes. Compiled for AVX2+FMA, chosen only when the CPU reports both. */
#include "kernels_internal.h"
#if DC_HAVE_AVX2
#include <immintrin.h>

#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)

#define DC_ISA avx2
#define DC_VW 8
typedef __m256 dc_v;
typedef struct { __m256d lo, hi; } dc_acc;

static inline dc_v vload(const float *p) { return _mm256_loadu_ps(p); }
static inline void vstore(float *p, dc_v x) { _mm256_storeu_ps(p, x); }
static inline dc_v vset(float x) { return _mm256_set1_ps(x); }
static inline dc_v vadd(dc_v a, dc_v b) { return _mm256_add_ps(a, b); }
static inline dc_v vsub(dc_v a, dc_v b) { return _mm256_sub_ps(a, b); }
static inline dc_v vmul(dc_v a, dc_v b) { return _mm256_mul_ps(a, b); }
static inline dc_v vdiv(dc_v a, dc_v b) { return _mm256_div_ps(a, b); }
static inline dc_v vsqrt(dc_v a) { return _mm256_sqrt_ps(a); }
/* maxps returns its second operand when either is NaN: exactly `a > b ? a : b`. */
static inline dc_v vmax_keep(dc_v a, dc_v b) { return _mm256_max_ps(a, b); }
static inline dc_v vsign(dc_v w) {
    const dc_v one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    const dc_v pos = _mm256_and_ps(_mm256_cmp_ps(w, zero, _CMP_GT_OQ), one);
    const dc_v neg = _mm256_and_ps(_mm256_cmp_ps(w, zero, _CMP_LT_OQ), one);
    return _mm256_sub_ps(pos, neg);
}
/* g − g is NaN exactly when g is NaN or ±Inf. */
static inline int count_nonfinite(dc_v g) {
    const dc_v d = _mm256_sub_ps(g, g);
    return __builtin_popcount((unsigned)_mm256_movemask_ps(_mm256_cmp_ps(d, d, _CMP_UNORD_Q)));
}
static inline int count_zero(dc_v w) {
    return __builtin_popcount(
        (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(w, _mm256_setzero_ps(), _CMP_EQ_OQ)));
}
static inline dc_acc acc_init(void) { return (dc_acc){_mm256_setzero_pd(), _mm256_setzero_pd()}; }
static inline void acc_sumsq(dc_acc *a, dc_v w) {
    const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(w));
    const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(w, 1));
    a->lo = _mm256_add_pd(a->lo, _mm256_mul_pd(lo, lo));
    a->hi = _mm256_add_pd(a->hi, _mm256_mul_pd(hi, hi));
}
static inline double acc_total(const dc_acc *a) {
    double t[4];
    _mm256_storeu_pd(t, _mm256_add_pd(a->lo, a->hi));
    return (t[0] + t[1]) + (t[2] + t[3]);
}

#include "kernels_simd.h"
#include "kernels_family_simd.h"

#pragma clang attribute pop
#endif
