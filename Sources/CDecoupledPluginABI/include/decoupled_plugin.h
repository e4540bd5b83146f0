/*
 * The C ABI of Decoupled's external plugins: optimizers and regularizers built as shared
 * libraries, loaded with dlopen from the installation's plugin directory, a development
 * build's plugins/ build outputs or DECOUPLED_PLUGIN_PATH (plugins/README.md says which).
 * The host checks every field below before using it: a NULL pointer with a nonzero count,
 * a NULL, empty, over-long or duplicate name refuses the library, naming the field.
 *
 * A library exports one symbol, DC_PLUGIN_ENTRY_SYMBOL, returning a dc_plugin_library
 * whose first two fields are the ABI version and the struct size, so the loader can refuse
 * a library built against another version before reading anything else.
 *
 * The host calls a regularizer's `apply` on each cache-sized chunk right after the
 * optimizer's update has touched it, and an optimizer's `direction` on each chunk instead
 * of a built-in kernel, on every worker thread: a plugin costs no extra trip to memory and
 * must be thread-safe (no mutable globals; all state lives in the state slots it declares).
 * The engine owns the rest of the update (docs/architecture.md): it adds the group's coupled
 * terms to the gradient before `direction` and applies the decoupled decay and the step
 * after it (w ← keep·w − d), exactly as its built-in kernels do, so an optimizer supplies
 * only its direction.
 *
 * Version 2 adds what needs whole tensors (docs/architecture.md has the pipeline): the
 * tensor's name, shape and role (dc_tensor_info); a per-tensor hook `tensor_apply` that runs
 * before the element-wise pass (on the gradients: clipping) or after it (on the weights:
 * constraints), with an optional reduction `partial` over every tensor the configured entry
 * covers; an `init` hook that fills the state from the starting weights; and state slots
 * with declared initial values (dc_plugin_state). An optimizer supplies only its direction
 * (`direction`); the host applies the coupled terms, the decoupled decay and the step around
 * it. Libraries built for version 1 are refused
 * with a message naming both versions: rebuild them (plugins/README.md, "From ABI v1 to v2").
 *
 * How to write one: plugins/README.md.
 */
#ifndef DECOUPLED_PLUGIN_H
#define DECOUPLED_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DC_PLUGIN_ABI_VERSION 2u
#define DC_PLUGIN_ENTRY_SYMBOL "decoupled_plugin_library"

typedef enum dc_plugin_kind {
    DC_PLUGIN_REGULARIZER = 1, /**< `apply` runs after the optimizer's update on the same chunk */
    DC_PLUGIN_OPTIMIZER = 2,   /**< `direction` replaces the built-in kernel for its parameter groups */
} dc_plugin_kind;

/** When `tensor_apply` runs: before the element-wise pass (gradients) or after it (weights). */
typedef enum dc_plugin_phase {
    DC_PHASE_NONE = 0,   /**< no tensor hook */
    DC_PHASE_BEFORE = 1, /**< on the raw gradients, before the coupled terms and the optimizer */
    DC_PHASE_AFTER = 2,  /**< on the new weights, after the element-wise pass */
} dc_plugin_phase;

/** What a plugin declares about itself (dc_plugin.flags, bits or-ed together). */
typedef enum dc_plugin_flags {
    /** A regularizer that uses step->decay_scale (s_t): the host adds the `scale` choice
     *  (lr | schedule | constant) to its hyper-parameters and the decay audit prints
     *  "× s_t=<scale>". Without it decay_scale is 0 and `scale` is not a key of the plugin. */
    DC_PLUGIN_USES_DECAY_SCALE = 1u << 0,
} dc_plugin_flags;

/** What a parameter tensor is for (the config's `role`). */
typedef enum dc_tensor_role {
    DC_ROLE_WEIGHT = 0,
    DC_ROLE_BIAS = 1,
    DC_ROLE_NORM = 2,
    DC_ROLE_OTHER = 3,
} dc_tensor_role;

/** One tensor, for the tensor hooks. A row is every element sharing the first index (a
 *  Linear weight [out, in] has `out` rows of `in`); a scalar is one row. */
typedef struct dc_tensor_info {
    uint32_t struct_size;  /**< sizeof(dc_tensor_info) of the host */
    uint32_t role;         /**< dc_tensor_role */
    const char *name;      /**< e.g. "fc1.weight" */
    int64_t index;         /**< position in the model's declaration order */
    int64_t count;         /**< elements */
    int64_t rows;
    int64_t row_length;    /**< count / rows */
    uint32_t rank;
    uint32_t reserved;
    const int64_t *shape;  /**< rank extents */
} dc_tensor_info;

/** How much state a slot keeps per tensor (rows: see dc_tensor_info). Every layout but
 *  DC_STATE_ELEMENT is for the tensor hooks only. */
typedef enum dc_state_layout {
    DC_STATE_ELEMENT = 0,  /**< one float per element: `apply` sees it at the chunk's offset */
    DC_STATE_ROWS = 1,     /**< one per row (t->rows floats) */
    DC_STATE_COLUMNS = 2,  /**< one per column (t->row_length floats) */
    DC_STATE_SCALAR = 3,   /**< one per tensor */
    /** Factored over the matrices of the last two dimensions, as torch.optim.Adafactor does:
     *  a tensor of shape [B…, R, C] (rank ≥ 2) has B·R floats ([B…, R], row b·R + r of
     *  matrix b) and B·C floats ([B…, C]); a tensor of rank < 2 has one float. */
    DC_STATE_MATRIX_ROWS = 4,
    DC_STATE_MATRIX_COLUMNS = 5,
    /** One per element of a tensor of rank < 2 (t->count floats), one float for a tensor of
     *  rank ≥ 2: the unfactored moment of the vectors beside the two above. */
    DC_STATE_VECTOR_ELEMENTS = 6,
} dc_state_layout;

/** A state slot of every tensor of the plugin's groups, checkpointed with the run. */
typedef struct dc_plugin_state {
    const char *name;      /**< letters, digits and '_'; the host prefixes the plugin's name */
    float initial_value;   /**< every value before the first step (finite) */
    uint32_t layout;       /**< dc_state_layout; `apply` gets NULL for a slot not per element */
} dc_plugin_state;

/** A hyper-parameter with its default and inclusive valid range. */
typedef struct dc_plugin_hparam {
    const char *name;
    double default_value;
    double min_value;
    double max_value;
    const char *doc;
} dc_plugin_hparam;

/** What a plugin knows about the current step, for one parameter group. */
typedef struct dc_plugin_step {
    uint32_t struct_size;  /**< sizeof(dc_plugin_step) of the host */
    uint32_t reserved;
    int64_t step;          /**< t, counting from 1 */
    double lr;             /**< lr_t = base lr · η_t · group lr multiplier */
    double eta;            /**< η_t, the schedule multiplier */
    double decay_scale;    /**< s_t for decoupled decay: lr_t, η_t or 1 per the plugin's `scale`
                                (regularizers with DC_PLUGIN_USES_DECAY_SCALE; 0 for the others) */
    const double *hparams; /**< resolved values, in the order the plugin declared them */
} dc_plugin_step;

/**
 * Element-wise work on one chunk: `w` (n parameters, updated in place), `g` (n gradient
 * values, read-only), `state[i]` (n floats of the i-th declared state slot, zero at start).
 * Returns a count the host reports as the plugin's metric (e.g. weights set exactly to
 * zero), or -1 if the plugin reports none.
 */
typedef int64_t (*dc_plugin_apply_fn)(const dc_plugin_step *step, float *w, const float *g,
                                      float *const *state, size_t n);

/**
 * An optimizer's direction on one chunk of n elements: `w` holds the weights before the step,
 * `g` the gradient with the group's coupled terms already added (g + l2·w + l1·sign(w)),
 * `state[i]` the chunk's part of the i-th declared slot (updated in place; NULL for a slot
 * not per element). Writes the step `d` (n floats); the host then writes w ← keep·w − d
 * (keep = 1 − s_t·λ of the group's decoupled decay) and gathers the step's statistics.
 */
typedef void (*dc_plugin_direction_fn)(const dc_plugin_step *step, const float *w, const float *g,
                                       float *const *state, float *d, size_t n);

/**
 * One tensor's share of a reduction (e.g. Σg² for the global gradient norm). The host sums
 * the shares of every tensor the configured entry covers in tensor order (so the result does
 * not depend on the number of workers) and hands the sum to `tensor_apply` as `total`.
 * `state[i]` is this tensor's part of the i-th slot (t->count floats).
 */
typedef double (*dc_plugin_partial_fn)(const dc_plugin_step *step, const dc_tensor_info *t,
                                       const float *w, const float *g, float *const *state);

/**
 * Work on one whole tensor in the plugin's phase, given the reduction's `total` (0 without
 * `partial`). Both `w` and `g` may be written (BEFORE: clip g; AFTER: constrain w). Runs on
 * worker threads, one tensor per call. Returns a count for the plugin's metric, or -1.
 */
typedef int64_t (*dc_plugin_tensor_fn)(const dc_plugin_step *step, const dc_tensor_info *t, float *w,
                                       float *g, float *const *state, double total);

/**
 * Once per tensor before the first update of a fresh run (never after a resume, whose state
 * comes from the checkpoint): fills state from the starting weights, e.g. an anchor w₀.
 */
typedef void (*dc_plugin_init_fn)(const dc_tensor_info *t, const float *w, float *const *state);

typedef struct dc_plugin {
    uint32_t struct_size;  /**< sizeof(dc_plugin) */
    uint32_t kind;         /**< dc_plugin_kind */
    const char *name;      /**< registry name used in configs, e.g. "l1_decoupled" */
    const char *version;   /**< the plugin's own version, e.g. "1.0.0" */
    const char *summary;   /**< one line for `decoupled plugins list` */
    const char *metric;    /**< name of what `apply` counts, or NULL */
    uint32_t hparam_count;
    uint32_t state_count;
    const dc_plugin_hparam *hparams;
    const dc_plugin_state *states;     /**< state_count slots with their initial values */
    dc_plugin_apply_fn apply;          /**< regularizers: element-wise on each chunk (optional with tensor hooks); optimizers: NULL */
    uint32_t phase;                    /**< dc_plugin_phase of `tensor_apply` (regularizers) */
    uint32_t flags;                    /**< dc_plugin_flags, or 0 */
    dc_plugin_partial_fn partial;      /**< optional reduction before `tensor_apply` */
    dc_plugin_tensor_fn tensor_apply;  /**< required when phase is not NONE, else NULL */
    dc_plugin_init_fn init_state;      /**< optional: fills state from the starting weights */
    dc_plugin_direction_fn direction;  /**< optimizers: required; regularizers: NULL */
} dc_plugin;

/** What the entry symbol returns; version and size first, always. */
typedef struct dc_plugin_library {
    uint32_t abi_version;  /**< DC_PLUGIN_ABI_VERSION the library was built against */
    uint32_t struct_size;  /**< sizeof(dc_plugin_library) */
    uint32_t plugin_count;
    uint32_t reserved;
    const dc_plugin *plugins;
} dc_plugin_library;

typedef const dc_plugin_library *(*dc_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif
#endif
