#include "../test_harness.h"

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s LIBRARY\n", argv[0]); return 2; }
    const dc_plugin *p = load_plugin(argv[1]);
    CHECK(p->kind == DC_PLUGIN_OPTIMIZER && p->state_count == 1, "kind and state");
    double hp[] = {0.25, 0.5, 0.75};
    /* lr = 0.25, keep = 0.5 (decoupled decay), no coupled terms */
    dc_plugin_step s = {sizeof s, 0, 1, 0.25, 1.0, 0.25, hp, 0, 0, 0.5f, 0};
    float w[] = {1.0f, 1.0f, 1.0f}, g[] = {2.0f, -2.0f, 0.0f}, m[] = {0.0f, 0.0f, 0.0f};
    float *state[] = {m};
    p->apply(&s, w, g, state, 3);
    /* c = 0.5·g → sign(g); w = 0.5·1 − 0.25·sign; m = 0.25·g */
    CHECK(w[0] == 0.25f && w[1] == 0.75f && w[2] == 0.5f, "w = %g %g %g", w[0], w[1], w[2]);
    CHECK(m[0] == 0.5f && m[1] == -0.5f && m[2] == 0.0f, "m = %g %g %g", m[0], m[1], m[2]);
    /* coupled L2 0.5 on w = 2, g = −0.5 → g' = 0.5 > 0: moves down */
    s.coupled_l2 = 0.5f; s.decay_keep = 1.0f;
    float w2[] = {2.0f}, g2[] = {-0.5f}, m2[] = {0.0f};
    float *state2[] = {m2};
    p->apply(&s, w2, g2, state2, 1);
    CHECK(w2[0] == 1.75f && m2[0] == 0.125f, "coupled: w = %g m = %g", w2[0], m2[0]);
    return finish();
}
