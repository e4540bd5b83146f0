import Foundation

/// NumPy's legacy `numpy.random.RandomState`: the 32-bit Mersenne Twister (MT19937) seeded
/// with an integer, its 53-bit doubles and its polar-method Gaussians with the cached second
/// value, reproducing NumPy's streams draw for draw.
///
/// Why it exists: DeepOBS defines its synthetic test problems (`quadratic_deep`) by draws from
/// `RandomState(42)` and `RandomState(43)`; generating the same draws here gives the very
/// problem instance DeepOBS trains on, without shipping its data or needing NumPy.
/// Not for anything else: the project's own randomness is `Xoshiro256`.
public struct NumPyRandomState {
    private var key = [UInt32](repeating: 0, count: 624)
    private var position = 624
    private var cachedGauss: Double?

    /// `RandomState(seed)` for an integer seed (NumPy's `mt19937_seed`, which is Matsumoto and
    /// Nishimura's `init_genrand`).
    public init(seed: UInt32) {
        var s = seed
        for i in 0..<624 {
            key[i] = s
            s = 1_812_433_253 &* (s ^ (s >> 30)) &+ UInt32(i + 1)
        }
    }

    /// The next 32-bit output (`genrand_int32`).
    public mutating func nextUInt32() -> UInt32 {
        if position == 624 { twist() }
        var y = key[position]
        position += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9d2c_5680
        y ^= (y << 15) & 0xefc6_0000
        return y ^ (y >> 18)
    }

    private mutating func twist() {
        let n = 624, m = 397
        for i in 0..<n {
            let y = (key[i] & 0x8000_0000) | (key[(i + 1) % n] & 0x7fff_ffff)
            key[i] = key[(i + m) % n] ^ (y >> 1) ^ ((y & 1) == 0 ? 0 : 0x9908_b0df)
        }
        position = 0
    }

    /// A double in [0, 1) from two outputs (27 + 26 bits), as `random_sample()`.
    public mutating func nextDouble() -> Double {
        let a = Double(nextUInt32() >> 5), b = Double(nextUInt32() >> 6)
        return (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// `uniform(low, high)`: low + (high − low)·u.
    public mutating func uniform(_ low: Double, _ high: Double) -> Double {
        low + (high - low) * nextDouble()
    }

    /// A standard normal draw by the polar method; every other call returns the value cached
    /// by the previous one (NumPy's `legacy_gauss`).
    public mutating func gauss() -> Double {
        if let g = cachedGauss {
            cachedGauss = nil
            return g
        }
        var x1 = 0.0, x2 = 0.0, r2 = 0.0
        repeat {
            x1 = 2 * nextDouble() - 1
            x2 = 2 * nextDouble() - 1
            r2 = x1 * x1 + x2 * x2
        } while r2 >= 1 || r2 == 0
        let f = (-2 * Foundation.log(r2) / r2).squareRoot()
        cachedGauss = f * x1
        return f * x2
    }

    /// `normal(loc, scale)`: loc + scale·gauss().
    public mutating func normal(_ loc: Double, _ scale: Double) -> Double {
        loc + scale * gauss()
    }
}
