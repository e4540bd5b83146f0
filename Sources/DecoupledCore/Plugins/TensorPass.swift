/// When a tensor pass runs in the engine's pipeline (docs/architecture.md).
public enum TensorPhase: String, Sendable, CaseIterable {
    /// Once, before the first update of a fresh run (never after a resume, whose state comes
    /// from the checkpoint): fills state from the starting weights.
    case start
    /// Before the element-wise pass, on the raw gradients (reductions such as the global
    /// gradient norm, then clipping; coupled terms that need whole rows).
    case beforeUpdate = "before"
    /// After the element-wise pass, on the new weights (constraints, proximal steps on rows).
    case afterUpdate = "after"
}

/// What a tensor pass learns about the tensor it works on.
public struct TensorInfo: Sendable, Equatable {
    /// The tensor's position in the model's declaration order (the arena's).
    public let index: Int
    public let name: String
    public let shape: [Int]
    public let role: TensorRole

    public init(index: Int, spec: TensorSpec) {
        self.index = index
        name = spec.name
        shape = spec.shape
        role = spec.role
    }

    public var count: Int { shape.reduce(1, *) }
    /// Rows: the elements sharing their first index (a Linear weight [out, in] has one row per
    /// output unit). A scalar is one row; a vector has one row per element.
    public var rows: Int { shape.first ?? 1 }
    public var rowLength: Int { count / rows }
}

/// One tensor, whole: its weights and gradients and the pass's declared state, in place.
public struct TensorData {
    public let info: TensorInfo
    public let weights: UnsafeMutableBufferPointer<Float>
    public let gradients: UnsafeMutableBufferPointer<Float>
    /// The owning plugin's state slots in declaration order, this tensor's part of each
    /// (`count` floats, or `rows`, `rowLength` or 1 as the slot's `StateLayout` says).
    public let state: [UnsafeMutableBufferPointer<Float>]

    /// Row `r`'s elements of a buffer of this tensor (`weights`, `gradients` or a state slot).
    @inline(__always)
    public func row(_ r: Int, of buffer: UnsafeMutableBufferPointer<Float>) -> UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(rebasing: buffer[(r * info.rowLength)..<((r + 1) * info.rowLength)])
    }
}

/// A pass over whole tensors, once per step, before or after the element-wise pass.
///
/// With a `partial`, the engine first computes it for every tensor the configured entry
/// covers (every group that lists it, so a top-level entry spans the whole model as
/// `torch.nn.utils.clip_grad_norm_(model.parameters())` does), sums the partials in tensor
/// order and hands the sum to `apply`. Each tensor is one worker's sequential loop, so the
/// result is bit-identical for any number of workers.
public struct TensorPass {
    public var phase: TensorPhase
    /// One tensor's share of a reduction over every tensor of the entry, or nil for none.
    public var partial: ((TensorData) -> Double)?
    /// The work on one tensor, given the reduction's total (0 without a `partial`); returns a
    /// count the engine reports under the plugin's metric name, or -1.
    public var apply: (TensorData, _ total: Double) -> Int64

    public init(phase: TensorPhase, partial: ((TensorData) -> Double)? = nil,
                apply: @escaping (TensorData, _ total: Double) -> Int64) {
        self.phase = phase
        self.partial = partial
        self.apply = apply
    }
}

/// Row-wise L2 norms, the building block of group lasso and max-norm: √(Σ x²) of each row,
/// accumulated in double in element order (the same bits whichever worker runs it).
public func rowNorm<Row: Collection<Float>>(_ row: Row) -> Double {
    var s = 0.0
    for x in row { s += Double(x) * Double(x) }
    return s.squareRoot()
}
