/// What kind of layer an entry of `[model] layers` is (its `type` key).
public enum LayerType: String, Codable, CaseIterable, Sendable {
    case dense, conv2d, maxPool = "max_pool", avgPool = "avg_pool", flatten, relu, tanh, gelu, dropout
    case batchNorm = "batch_norm"

    /// The keys each type accepts besides `type`.
    var keys: [String] {
        switch self {
        case .dense: return ["units", "init", "init_std", "bias_init"]
        case .conv2d: return ["filters", "kernel", "stride", "padding", "init", "init_std", "bias_init"]
        case .maxPool, .avgPool: return ["size", "stride", "padding"]
        case .flatten, .relu, .tanh, .gelu: return []
        case .dropout: return ["rate"]
        case .batchNorm: return ["momentum", "eps"]
        }
    }
}

/// Zero padding of a convolution or pooling window.
public enum PaddingSpec: Equatable, Sendable, Codable {
    /// Output as large as the input (stride 1): k − 1 zeros, the smaller half before
    /// (PyTorch's `padding="same"`).
    case same
    /// No padding.
    case valid
    /// `[rows, columns]` added on both sides.
    case explicit(rows: Int, columns: Int)
}

/// One entry of `[model] layers`, as written in the config (docs/config.md).
public struct LayerSpec: Equatable, Sendable, Codable {
    public var type: LayerType
    /// dense: output features.
    public var units: Int?
    /// conv2d: output channels.
    public var filters: Int?
    /// conv2d: `[kh, kw]`; pooling: window `[h, w]` (key `size`).
    public var kernel: [Int]?
    /// conv2d, pooling: `[sh, sw]`; default 1 (conv2d) or the window (pooling).
    public var stride: [Int]?
    public var padding: PaddingSpec?
    /// dropout: probability of zeroing an element, in [0, 1).
    public var rate: Double?
    /// batch_norm: running-statistics momentum (PyTorch's default 0.1) and eps (1e-5).
    public var momentum: Double?
    public var eps: Double?
    /// dense, conv2d: weight initialisation (default: the model's `init`, else he); its
    /// standard deviation for `truncated_normal`; the biases' starting value (default 0).
    public var weightInit: String?
    public var initStd: Double?
    public var biasInit: Double?

    public init(_ type: LayerType, units: Int? = nil, filters: Int? = nil, kernel: [Int]? = nil, stride: [Int]? = nil,
                padding: PaddingSpec? = nil, rate: Double? = nil, momentum: Double? = nil, eps: Double? = nil,
                weightInit: String? = nil, initStd: Double? = nil, biasInit: Double? = nil) {
        self.type = type
        self.units = units
        self.filters = filters
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.rate = rate
        self.momentum = momentum
        self.eps = eps
        self.weightInit = weightInit
        self.initStd = initStd
        self.biasInit = biasInit
    }

    /// Reads one layer table strictly; errors name `model.layers[i].key` and its line.
    static func read(_ t: ConfigReader) throws -> LayerSpec {
        let type = LayerType(rawValue: try t.string("type", allowed: LayerType.allCases.map(\.rawValue)))!
        var spec = LayerSpec(type)
        func pair(_ key: String) throws -> [Int]? {
            guard let v = t.value(key) else { return nil }
            switch v {
            case .number(let x, true) where x >= 1: return [Int(x), Int(x)]
            case .array(let a) where a.count == 2:
                let values = a.compactMap { e -> Int? in if case .number(let x, true) = e, x >= 1 { return Int(x) } else { return nil } }
                if values.count == 2 { return values }
            default: break
            }
            throw t.error(key, "expected a positive integer or [rows, columns] of positive integers, got \(v.typeName) \(v)")
        }
        switch type {
        case .dense:
            spec.units = try t.int("units", min: 1)
        case .conv2d:
            spec.filters = try t.int("filters", min: 1)
            guard let kernel = try pair("kernel") else { throw t.error("kernel", "is required (e.g. kernel = 5 or kernel = [5, 3])") }
            spec.kernel = kernel
            spec.stride = try pair("stride")
            spec.padding = try readPadding(t)
        case .maxPool, .avgPool:
            guard let size = try pair("size") else { throw t.error("size", "is required (e.g. size = 2)") }
            spec.kernel = size
            spec.stride = try pair("stride")
            spec.padding = try readPadding(t)
            if spec.padding == .same { throw t.error("padding", "\"same\" is for conv2d; pooling takes an integer or [rows, columns]") }
        case .flatten, .relu, .tanh, .gelu:
            break
        case .dropout:
            spec.rate = try t.double("rate", range: 0...1)
            if spec.rate! >= 1 { throw t.error("rate", "must be below 1 (1 would zero every element), got \(spec.rate!)") }
        case .batchNorm:
            spec.momentum = try t.has("momentum") ? t.double("momentum", range: 0...1) : nil
            spec.eps = try t.has("eps") ? t.double("eps", range: 0...1) : nil
            if spec.eps == 0 { throw t.error("eps", "must be positive") }
        }
        if type == .dense || type == .conv2d {
            if t.has("init") { spec.weightInit = try t.string("init", allowed: WeightInit.names) }
            if t.has("init_std") {
                spec.initStd = try t.double("init_std", range: 0...1e6)
                guard spec.weightInit == "truncated_normal" else {
                    throw t.error("init_std", "is only used with init = \"truncated_normal\"")
                }
            }
            if t.has("bias_init") { spec.biasInit = try t.double("bias_init", range: -1e6...1e6) }
        }
        try t.finish(allowed: ["type"] + type.keys)
        return spec
    }

    static func readPadding(_ t: ConfigReader) throws -> PaddingSpec? {
        guard let v = t.value("padding") else { return nil }
        switch v {
        case .string("same"): return .same
        case .string("valid"): return .valid
        case .number(let x, true) where x >= 0: return .explicit(rows: Int(x), columns: Int(x))
        case .array(let a) where a.count == 2:
            if case .number(let r, true) = a[0], case .number(let c, true) = a[1], r >= 0, c >= 0 {
                return .explicit(rows: Int(r), columns: Int(c))
            }
        default: break
        }
        throw t.error("padding", "expected \"same\", \"valid\", a non-negative integer or [rows, columns], got \(v.typeName) \(v)")
    }
}

extension ModelConfig {
    /// Builds the layers of `kind = "sequential"`, inferring each layer's input shape from
    /// the previous one; errors name the layer (`model.layers[i]`) and what does not fit.
    func makeSequential(inputCount: Int, outputCount: Int, partitionRows: Int) throws -> SequentialModel {
        let specs = layers ?? []
        guard !specs.isEmpty else { throw ModelError.invalidConfig("model.layers is empty; give at least one layer") }
        var shape = inputShape ?? [inputCount]
        guard shape.allSatisfy({ $0 > 0 }), shape.count == 1 || shape.count == 3 else {
            throw ModelError.invalidConfig("model.input_shape must be [features] or [channels, height, width] of positive sizes, got \(shape)")
        }
        guard shape.reduce(1, *) == inputCount else {
            throw ModelError.invalidConfig("model.input_shape \(shape) holds \(shape.reduce(1, *)) values but the data has \(inputCount) features per sample")
        }
        let input = shape
        var built: [Layer] = []
        for (i, spec) in specs.enumerated() {
            let at = "model.layers[\(i)] (\(spec.type.rawValue))"
            func weights() -> (WeightInit, Float) {
                let name = spec.weightInit ?? initialization.map(\.rawValue) ?? "he"
                let weights: WeightInit
                switch name {
                case "he": weights = .he
                case "xavier": weights = .xavier
                case "xavier_normal": weights = .xavierNormal
                default: weights = .truncatedNormal(std: spec.initStd ?? 0.05)
                }
                return (weights, Float(spec.biasInit ?? 0))
            }
            func window(_ kernel: [Int], stride: [Int], padding: PaddingSpec) throws -> Window2D {
                guard shape.count == 3 else {
                    throw ModelError.invalidConfig("\(at) needs a [channels, height, width] input, got \(shape); set model.input_shape (e.g. [1, 28, 28])")
                }
                var w = Window2D(kernel: (kernel[0], kernel[1]), stride: (stride[0], stride[1]),
                                 padTop: 0, padBottom: 0, padLeft: 0, padRight: 0, height: shape[1], width: shape[2])
                switch padding {
                case .valid: break
                case .same:
                    guard stride == [1, 1] else {
                        throw ModelError.invalidConfig("\(at): padding = \"same\" needs stride 1 (as PyTorch), got \(stride)")
                    }
                    w.padTop = (kernel[0] - 1) / 2
                    w.padBottom = kernel[0] - 1 - w.padTop
                    w.padLeft = (kernel[1] - 1) / 2
                    w.padRight = kernel[1] - 1 - w.padLeft
                case let .explicit(rows, columns):
                    w.padTop = rows; w.padBottom = rows; w.padLeft = columns; w.padRight = columns
                }
                guard shape[1] + w.padTop + w.padBottom >= kernel[0], shape[2] + w.padLeft + w.padRight >= kernel[1] else {
                    throw ModelError.invalidConfig("\(at): the window \(kernel) is larger than the padded input \(shape[1] + w.padTop + w.padBottom)×\(shape[2] + w.padLeft + w.padRight)")
                }
                return w
            }
            let layer: Layer
            switch spec.type {
            case .dense:
                guard shape.count == 1 else {
                    throw ModelError.invalidConfig("\(at) needs a flat input, got \(shape); put { type = \"flatten\" } before it")
                }
                let (w, b) = weights()
                layer = DenseLayer(inputs: shape[0], units: spec.units ?? 1, weightInit: w, biasInit: b)
            case .conv2d:
                let kernel = spec.kernel ?? [1, 1]
                let win = try window(kernel, stride: spec.stride ?? [1, 1], padding: spec.padding ?? .valid)
                let (w, b) = weights()
                layer = Conv2DLayer(inChannels: shape[0], window: win, filters: spec.filters ?? 1, weightInit: w, biasInit: b)
            case .maxPool, .avgPool:
                let kernel = spec.kernel ?? [2, 2]
                let win = try window(kernel, stride: spec.stride ?? kernel, padding: spec.padding ?? .valid)
                if case let .explicit(rows, columns) = spec.padding ?? .valid, rows * 2 > kernel[0] || columns * 2 > kernel[1] {
                    throw ModelError.invalidConfig("\(at): padding \([rows, columns]) must be at most half the window \(kernel) (as PyTorch)")
                }
                layer = Pool2DLayer(mode: spec.type == .maxPool ? .max : .average, channels: shape[0], window: win)
            case .flatten:
                layer = FlattenLayer(shape: shape)
            case .relu, .tanh, .gelu:
                layer = ActivationLayer(ActivationKind(rawValue: spec.type.rawValue)!, shape: shape)
            case .dropout:
                layer = DropoutLayer(rate: spec.rate ?? 0.5, shape: shape)
            case .batchNorm:
                layer = BatchNormLayer(shape: shape, momentum: spec.momentum ?? 0.1, eps: spec.eps ?? 1e-5)
            }
            shape = layer.outputShape
            built.append(layer)
        }
        guard shape.reduce(1, *) == outputCount, shape.count == 1 else {
            throw ModelError.invalidConfig("the last layer, model.layers[\(specs.count - 1)] (\(specs.last!.type.rawValue)), outputs \(shape) but the loss needs \(outputCount) values per sample (the data's classes); end with { type = \"dense\", units = \(outputCount) }")
        }
        return SequentialModel(inputShape: input, layers: built, loss: resolvedLoss, partitionRows: partitionRows)
    }
}
