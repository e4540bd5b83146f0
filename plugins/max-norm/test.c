#include "../test_harness.h"
#include <math.h>

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s LIBRARY\n", argv[0]); return 2; }
    const dc_plugin *p = load_plugin(argv[1]);
    CHECK(p->phase == DC_PHASE_AFTER && p->tensor_apply != NULL && p->apply == NULL, "a tensor hook after the step");
    CHECK(p->flags == 0, "a constraint: no decay_scale");
    double c = 5.0;
    dc_plugin_step s = {sizeof s, 0, 1, 0.1, 1.0, 0.1, &c};
    /* rows (3, 4) norm 5: kept; (6, 8) norm 10: scaled to 5/(10 + 1e-7) */
    float w[] = {3.0f, 4.0f, 6.0f, 8.0f};
    int64_t shape[] = {2, 2};
    dc_tensor_info t = {sizeof t, DC_ROLE_WEIGHT, "fc.weight", 0, 4, 2, 2, 2, 0, shape};
    int64_t n = p->tensor_apply(&s, &t, w, NULL, NULL, 0.0);
    const float k = 5.0f / (10.0f + 1e-7f);
    CHECK(w[0] == 3.0f && w[1] == 4.0f, "a row at the bound stays: %g %g", w[0], w[1]);
    CHECK(w[2] == 6.0f * k && w[3] == 8.0f * k, "scaled: %g %g", w[2], w[3]);
    CHECK(n == 1, "one row scaled, got %lld", (long long)n);
    CHECK(fabsf(sqrtf(w[2] * w[2] + w[3] * w[3]) - 5.0f) < 1e-5f, "norm 5 after");
    return finish();
}
