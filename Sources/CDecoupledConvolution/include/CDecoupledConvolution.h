/*
 * 2-D convolution (NCHW activations, OIHW weights: PyTorch's layouts) on oneDNN, the library
 * PyTorch's CPU convolutions run on. One dc_conv is one shape for one minibatch size; its calls
 * run single-threaded on the calling thread (the models split batches over threads themselves,
 * in fixed partitions, so results do not depend on the thread count). Activations, weights and
 * gradients stay in the plain layouts in the caller's memory; the blocked layouts oneDNN's
 * kernels want live in the per-thread workspace.
 *
 * Private to DecoupledTraining (Conv2DLayer): Swift sees only its own types.
 */
#ifndef DECOUPLED_CONVOLUTION_H
#define DECOUPLED_CONVOLUTION_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dc_conv dc_conv;

typedef struct dc_conv_shape {
    int64_t batch, in_channels, out_channels, height, width;
    int64_t kernel_h, kernel_w, stride_h, stride_w;
    int64_t pad_top, pad_left, pad_bottom, pad_right;
} dc_conv_shape;

/** NULL on failure, with oneDNN's status text in `error` (of `error_size` bytes). */
dc_conv *dc_conv_create(const dc_conv_shape *shape, char *error, size_t error_size);
void dc_conv_destroy(dc_conv *conv);

/** Floats of per-thread workspace each forward/backward call needs. */
size_t dc_conv_workspace_floats(const dc_conv *conv);

/** Copies the OIHW weights into the layouts forward and backward-data use; call before them,
 *  not concurrently with them. */
int dc_conv_set_weights(dc_conv *conv, const float *weights);

/** y = conv(x) + bias, for `batch` samples. 0 on success. */
int dc_conv_forward(const dc_conv *conv, const float *x, const float *bias, float *y, float *workspace);

/** Weight and bias gradients of the batch (overwritten, OIHW and [out]), and, when `dx` is not
 *  NULL, the input gradient. 0 on success. */
int dc_conv_backward(const dc_conv *conv, const float *x, const float *dy, float *dweights, float *dbias,
                     float *dx, float *workspace);

/** oneDNN's name of the kernel forward runs, e.g. "jit:avx512_core". */
const char *dc_conv_implementation(const dc_conv *conv);

#ifdef __cplusplus
}
#endif
#endif
