#include "../test_harness.h"

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s LIBRARY\n", argv[0]); return 2; }
    const dc_plugin *p = load_plugin(argv[1]);
    CHECK(p->kind == DC_PLUGIN_REGULARIZER && p->state_count == 1 && p->init_state != NULL, "a regularizer with one state slot and an init hook");
    CHECK(p->flags == DC_PLUGIN_USES_DECAY_SCALE, "declares that it uses decay_scale");
    float w[] = {1.0f, -2.0f, 0.0f};
    float anchor[] = {9.0f, 9.0f, 9.0f};
    float *state[] = {anchor};
    int64_t shape[] = {3};
    dc_tensor_info t = {sizeof t, DC_ROLE_WEIGHT, "w", 0, 3, 3, 1, 1, 0, shape};
    p->init_state(&t, w, state);
    CHECK(anchor[0] == 1.0f && anchor[1] == -2.0f && anchor[2] == 0.0f, "init copies the starting weights");
    double lambda = 0.5;
    /* s_t = 0.5, λ = 0.5 → k = 0.25: 3 → 3 − 0.25·(3 − 1) = 2.5 */
    dc_plugin_step s = {sizeof s, 0, 2, 0.5, 1.0, 0.5, &lambda};
    w[0] = 3.0f; w[1] = -2.0f; w[2] = -4.0f;
    int64_t on = p->apply(&s, w, NULL, state, 3);
    CHECK(w[0] == 2.5f && w[1] == -2.0f && w[2] == -3.0f, "pull: %g %g %g", w[0], w[1], w[2]);
    CHECK(on == 1 && anchor[0] == 1.0f, "the anchor stays; one weight on it");
    return finish();
}
