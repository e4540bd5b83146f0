/*
 * anchor_decay: decoupled decay toward an anchor instead of toward zero (the decoupled
 * form of L2-SP, Li et al. 2018, "Explicit inductive bias for transfer learning"):
 *     w ← w − s_t·λ·(w − anchor)
 * The anchor is a state slot: the weights as they stand after the first update (step 1),
 * kept for the rest of the run. It is the example of a *stateful* regularizer: its state
 * must be checkpointed, or a resumed run would decay toward zero instead of the anchor.
 * Reports how many weights of the chunk sit exactly on their anchor.
 */
#include <decoupled_plugin.h>
#include <math.h>

static const dc_plugin_hparam hparams[] = {
    {"lambda", 0.0, 0.0, INFINITY, "λ: the pull toward the anchor per unit of s_t"},
};

static const char *const state_names[] = {"anchor"};

static int64_t apply(const dc_plugin_step *s, float *w, const float *g, float *const *state, size_t n) {
    (void)g;
    float *anchor = state[0];
    if (s->step == 1) {
        for (size_t i = 0; i < n; i++) anchor[i] = w[i];
    }
    const float k = (float)(s->decay_scale * s->hparams[0]);
    int64_t anchored = 0;
    for (size_t i = 0; i < n; i++) {
        const float x = w[i] - k * (w[i] - anchor[i]);
        w[i] = x;
        anchored += (x == anchor[i]);
    }
    return anchored;
}

static const dc_plugin plugins[] = {{
    .struct_size = sizeof(dc_plugin),
    .kind = DC_PLUGIN_REGULARIZER,
    .name = "anchor_decay",
    .version = "1.0.0",
    .summary = "decoupled decay toward the weights after step 1: w ← w − s_t·λ·(w − anchor)",
    .metric = "anchored",
    .hparam_count = 1,
    .state_count = 1,
    .hparams = hparams,
    .state_names = state_names,
    .apply = apply,
}};

static const dc_plugin_library library = {DC_PLUGIN_ABI_VERSION, sizeof(dc_plugin_library), 1, 0, plugins};

const dc_plugin_library *decoupled_plugin_library(void) { return &library; }
