/*
 * lion: the Lion optimizer (Chen et al., "Symbolic Discovery of Optimization Algorithms",
 * 2023), proving optimizers are pluggable too. It supplies only its direction:
 *     c = β1·m + (1 − β1)·g        d = lr·sign(c)
 *     m ← β2·m + (1 − β2)·g
 * The host adds the group's coupled L2/L1 terms to g before this and writes
 * w ← keep·w − d after it (keep = 1 − s_t·λ from the group's weight_decay, if any).
 */
#include <decoupled_plugin.h>

static const dc_plugin_hparam hparams[] = {
    {"lr", 1e-4, 0.0, 1e3, "base learning rate (Lion wants 3-10x smaller than AdamW)"},
    {"beta1", 0.9, 0.0, 0.999999, "interpolation for the update direction"},
    {"beta2", 0.99, 0.0, 0.999999, "momentum decay"},
};
static const dc_plugin_state states[] = {{"exp_avg", 0.0f, 0}};

static void direction(const dc_plugin_step *s, const float *w, const float *g, float *const *state, float *d,
                      size_t n) {
    (void)w;
    const float lr = (float)s->lr, b1 = (float)s->hparams[1], b2 = (float)s->hparams[2];
    float *m = state[0];
    for (size_t i = 0; i < n; i++) {
        const float c = b1 * m[i] + (1.0f - b1) * g[i];
        const float sign = (float)(c > 0.0f) - (float)(c < 0.0f);
        d[i] = lr * sign;
        m[i] = b2 * m[i] + (1.0f - b2) * g[i];
    }
}

static const dc_plugin plugins[] = {{
    .struct_size = sizeof(dc_plugin),
    .kind = DC_PLUGIN_OPTIMIZER,
    .name = "lion",
    .version = "1.0.0",
    .summary = "Lion: sign of an interpolated momentum (Chen et al. 2023)",
    .metric = NULL,
    .hparam_count = 3,
    .state_count = 1,
    .hparams = hparams,
    .states = states,
    .direction = direction,
}};

static const dc_plugin_library library = {DC_PLUGIN_ABI_VERSION, sizeof(dc_plugin_library), 1, 0, plugins};

const dc_plugin_library *decoupled_plugin_library(void) { return &library; }
