import DecoupledRandom
import Foundation

// The statistics the study's verdict is made of: seed means with standard errors, Welch
// intervals for differences, and seed-bootstrap intervals for quantities (such as the slope
// of the best decay against the learning rate) that have no closed form.

/// A mean over seeds with its standard error and the values it came from.
public struct SeedMean: Codable, Equatable, Sendable {
    public var mean: Double
    /// Standard error of the mean, s/√n (nil for a single seed).
    public var se: Double?
    public var n: Int

    public init?(_ values: [Double]) {
        guard let m = MeanStd(values) else { return nil }
        mean = m.mean
        n = m.count
        se = m.std.map { $0 / Double(m.count).squareRoot() }
    }
}

/// A difference of two seed means with its 95 % interval (Welch's t), and the words for it.
public struct Difference: Codable, Equatable, Sendable {
    /// mean(a) − mean(b).
    public var difference: Double
    public var low: Double
    public var high: Double
    public var nA: Int
    public var nB: Int

    /// Nil when either side has fewer than two seeds (no interval can be given).
    public init?(_ a: SeedMean, _ b: SeedMean) {
        guard let sa = a.se, let sb = b.se else { return nil }
        difference = a.mean - b.mean
        let se = (sa * sa + sb * sb).squareRoot()
        let half = Statistics.tQuantile975(Statistics.welchDF(sa, a.n, sb, b.n)) * se
        low = difference - half
        high = difference + half
        nA = a.n
        nB = b.n
    }

    /// Whether the interval excludes 0.
    public var isMeasurable: Bool { low > 0 || high < 0 }
}

enum Statistics {
    /// The 97.5 % quantile of Student's t with `df` degrees of freedom (two-sided 95 %).
    static func tQuantile975(_ df: Double) -> Double {
        let table: [Double] = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                               2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                               2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]
        guard df.isFinite else { return 1.960 }
        // Rounding df down keeps the interval conservative.
        let d = max(1, Int(df.rounded(.down)))
        if d <= table.count { return table[d - 1] }
        return 1.960 + 2.4 / Double(d)  // within 0.003 of the exact quantile above 30
    }

    /// Welch–Satterthwaite degrees of freedom from two standard errors and sample sizes.
    static func welchDF(_ seA: Double, _ nA: Int, _ seB: Double, _ nB: Int) -> Double {
        let a = seA * seA, b = seB * seB
        let den = a * a / Double(max(nA - 1, 1)) + b * b / Double(max(nB - 1, 1))
        return den > 0 ? (a + b) * (a + b) / den : Double(nA + nB - 2)
    }

    /// Least-squares slope of y on x; nil with fewer than two distinct x.
    static func slope(_ points: [(x: Double, y: Double)]) -> Double? {
        guard points.count >= 2 else { return nil }
        let n = Double(points.count)
        let mx = points.map(\.x).reduce(0, +) / n, my = points.map(\.y).reduce(0, +) / n
        let sxx = points.map { ($0.x - mx) * ($0.x - mx) }.reduce(0, +)
        guard sxx > 0 else { return nil }
        return points.map { ($0.x - mx) * ($0.y - my) }.reduce(0, +) / sxx
    }

    /// How far the least-squares slope of log y on log x can move when each y, read off a
    /// log-spaced grid, is off by up to half a grid step: (h/2)·Σ|xᵢ − x̄| / Σ(xᵢ − x̄)², with h
    /// the grid's mean log step over its positive values. The seed bootstrap cannot see this
    /// error: with few seeds every resample often picks the same grid points.
    static func quantization(xs: [Double], grid: [Double]) -> Double {
        let ys = Array(Set(grid.filter { $0 > 0 })).sorted()
        let lx = xs.filter { $0 > 0 }.map(log)
        guard ys.count >= 2, lx.count >= 2 else { return 0 }
        let step = (log(ys.last!) - log(ys.first!)) / Double(ys.count - 1)
        let mx = lx.reduce(0, +) / Double(lx.count)
        let sxx = lx.map { ($0 - mx) * ($0 - mx) }.reduce(0, +)
        guard sxx > 0 else { return 0 }
        return step / 2 * lx.map { abs($0 - mx) }.reduce(0, +) / sxx
    }

    /// The 2.5 % and 97.5 % percentiles (linear interpolation) of `values`.
    static func percentileInterval(_ values: [Double]) -> (low: Double, high: Double)? {
        guard !values.isEmpty else { return nil }
        let s = values.sorted()
        func q(_ p: Double) -> Double {
            let h = p * Double(s.count - 1)
            let i = Int(h.rounded(.down)), j = min(i + 1, s.count - 1)
            return s[i] + (h - Double(i)) * (s[j] - s[i])
        }
        return (q(0.025), q(0.975))
    }

    /// Seed-bootstrap resamples: each draws as many seeds as there are, with replacement
    /// (a multiset of seeds, as multiplicities), from a fixed generator so the verdict is
    /// reproducible. Seeds are resampled jointly across all cells, since a seed fixes the
    /// initialisation and batch order of every cell alike. The point estimate is computed
    /// from the observed seeds, not from these.
    static func bootstrapSeedWeights(seeds: [Int], count: Int) -> [[Int: Int]] {
        var rng = Xoshiro256(seed: 20_190_506, stream: "study-bootstrap")
        return (0..<count).map { _ in
            var w: [Int: Int] = [:]
            for _ in seeds { w[seeds[rng.nextInt(below: seeds.count)], default: 0] += 1 }
            return w
        }
    }
}
