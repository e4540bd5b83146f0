/// xoshiro256** (Blackman & Vigna, 2018): a small, fast generator whose whole state is four
/// words, so a checkpoint can save it and a resumed run continue the exact same stream.
///
/// Seeding goes through SplitMix64, as the authors recommend, so nearby seeds give
/// unrelated streams. `Double`/`Float` draws use the top 53/24 bits.
public struct Xoshiro256: RandomNumberGenerator, Codable, Equatable, Sendable {
    /// The complete generator state; saving and restoring it reproduces the stream exactly.
    public var state: [UInt64]

    public init(seed: UInt64) {
        var sm = seed
        var s = [UInt64](repeating: 0, count: 4)
        for i in 0..<4 { s[i] = Xoshiro256.splitMix64(&sm) }
        state = s
    }

    /// Restores a saved state; refuses the all-zero state, which the generator never leaves.
    public init(state: [UInt64]) throws {
        guard state.count == 4 else { throw RandomStateError.wrongLength(state.count) }
        guard state.contains(where: { $0 != 0 }) else { throw RandomStateError.allZero }
        self.state = state
    }

    /// An independent stream for a named purpose (e.g. "init", "shuffle"), derived from a seed.
    public init(seed: UInt64, stream: String) {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a over the stream name
        for b in stream.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        self.init(seed: seed ^ h)
    }

    @inline(__always)
    static func splitMix64(_ x: inout UInt64) -> UInt64 {
        x &+= 0x9e37_79b9_7f4a_7c15
        var z = x
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = rotl(state[1] &* 5, 7) &* 9
        let t = state[1] << 17
        state[2] ^= state[0]
        state[3] ^= state[1]
        state[1] ^= state[2]
        state[0] ^= state[3]
        state[2] ^= t
        state[3] = rotl(state[3], 45)
        return result
    }

    @inline(__always) private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func nextDouble() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Standard normal draw (Box–Muller; uses two uniforms, no cached spare so state stays 4 words).
    public mutating func nextGaussian() -> Double {
        var u1 = nextDouble()
        while u1 <= 0 { u1 = nextDouble() }
        let u2 = nextDouble()
        return (-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2)
    }

    /// Uniform integer in 0..<bound without modulo bias (Lemire's method).
    public mutating func nextInt(below bound: Int) -> Int {
        precondition(bound > 0)
        return Int(next(upperBound: UInt64(bound)))
    }
}

public enum RandomStateError: Error, CustomStringConvertible {
    case wrongLength(Int)
    case allZero
    public var description: String {
        switch self {
        case .wrongLength(let n): return "random generator state must have 4 words, found \(n)"
        case .allZero: return "random generator state is all zeros, which xoshiro256** never reaches"
        }
    }
}

#if canImport(Glibc)
import Glibc
@inline(__always) private func _log(_ x: Double) -> Double { Glibc.log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Glibc.cos(x) }
#elseif canImport(Darwin)
import Darwin
@inline(__always) private func _log(_ x: Double) -> Double { Darwin.log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Darwin.cos(x) }
#endif
