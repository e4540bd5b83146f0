#include "../test_harness.h"

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s LIBRARY\n", argv[0]); return 2; }
    const dc_plugin *p = load_plugin(argv[1]);
    CHECK(p->kind == DC_PLUGIN_OPTIMIZER && p->state_count == 1, "kind and state");
    CHECK(p->direction != NULL && p->apply == NULL, "an optimizer supplies direction, not apply");
    double hp[] = {0.25, 0.5, 0.75};
    /* lr = 0.25; the host would add coupled terms to g and apply keep·w − d around this call */
    dc_plugin_step s = {sizeof s, 0, 1, 0.25, 1.0, 0.25, hp};
    float w[] = {1.0f, 1.0f, 1.0f}, g[] = {2.0f, -2.0f, 0.0f}, m[] = {0.0f, 0.0f, 0.0f}, d[3];
    float *state[] = {m};
    p->direction(&s, w, g, state, d, 3);
    /* c = 0.5·g → d = 0.25·sign(g); m = 0.25·g; w is read-only */
    CHECK(d[0] == 0.25f && d[1] == -0.25f && d[2] == 0.0f, "d = %g %g %g", d[0], d[1], d[2]);
    CHECK(m[0] == 0.5f && m[1] == -0.5f && m[2] == 0.0f, "m = %g %g %g", m[0], m[1], m[2]);
    CHECK(w[0] == 1.0f && w[1] == 1.0f && w[2] == 1.0f, "w changed: %g %g %g", w[0], w[1], w[2]);
    /* the momentum decides the sign: m = 0.5, g = −0.25 → c = 0.125 > 0; m = 0.75·0.5 − 0.0625 */
    float g2[] = {-0.25f}, m2[] = {0.5f}, d2[1];
    float *state2[] = {m2};
    p->direction(&s, w, g2, state2, d2, 1);
    CHECK(d2[0] == 0.25f && m2[0] == 0.3125f, "momentum: d = %g m = %g", d2[0], m2[0]);
    return finish();
}
