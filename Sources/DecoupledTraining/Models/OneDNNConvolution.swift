import CDecoupledConvolution

/// One convolution shape for one minibatch size on oneDNN (CDecoupledConvolution): forward,
/// and the weight, bias and input gradients, on plain NCHW/OIHW buffers, single-threaded on the
/// calling thread with the caller's workspace, so several threads can run one at once.
final class OneDNNConvolution: @unchecked Sendable {
    private let handle: OpaquePointer
    /// Floats of workspace each call needs.
    let workspaceFloats: Int
    /// oneDNN's name of its forward kernel, e.g. "jit:avx512_core".
    let implementation: String

    init(batch: Int, inChannels: Int, filters: Int, window: Window2D) {
        var shape = dc_conv_shape(batch: Int64(batch), in_channels: Int64(inChannels), out_channels: Int64(filters),
                                  height: Int64(window.height), width: Int64(window.width),
                                  kernel_h: Int64(window.kernel.h), kernel_w: Int64(window.kernel.w),
                                  stride_h: Int64(window.stride.h), stride_w: Int64(window.stride.w),
                                  pad_top: Int64(window.padTop), pad_left: Int64(window.padLeft),
                                  pad_bottom: Int64(window.padBottom), pad_right: Int64(window.padRight))
        var error = [CChar](repeating: 0, count: 256)
        guard let handle = dc_conv_create(&shape, &error, error.count) else {
            // The layer list was validated before; oneDNN refusing a valid shape is a defect.
            fatalError("convolution \(inChannels)→\(filters), \(window.kernel.h)×\(window.kernel.w), batch \(batch): "
                       + String(cString: error))
        }
        self.handle = handle
        workspaceFloats = dc_conv_workspace_floats(handle)
        implementation = String(cString: dc_conv_implementation(handle))
    }

    deinit { dc_conv_destroy(handle) }

    /// Takes the weights ([out, in, kh, kw]) for the following calls; not concurrently with them.
    func setWeights(_ weights: UnsafePointer<Float>) {
        check(dc_conv_set_weights(handle, weights), "setting the weights")
    }

    func forward(_ x: UnsafePointer<Float>, bias: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                 workspace: UnsafeMutablePointer<Float>) {
        check(dc_conv_forward(handle, x, bias, y, workspace), "forward")
    }

    /// Overwrites the weight and bias gradients of this batch, and `dx` when given.
    func backward(_ x: UnsafePointer<Float>, dy: UnsafePointer<Float>, weightGradient: UnsafeMutablePointer<Float>,
                  biasGradient: UnsafeMutablePointer<Float>, dx: UnsafeMutablePointer<Float>?,
                  workspace: UnsafeMutablePointer<Float>) {
        check(dc_conv_backward(handle, x, dy, weightGradient, biasGradient, dx, workspace), "backward")
    }

    private func check(_ status: Int32, _ what: String) {
        // Fails only if oneDNN cannot allocate its small per-call descriptors.
        if status != 0 { fatalError("oneDNN convolution \(what) failed") }
    }
}
