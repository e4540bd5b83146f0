/*
 * l1_decoupled: decoupled L1 decay, proximal. After the optimizer's step on each chunk,
 *     w ← sign(w) · max(|w| − s_t·λ, 0)
 * the soft-threshold (proximal operator of s_t·λ·‖w‖₁), which lands on exact zeros instead
 * of oscillating around 0 like the sign subgradient. s_t comes from the host's `scale`
 * (lr | schedule | constant), exactly as for decoupled weight decay. Reports how many
 * weights of the chunk are exactly zero afterwards.
 */
#include <decoupled_plugin.h>
#include <math.h>

static const dc_plugin_hparam hparams[] = {
    {"lambda", 0.0, 0.0, INFINITY, "λ: the soft threshold per unit of s_t"},
};

static int64_t apply(const dc_plugin_step *s, float *w, const float *g, float *const *state, size_t n) {
    (void)g;
    (void)state;
    const float t = (float)(s->decay_scale * s->hparams[0]);
    int64_t zeros = 0;
    for (size_t i = 0; i < n; i++) {
        const float a = fabsf(w[i]) - t;
        const float x = a > 0.0f ? copysignf(a, w[i]) : 0.0f;
        w[i] = x;
        zeros += (x == 0.0f);
    }
    return zeros;
}

static const dc_plugin plugins[] = {{
    .struct_size = sizeof(dc_plugin),
    .kind = DC_PLUGIN_REGULARIZER,
    .name = "l1_decoupled",
    .version = "1.0.0",
    .summary = "decoupled L1 decay, proximal: w ← sign(w)·max(|w| − s_t·λ, 0)",
    .metric = "zeros",
    .hparam_count = 1,
    .state_count = 0,
    .hparams = hparams,
    .states = NULL,
    .apply = apply,
    .flags = DC_PLUGIN_USES_DECAY_SCALE, /* s_t·λ: the host adds `scale` */
}};

static const dc_plugin_library library = {DC_PLUGIN_ABI_VERSION, sizeof(dc_plugin_library), 1, 0, plugins};

const dc_plugin_library *decoupled_plugin_library(void) { return &library; }
