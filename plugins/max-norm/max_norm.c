/*
 * max_norm: the max-norm constraint on rows (Srivastava et al. 2014, dropout's companion),
 * an ABI v2 tensor hook: after every step, each row whose L2 norm exceeds c is scaled back to
 * c as torch.renorm(w, 2, 0, c) does: w_r ← w_r·c/(‖w_r‖ + 1e-7) when ‖w_r‖ > c. A row is
 * every element sharing the first index (a Linear weight's incoming weights of one unit);
 * on a vector each element is a row, so it bounds |w_i|. Reports the rows it scaled.
 */
#include <decoupled_plugin.h>
#include <math.h>

static const dc_plugin_hparam hparams[] = {
    {"max_norm", 3.0, 1e-30, INFINITY, "c: the largest L2 norm a row may keep"},
};

static int64_t renorm(const dc_plugin_step *s, const dc_tensor_info *t, float *w, float *g,
                      float *const *state, double total) {
    (void)g;
    (void)state;
    (void)total;
    const float c = (float)s->hparams[0];
    int64_t scaled = 0;
    for (int64_t r = 0; r < t->rows; r++) {
        float *row = w + r * t->row_length;
        double sq = 0.0;  /* in double, in element order: the same bits on every worker */
        for (int64_t i = 0; i < t->row_length; i++) sq += (double)row[i] * (double)row[i];
        const float norm = (float)sqrt(sq);
        if (!(norm > c)) continue;
        const float k = c / (norm + 1e-7f);
        for (int64_t i = 0; i < t->row_length; i++) row[i] *= k;
        scaled++;
    }
    return scaled;
}

static const dc_plugin plugins[] = {{
    .struct_size = sizeof(dc_plugin),
    .kind = DC_PLUGIN_REGULARIZER,
    .name = "max_norm",
    .version = "1.0.0",
    .summary = "row-wise max-norm constraint after each step (torch.renorm(w, 2, 0, c))",
    .metric = "clipped_rows",
    .hparam_count = 1,
    .hparams = hparams,
    .phase = DC_PHASE_AFTER,
    .tensor_apply = renorm,
}};

static const dc_plugin_library library = {DC_PLUGIN_ABI_VERSION, sizeof(dc_plugin_library), 1, 0, plugins};

const dc_plugin_library *decoupled_plugin_library(void) { return &library; }
