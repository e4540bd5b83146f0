/* Run-time choice of the kernel path from the CPU's features. */
#include "kernels_internal.h"
#include <string.h>

#define DC_TABLE(isa, width) \
    { #isa, width, dc_sgd_step_##isa, dc_adam_step_##isa, dc_probe_##isa, DC_FAMILY_ENTRIES(isa), \
      dc_coupled_##isa, dc_apply_direction_##isa }

static const dc_kernel_table dc_scalar_table = DC_TABLE(scalar, 1);
#if DC_HAVE_AVX2
static const dc_kernel_table dc_avx2_table = DC_TABLE(avx2, 8);
#endif
#if DC_HAVE_AVX512
static const dc_kernel_table dc_avx512_table = DC_TABLE(avx512, 16);
#endif
#if DC_HAVE_NEON
static const dc_kernel_table dc_neon_table = DC_TABLE(neon, 4);
#endif

static const char *const dc_compiled_names[] = {
#if DC_HAVE_AVX512
    "avx512",
#endif
#if DC_HAVE_AVX2
    "avx2",
#endif
#if DC_HAVE_NEON
    "neon",
#endif
    "scalar", NULL};

const char *const *dc_kernels_compiled(void) { return dc_compiled_names; }

const dc_kernel_table *dc_kernels_named(const char *name) {
    if (name == NULL) return NULL;
    if (strcmp(name, "scalar") == 0) return &dc_scalar_table;
#if DC_HAVE_AVX2
    /* __builtin_cpu_supports also checks that the OS saves the AVX register state. */
    if (strcmp(name, "avx2") == 0)
        return (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? &dc_avx2_table : NULL;
#endif
#if DC_HAVE_AVX512
    if (strcmp(name, "avx512") == 0)
        return __builtin_cpu_supports("avx512f") ? &dc_avx512_table : NULL;
#endif
#if DC_HAVE_NEON
    if (strcmp(name, "neon") == 0) return &dc_neon_table;
#endif
    return NULL;
}

const dc_kernel_table *dc_kernels_best(void) {
    for (const char *const *n = dc_compiled_names; *n != NULL; n++) {
        const dc_kernel_table *t = dc_kernels_named(*n);
        if (t != NULL) return t;
    }
    return &dc_scalar_table;
}
