/*
 * anchor_decay: decoupled decay toward the starting weights instead of toward zero (the
 * decoupled form of L2-SP, Li et al. 2018, "Explicit inductive bias for transfer learning"):
 *     w ← w − s_t·λ·(w − w₀)
 * w₀ is a state slot filled by the init hook from the weights a fresh run starts with (a
 * pretrained model, say) and kept for the rest of the run. It is the example of a *stateful*
 * regularizer: its state must be checkpointed, or a resumed run would pull toward zero.
 * Reports how many weights of the chunk sit exactly on their anchor.
 */
#include <decoupled_plugin.h>
#include <math.h>
#include <string.h>

static const dc_plugin_hparam hparams[] = {
    {"lambda", 0.0, 0.0, INFINITY, "λ: the pull toward the anchor per unit of s_t"},
};

static const dc_plugin_state states[] = {{"anchor", 0.0f, 0}};

static void init_state(const dc_tensor_info *t, const float *w, float *const *state) {
    memcpy(state[0], w, (size_t)t->count * sizeof(float));
}

static int64_t apply(const dc_plugin_step *s, float *w, const float *g, float *const *state, size_t n) {
    (void)g;
    const float *anchor = state[0];
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
    .version = "2.0.0",
    .summary = "decoupled decay toward the starting weights (L2-SP): w ← w − s_t·λ·(w − w₀)",
    .metric = "anchored",
    .hparam_count = 1,
    .state_count = 1,
    .hparams = hparams,
    .states = states,
    .apply = apply,
    .flags = DC_PLUGIN_USES_DECAY_SCALE, /* s_t·λ: the host adds `scale` */
    .init_state = init_state,
}};

static const dc_plugin_library library = {DC_PLUGIN_ABI_VERSION, sizeof(dc_plugin_library), 1, 0, plugins};

const dc_plugin_library *decoupled_plugin_library(void) { return &library; }
