#include "../test_harness.h"

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s LIBRARY\n", argv[0]); return 2; }
    const dc_plugin *p = load_plugin(argv[1]);
    CHECK(p->kind == DC_PLUGIN_REGULARIZER, "kind");
    CHECK(p->flags == DC_PLUGIN_USES_DECAY_SCALE, "declares that it uses decay_scale");
    double lambda = 0.5;
    /* s_t = 0.25, λ = 0.5 → threshold 0.125 */
    dc_plugin_step s = {sizeof s, 0, 1, 0.25, 1.0, 0.25, &lambda};
    float w[] = {1.0f, -1.0f, 0.125f, -0.1f, 0.0f, 0.5f};
    const float expect[] = {0.875f, -0.875f, 0.0f, 0.0f, 0.0f, 0.375f};
    int64_t zeros = p->apply(&s, w, NULL, NULL, 6);
    for (int i = 0; i < 6; i++) CHECK(w[i] == expect[i], "w[%d] = %g, expected %g", i, w[i], expect[i]);
    CHECK(zeros == 3, "zeros = %lld, expected 3", (long long)zeros);
    /* a zero weight stays exactly zero: no oscillation around 0 */
    zeros = p->apply(&s, w, NULL, NULL, 6);
    CHECK(w[2] == 0.0f && w[3] == 0.0f && w[4] == 0.0f && zeros == 3, "zeros stay zero");
    return finish();
}
