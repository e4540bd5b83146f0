#include "../test_harness.h"

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s LIBRARY\n", argv[0]); return 2; }
    const dc_plugin *p = load_plugin(argv[1]);
    CHECK(p->kind == DC_PLUGIN_REGULARIZER && p->state_count == 1, "a regularizer with one state slot");
    double lambda = 0.5;
    /* s_t = 0.5, λ = 0.5 → k = 0.25 */
    dc_plugin_step s = {sizeof s, 0, 1, 0.5, 1.0, 0.5, &lambda, 0, 0, 1, 0};
    float w[] = {1.0f, -2.0f, 0.0f};
    float anchor[] = {9.0f, 9.0f, 9.0f};
    float *state[] = {anchor};
    /* step 1 captures the anchor: nothing moves */
    int64_t on = p->apply(&s, w, NULL, state, 3);
    CHECK(anchor[0] == 1.0f && anchor[1] == -2.0f && anchor[2] == 0.0f, "step 1 captures the weights");
    CHECK(w[0] == 1.0f && on == 3, "step 1 leaves the weights on the anchor");
    /* later steps pull toward the anchor: 3 → 3 − 0.25·(3 − 1) = 2.5 */
    s.step = 2;
    w[0] = 3.0f; w[1] = -2.0f; w[2] = -4.0f;
    on = p->apply(&s, w, NULL, state, 3);
    CHECK(w[0] == 2.5f && w[1] == -2.0f && w[2] == -3.0f, "pull: %g %g %g", w[0], w[1], w[2]);
    CHECK(on == 1 && anchor[0] == 1.0f, "the anchor stays; one weight on it");
    return finish();
}
