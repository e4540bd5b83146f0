// oneDNN convolutions behind the small interface of CDecoupledConvolution.h. Every primitive
// uses a user scratchpad inside the caller's workspace, so one dc_conv runs on several threads
// at once; every call runs with one OpenMP thread (see one_openmp_thread).
#include "CDecoupledConvolution.h"

#include <dlfcn.h>
#include <dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static dnnl_engine_t engine;
static dnnl_status_t engine_status = dnnl_runtime_error;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static void create_engine(void) { engine_status = dnnl_engine_create(&engine, dnnl_cpu, 0); }

// oneDNN (Debian's build) threads with OpenMP and would start a team of one thread per core
// inside every call. The callers already run one call per core, so each thread asks for one
// OpenMP thread for itself (the setting is per thread). Looked up at run time: omp.h and
// libgomp's linker name are not on Swift's search paths, and libdnnl already loads libgomp.
// Also called before a primitive is created, since oneDNN fixes a kernel's thread count then.
static void one_openmp_thread(void) {
    static _Thread_local int done;
    if (done) return;
    void (*set)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    if (set) set(1);
    done = 1;
}

static _Thread_local dnnl_stream_t thread_stream;
static dnnl_stream_t stream(void) {
    one_openmp_thread();
    if (!thread_stream && dnnl_stream_create(&thread_stream, engine, dnnl_stream_default_flags) != dnnl_success)
        thread_stream = NULL;
    return thread_stream;
}

/** A blocked copy of a plain tensor: where it lives in the workspace, and the reorder that
 *  fills it (NULL when the kernel takes the plain layout as it is, or when `shared`: another
 *  stage of the same call fills the same copy). */
typedef struct stage {
    dnnl_memory_desc_t md;
    dnnl_primitive_t reorder;
    size_t offset;  // floats into the workspace
    int shared;
} stage;

struct dc_conv {
    dc_conv_shape shape;
    dnnl_memory_desc_t plain_src, plain_dst, plain_weights, bias;
    dnnl_primitive_t forward, backward_data, backward_weights;
    const char *implementation;
    stage fwd_src, fwd_dst;                 // x in, y out
    stage bwd_weights_src, bwd_weights_diff_dst, bwd_weights_diff_weights;
    stage bwd_data_diff_dst, bwd_data_diff_src;
    dnnl_memory_t fwd_weights, bwd_data_weights;          // owned, filled by dc_conv_set_weights
    dnnl_primitive_t fwd_weights_reorder, bwd_data_weights_reorder;
    size_t scratchpad_offset, workspace_floats;
    dnnl_primitive_desc_t descriptors[16];
    int descriptor_count;
};

static int fail(char *error, size_t size, const char *what, dnnl_status_t status) {
    if (error && size) snprintf(error, size, "oneDNN: %s failed (status %d)", what, (int)status);
    return -1;
}

#define TRY(call, what) do { dnnl_status_t s_ = (call); if (s_ != dnnl_success) return fail(error, error_size, what, s_); } while (0)

static size_t floats(const dnnl_memory_desc_t *md) { return (dnnl_memory_desc_get_size(md) + 63) / 4 & ~(size_t)15; }

/** A primitive with a user scratchpad, remembering the largest scratchpad. */
static int make_primitive(dc_conv *c, const void *op_desc, const dnnl_primitive_desc_t hint, dnnl_primitive_desc_t *pd,
                          dnnl_primitive_t *primitive, size_t *scratch, char *error, size_t error_size) {
    dnnl_primitive_attr_t attr;
    TRY(dnnl_primitive_attr_create(&attr), "primitive_attr_create");
    dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    dnnl_status_t s = dnnl_primitive_desc_create(pd, op_desc, attr, engine, hint);
    dnnl_primitive_attr_destroy(attr);
    if (s != dnnl_success) return fail(error, error_size, "primitive_desc_create", s);
    c->descriptors[c->descriptor_count++] = *pd;
    size_t need = floats(dnnl_primitive_desc_query_md(*pd, dnnl_query_scratchpad_md, 0));
    if (need > *scratch) *scratch = need;
    TRY(dnnl_primitive_create(primitive, *pd), "primitive_create");
    return 0;
}

/** `st` takes the layout `want`; a reorder from (to, when `out`) `plain` when they differ. */
static int make_stage(dc_conv *c, stage *st, const dnnl_memory_desc_t *want, const dnnl_memory_desc_t *plain, int out,
                      size_t *workspace, size_t *scratch, char *error, size_t error_size) {
    st->md = *want;
    st->reorder = NULL;
    st->offset = 0;
    st->shared = 0;
    if (dnnl_memory_desc_equal(want, plain)) return 0;
    st->offset = *workspace;
    *workspace += floats(want);
    dnnl_primitive_attr_t attr;
    TRY(dnnl_primitive_attr_create(&attr), "primitive_attr_create");
    dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    dnnl_primitive_desc_t pd;
    dnnl_status_t s = out ? dnnl_reorder_primitive_desc_create(&pd, want, engine, plain, engine, attr)
                          : dnnl_reorder_primitive_desc_create(&pd, plain, engine, want, engine, attr);
    dnnl_primitive_attr_destroy(attr);
    if (s != dnnl_success) return fail(error, error_size, "reorder_primitive_desc_create", s);
    c->descriptors[c->descriptor_count++] = pd;
    size_t need = floats(dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0));
    if (need > *scratch) *scratch = need;
    TRY(dnnl_primitive_create(&st->reorder, pd), "primitive_create");
    return 0;
}

static int make_weights(dc_conv *c, dnnl_memory_t *memory, dnnl_primitive_t *reorder, const dnnl_memory_desc_t *want,
                        char *error, size_t error_size) {
    TRY(dnnl_memory_create(memory, want, engine, DNNL_MEMORY_ALLOCATE), "memory_create");
    *reorder = NULL;
    if (dnnl_memory_desc_equal(want, &c->plain_weights)) return 0;
    dnnl_primitive_desc_t pd;
    TRY(dnnl_reorder_primitive_desc_create(&pd, &c->plain_weights, engine, want, engine, NULL), "reorder_primitive_desc_create");
    c->descriptors[c->descriptor_count++] = pd;
    TRY(dnnl_primitive_create(reorder, pd), "primitive_create");
    return 0;
}

static int build(dc_conv *c, char *error, size_t error_size) {
    const dc_conv_shape *s = &c->shape;
    dnnl_dims_t src = {s->batch, s->in_channels, s->height, s->width};
    dnnl_dims_t wei = {s->out_channels, s->in_channels, s->kernel_h, s->kernel_w};
    dnnl_dims_t bia = {s->out_channels};
    int64_t oh = (s->height + s->pad_top + s->pad_bottom - s->kernel_h) / s->stride_h + 1;
    int64_t ow = (s->width + s->pad_left + s->pad_right - s->kernel_w) / s->stride_w + 1;
    dnnl_dims_t dst = {s->batch, s->out_channels, oh, ow};
    dnnl_dims_t strides = {s->stride_h, s->stride_w}, pad_l = {s->pad_top, s->pad_left}, pad_r = {s->pad_bottom, s->pad_right};
    TRY(dnnl_memory_desc_init_by_tag(&c->plain_src, 4, src, dnnl_f32, dnnl_nchw), "memory_desc_init");
    TRY(dnnl_memory_desc_init_by_tag(&c->plain_dst, 4, dst, dnnl_f32, dnnl_nchw), "memory_desc_init");
    TRY(dnnl_memory_desc_init_by_tag(&c->plain_weights, 4, wei, dnnl_f32, dnnl_oihw), "memory_desc_init");
    TRY(dnnl_memory_desc_init_by_tag(&c->bias, 1, bia, dnnl_f32, dnnl_x), "memory_desc_init");
    dnnl_memory_desc_t any_src, any_wei, any_dst;
    TRY(dnnl_memory_desc_init_by_tag(&any_src, 4, src, dnnl_f32, dnnl_format_tag_any), "memory_desc_init");
    TRY(dnnl_memory_desc_init_by_tag(&any_wei, 4, wei, dnnl_f32, dnnl_format_tag_any), "memory_desc_init");
    TRY(dnnl_memory_desc_init_by_tag(&any_dst, 4, dst, dnnl_f32, dnnl_format_tag_any), "memory_desc_init");

    size_t workspace = 0, scratch = 0;
    dnnl_convolution_desc_t fd, bdd, bwd;
    dnnl_primitive_desc_t fpd, bdpd, bwpd;
    TRY(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &any_src, &any_wei,
                                           &c->bias, &any_dst, strides, pad_l, pad_r), "convolution_forward_desc_init");
    if (make_primitive(c, &fd, NULL, &fpd, &c->forward, &scratch, error, error_size)) return -1;
    TRY(dnnl_primitive_desc_query(fpd, dnnl_query_impl_info_str, 0, &c->implementation), "primitive_desc_query");
    TRY(dnnl_convolution_backward_data_desc_init(&bdd, dnnl_convolution_direct, &any_src, &any_wei, &any_dst,
                                                 strides, pad_l, pad_r), "convolution_backward_data_desc_init");
    if (make_primitive(c, &bdd, fpd, &bdpd, &c->backward_data, &scratch, error, error_size)) return -1;
    TRY(dnnl_convolution_backward_weights_desc_init(&bwd, dnnl_convolution_direct, &any_src, &any_wei, &c->bias,
                                                    &any_dst, strides, pad_l, pad_r), "convolution_backward_weights_desc_init");
    if (make_primitive(c, &bwd, fpd, &bwpd, &c->backward_weights, &scratch, error, error_size)) return -1;

#define MD(pd, what) dnnl_primitive_desc_query_md(pd, what, 0)
    if (make_stage(c, &c->fwd_src, MD(fpd, dnnl_query_src_md), &c->plain_src, 0, &workspace, &scratch, error, error_size) ||
        make_stage(c, &c->fwd_dst, MD(fpd, dnnl_query_dst_md), &c->plain_dst, 1, &workspace, &scratch, error, error_size) ||
        make_stage(c, &c->bwd_weights_src, MD(bwpd, dnnl_query_src_md), &c->plain_src, 0, &workspace, &scratch, error, error_size) ||
        make_stage(c, &c->bwd_weights_diff_dst, MD(bwpd, dnnl_query_diff_dst_md), &c->plain_dst, 0, &workspace, &scratch, error, error_size) ||
        make_stage(c, &c->bwd_weights_diff_weights, MD(bwpd, dnnl_query_diff_weights_md), &c->plain_weights, 1, &workspace, &scratch, error, error_size) ||
        make_stage(c, &c->bwd_data_diff_src, MD(bdpd, dnnl_query_diff_src_md), &c->plain_src, 1, &workspace, &scratch, error, error_size) ||
        make_weights(c, &c->fwd_weights, &c->fwd_weights_reorder, MD(fpd, dnnl_query_weights_md), error, error_size) ||
        make_weights(c, &c->bwd_data_weights, &c->bwd_data_weights_reorder, MD(bdpd, dnnl_query_weights_md), error, error_size))
        return -1;
    // When backward-data reads dY in the layout backward-weights already copied it to (both of
    // fmnist_2c2d's convolutions), it takes that copy instead of reordering dY a second time.
    if (c->bwd_weights_diff_dst.reorder && dnnl_memory_desc_equal(MD(bdpd, dnnl_query_diff_dst_md), &c->bwd_weights_diff_dst.md)) {
        c->bwd_data_diff_dst = c->bwd_weights_diff_dst;
        c->bwd_data_diff_dst.reorder = NULL;
        c->bwd_data_diff_dst.shared = 1;
    } else if (make_stage(c, &c->bwd_data_diff_dst, MD(bdpd, dnnl_query_diff_dst_md), &c->plain_dst, 0, &workspace, &scratch,
                          error, error_size)) {
        return -1;
    }
#undef MD
    c->scratchpad_offset = workspace;
    c->workspace_floats = workspace + scratch;
    return 0;
}

dc_conv *dc_conv_create(const dc_conv_shape *shape, char *error, size_t error_size) {
    pthread_once(&engine_once, create_engine);
    if (engine_status != dnnl_success) {
        fail(error, error_size, "engine_create", engine_status);
        return NULL;
    }
    one_openmp_thread();
    dc_conv *c = calloc(1, sizeof *c);
    if (!c) {
        if (error && error_size) snprintf(error, error_size, "out of memory");
        return NULL;
    }
    c->shape = *shape;
    if (build(c, error, error_size)) {
        dc_conv_destroy(c);
        return NULL;
    }
    return c;
}

void dc_conv_destroy(dc_conv *c) {
    if (!c) return;
    dnnl_primitive_t primitives[] = {c->forward, c->backward_data, c->backward_weights, c->fwd_src.reorder, c->fwd_dst.reorder,
                                     c->bwd_weights_src.reorder, c->bwd_weights_diff_dst.reorder,
                                     c->bwd_weights_diff_weights.reorder, c->bwd_data_diff_dst.reorder,
                                     c->bwd_data_diff_src.reorder, c->fwd_weights_reorder, c->bwd_data_weights_reorder};
    for (size_t i = 0; i < sizeof primitives / sizeof primitives[0]; i++)
        if (primitives[i]) dnnl_primitive_destroy(primitives[i]);
    if (c->fwd_weights) dnnl_memory_destroy(c->fwd_weights);
    if (c->bwd_data_weights) dnnl_memory_destroy(c->bwd_data_weights);
    for (int i = 0; i < c->descriptor_count; i++) dnnl_primitive_desc_destroy(c->descriptors[i]);
    free(c);
}

size_t dc_conv_workspace_floats(const dc_conv *c) { return c->workspace_floats; }
const char *dc_conv_implementation(const dc_conv *c) { return c->implementation; }

/** Up to 16 memory objects of one call, wrapping the caller's buffers; freed together. */
typedef struct call {
    dnnl_memory_t memory[16];
    int count, failed;
    dnnl_memory_t scratchpad;
} call;

static dnnl_memory_t wrap(call *k, const dnnl_memory_desc_t *md, const void *data) {
    dnnl_memory_t m = NULL;
    if (k->failed || dnnl_memory_create(&m, md, engine, (void *)data) != dnnl_success) {
        k->failed = 1;
        return NULL;
    }
    k->memory[k->count++] = m;
    return m;
}

static void finish(call *k) {
    for (int i = 0; i < k->count; i++) dnnl_memory_destroy(k->memory[i]);
    if (k->scratchpad) dnnl_memory_destroy(k->scratchpad);
}

static int execute(call *k, dnnl_primitive_t p, int n, dnnl_exec_arg_t *args) {
    if (k->failed) return -1;
    dnnl_stream_t s = stream();
    args[n].arg = DNNL_ARG_SCRATCHPAD;
    args[n].memory = k->scratchpad;
    if (!s || dnnl_primitive_execute(p, s, n + 1, args) != dnnl_success) k->failed = 1;
    return k->failed ? -1 : 0;
}

/** Memory in the stage's layout: the plain buffer itself, or the stage's workspace copy. */
static dnnl_memory_t staged(call *k, const stage *st, const dnnl_memory_desc_t *plain, const void *data, float *workspace,
                            int fill) {
    if (st->shared) return wrap(k, &st->md, workspace + st->offset);
    if (!st->reorder) return wrap(k, plain, data);
    dnnl_memory_t from = wrap(k, plain, data), to = wrap(k, &st->md, workspace + st->offset);
    if (fill) {
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
        execute(k, st->reorder, 2, args);
    }
    return to;
}

/** After a primitive wrote a stage's workspace copy: the copy back to the plain buffer. */
static void unstage(call *k, const stage *st, const dnnl_memory_desc_t *plain, void *data, float *workspace) {
    if (!st->reorder) return;
    dnnl_memory_t from = wrap(k, &st->md, workspace + st->offset), to = wrap(k, plain, data);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    execute(k, st->reorder, 2, args);
}

static void begin(call *k, const dc_conv *c, float *workspace) {
    memset(k, 0, sizeof *k);
    dnnl_memory_desc_t md;
    dnnl_dims_t dims = {(int64_t)(c->workspace_floats - c->scratchpad_offset) * 4};
    if (dnnl_memory_desc_init_by_tag(&md, 1, dims, dnnl_u8, dnnl_x) != dnnl_success ||
        dnnl_memory_create(&k->scratchpad, &md, engine, workspace + c->scratchpad_offset) != dnnl_success)
        k->failed = 1;
}

int dc_conv_set_weights(dc_conv *c, const float *weights) {
    call k;
    memset(&k, 0, sizeof k);
    dnnl_memory_t plain = wrap(&k, &c->plain_weights, weights);
    dnnl_primitive_t reorders[2] = {c->fwd_weights_reorder, c->bwd_data_weights_reorder};
    dnnl_memory_t targets[2] = {c->fwd_weights, c->bwd_data_weights};
    for (int i = 0; i < 2 && !k.failed; i++) {
        if (reorders[i]) {
            dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, plain}, {DNNL_ARG_TO, targets[i]}};
            execute(&k, reorders[i], 2, args);
        } else {
            float *data = NULL;
            if (dnnl_memory_get_data_handle(targets[i], (void **)&data) != dnnl_success) k.failed = 1;
            else memcpy(data, weights, dnnl_memory_desc_get_size(&c->plain_weights));
        }
    }
    int failed = k.failed;
    finish(&k);
    return failed ? -1 : 0;
}

int dc_conv_forward(const dc_conv *c, const float *x, const float *bias, float *y, float *workspace) {
    call k;
    begin(&k, c, workspace);
    dnnl_memory_t src = staged(&k, &c->fwd_src, &c->plain_src, x, workspace, 1);
    dnnl_memory_t dst = staged(&k, &c->fwd_dst, &c->plain_dst, y, workspace, 0);
    dnnl_memory_t b = wrap(&k, &c->bias, bias);
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, c->fwd_weights}, {DNNL_ARG_BIAS, b}, {DNNL_ARG_DST, dst}};
    execute(&k, c->forward, 4, args);
    unstage(&k, &c->fwd_dst, &c->plain_dst, y, workspace);
    int failed = k.failed;
    finish(&k);
    return failed ? -1 : 0;
}

int dc_conv_backward(const dc_conv *c, const float *x, const float *dy, float *dweights, float *dbias, float *dx,
                     float *workspace) {
    call k;
    begin(&k, c, workspace);
    dnnl_memory_t src = staged(&k, &c->bwd_weights_src, &c->plain_src, x, workspace, 1);
    dnnl_memory_t diff_dst = staged(&k, &c->bwd_weights_diff_dst, &c->plain_dst, dy, workspace, 1);
    dnnl_memory_t diff_weights = staged(&k, &c->bwd_weights_diff_weights, &c->plain_weights, dweights, workspace, 0);
    dnnl_memory_t diff_bias = wrap(&k, &c->bias, dbias);
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_DIFF_WEIGHTS, diff_weights},
                               {DNNL_ARG_DIFF_BIAS, diff_bias}};
    execute(&k, c->backward_weights, 4, args);
    unstage(&k, &c->bwd_weights_diff_weights, &c->plain_weights, dweights, workspace);
    finish(&k);
    if (k.failed) return -1;
    if (!dx) return 0;

    begin(&k, c, workspace);
    diff_dst = staged(&k, &c->bwd_data_diff_dst, &c->plain_dst, dy, workspace, 1);
    dnnl_memory_t diff_src = staged(&k, &c->bwd_data_diff_src, &c->plain_src, dx, workspace, 0);
    dnnl_exec_arg_t data_args[4] = {{DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_WEIGHTS, c->bwd_data_weights},
                                    {DNNL_ARG_DIFF_SRC, diff_src}};
    execute(&k, c->backward_data, 3, data_args);
    unstage(&k, &c->bwd_data_diff_src, &c->plain_src, dx, workspace);
    int failed = k.failed;
    finish(&k);
    return failed ? -1 : 0;
}
