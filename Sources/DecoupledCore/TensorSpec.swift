/// What a parameter tensor is for; parameter groups select by it (e.g. "do not decay biases").
public enum TensorRole: String, Codable, CaseIterable, Sendable {
    case weight, bias, norm, other
}

/// A named parameter tensor a model declares; the arena lays it out and hands back storage.
public struct TensorSpec: Equatable, Codable, Sendable {
    public var name: String
    public var shape: [Int]
    public var role: TensorRole

    public init(name: String, shape: [Int], role: TensorRole) {
        self.name = name
        self.shape = shape
        self.role = role
    }

    /// Number of elements (1 for a scalar of shape []).
    public var count: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }
}
