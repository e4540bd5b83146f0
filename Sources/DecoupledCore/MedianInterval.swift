import Foundation

/// The median of a sample with a distribution-free confidence interval: the order statistics
/// x₍ₗ₎ and x₍ₙ₊₁₋ₗ₎ with the largest l for which P(Binomial(n, ½) ≤ l − 1) ≤ (1 − confidence)/2.
/// It assumes only independent draws from one continuous distribution (no normality, no
/// symmetry), so it suits benchmark ratios whose noise is skewed by the occasional preempted
/// round. The benchmarks (`KernelBenchmark`, `OptimizerBenchmark`) summarise their per-round
/// ratios with it and judge targets with `TargetCheck`.
public struct MedianInterval: Codable, Sendable, Equatable {
    /// Sample size.
    public let count: Int
    /// The sample median (the mean of the two middle values for an even count).
    public let median: Double
    /// The interval's ends; nil when the sample is too small to reach `confidence` (fewer
    /// than 6 values for 95 %: even [min, max] covers the median with only 1 − 2·2⁻ⁿ).
    public let low: Double?
    public let high: Double?
    /// The confidence asked for (0.95 by default).
    public let confidence: Double
    /// The interval's exact coverage, 1 − 2·P(Binomial(n, ½) ≤ l − 1) ≥ `confidence`; nil without an interval.
    public let coverage: Double?

    /// The smallest sample with an interval at 95 %.
    public static let minimumCountAt95 = 6

    /// Summarises `sample` (which must not be empty; non-finite values are the caller's to reject).
    public init(_ sample: [Double], confidence: Double = 0.95) {
        precondition(!sample.isEmpty, "MedianInterval of an empty sample")
        precondition(confidence > 0 && confidence < 1, "confidence must lie strictly between 0 and 1")
        let sorted = sample.sorted(), n = sorted.count
        count = n
        median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
        self.confidence = confidence
        if let l = Self.lowerRank(count: n, confidence: confidence) {
            low = sorted[l - 1]
            high = sorted[n - l]
            coverage = 1 - 2 * Self.binomialHalfCDF(l - 1, n)
        } else {
            low = nil; high = nil; coverage = nil
        }
    }

    /// The 1-based rank l of the interval's lower end, or nil when even l = 1 falls short.
    static func lowerRank(count n: Int, confidence: Double) -> Int? {
        let tail = (1 - confidence) / 2
        // [x₍ₗ₎, x₍ₙ₊₁₋ₗ₎] misses the median with probability 2·P(B ≤ l − 1): take the largest l
        // whose P(B ≤ l − 1) is within the tail, summing the binomial terms as l grows.
        var l = 0, cdf = 0.0
        while l < (n + 1) / 2 {
            cdf += binomialHalfTerm(l, n)
            guard cdf <= tail else { break }
            l += 1
        }
        return l == 0 ? nil : l
    }

    /// P(Binomial(n, ½) = k), through log space so that large n neither underflows nor overflows.
    static func binomialHalfTerm(_ k: Int, _ n: Int) -> Double {
        exp(lgamma(Double(n + 1)) - lgamma(Double(k + 1)) - lgamma(Double(n - k + 1)) + Double(n) * log(0.5))
    }

    /// P(Binomial(n, ½) ≤ k).
    static func binomialHalfCDF(_ k: Int, _ n: Int) -> Double {
        guard k >= 0 else { return 0 }
        guard k < n else { return 1 }
        return min(1, (0...k).reduce(0) { $0 + binomialHalfTerm($1, n) })
    }
}

/// Whether a measured ratio reaches a target, judged on its whole interval: "met" only when
/// the interval lies entirely above the target, "missed" only when entirely below, otherwise
/// (the interval straddles the target, or the sample is too small for an interval) "not
/// established".
public struct TargetCheck: Codable, Sendable, Equatable {
    public enum Verdict: String, Codable, Sendable {
        case met
        case missed
        case notEstablished = "not established"
    }

    /// The ratio the measurement should reach or exceed.
    public let target: Double
    public let verdict: Verdict

    public init(target: Double, verdict: Verdict) {
        self.target = target
        self.verdict = verdict
    }

    /// Judges `estimate` against "at least `target`".
    public init(_ estimate: MedianInterval, atLeast target: Double) {
        self.target = target
        if let low = estimate.low, low > target {
            verdict = .met
        } else if let high = estimate.high, high < target {
            verdict = .missed
        } else {
            verdict = .notEstablished
        }
    }

    /// "≥ 1.10: met", "≥ 0.90: not established": the target and the verdict, for tables.
    public var summary: String { String(format: "≥ %.2f: %@", target, verdict.rawValue as NSString) }
}

extension MedianInterval {
    /// "1.02 [0.98, 1.05]", or "1.02 [no interval]" when the sample is too small for one.
    public var formatted: String {
        if let low, let high { return String(format: "%.2f [%.2f, %.2f]", median, low, high) }
        return String(format: "%.2f [no interval]", median)
    }
}
