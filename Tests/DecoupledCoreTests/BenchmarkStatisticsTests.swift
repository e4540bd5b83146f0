import DecoupledCore
import Testing

/// The statistics every benchmark ratio is reported with: the median's distribution-free 95 %
/// interval (order statistics) and the verdict on a target. No timing here.
@Suite struct BenchmarkStatisticsTests {
    @Test func theIntervalIsTheOrderStatisticsTheBinomialTableGives() throws {
        // n = 10: P(B ≤ 1) = 11/1024 ≤ 0.025 < P(B ≤ 2) = 56/1024, so [x₍₂₎, x₍₉₎], coverage 1 − 22/1024.
        let ten = MedianInterval([7, 3, 10, 1, 5, 9, 2, 8, 6, 4])
        #expect(ten.count == 10 && ten.median == 5.5)
        #expect(ten.low == 2 && ten.high == 9)
        #expect(abs(ten.coverage! - (1 - 22.0 / 1024)) < 1e-12)
        // n = 6 is the smallest with a 95 % interval: [min, max], coverage 1 − 2/64.
        let six = MedianInterval([0.9, 1.3, 1.1, 1.0, 1.2, 1.4])
        #expect(six.low == 0.9 && six.high == 1.4 && abs(six.coverage! - (1 - 2.0 / 64)) < 1e-12)
        #expect(abs(six.median - 1.15) < 1e-12)
        // n = 21 (the benchmarks' default): x₍₆₎ to x₍₁₆₎, coverage 97.34 %.
        let twentyOne = MedianInterval((1...21).map(Double.init).reversed())
        #expect(twentyOne.median == 11 && twentyOne.low == 6 && twentyOne.high == 16)
        #expect(abs(twentyOne.coverage! - 0.973396301) < 1e-8)
        // n = 30: x₍₁₀₎ to x₍₂₁₎ (the textbook table), coverage 95.72 %.
        let thirty = MedianInterval((1...30).map(Double.init))
        #expect(thirty.low == 10 && thirty.high == 21 && abs(thirty.coverage! - 0.957226) < 1e-6)
        // A large sample neither underflows nor overflows the binomial sums: ±1.96·√n/2 ranks around n/2.
        let big = MedianInterval((1...10_000).map(Double.init))
        #expect(big.low == 4902 && big.high == 5099, "\(big)")
    }

    @Test func fewerThanSixValuesHaveNoIntervalAndEstablishNothing() {
        let five = MedianInterval([1.5, 1.6, 1.7, 1.8, 1.9])
        #expect(five.median == 1.7 && five.low == nil && five.high == nil && five.coverage == nil)
        #expect(TargetCheck(five, atLeast: 1.0).verdict == .notEstablished)
        #expect(five.formatted == "1.70 [no interval]")
        #expect(MedianInterval([2]).median == 2)
    }

    @Test func aTargetIsJudgedOnTheWholeInterval() {
        let sample = MedianInterval([0.98, 1.02, 1.05, 1.07, 1.10, 1.12, 1.15])  // [0.98, 1.15]
        #expect(TargetCheck(sample, atLeast: 0.90).verdict == .met)
        #expect(TargetCheck(sample, atLeast: 1.00).verdict == .notEstablished)  // the median 1.07 alone would say "met"
        #expect(TargetCheck(sample, atLeast: 1.10).verdict == .notEstablished)
        #expect(TargetCheck(sample, atLeast: 1.20).verdict == .missed)
        // On the boundary nothing is established: "above" and "below" are strict.
        #expect(TargetCheck(sample, atLeast: 0.98).verdict == .notEstablished)
        #expect(TargetCheck(sample, atLeast: 1.15).verdict == .notEstablished)
    }

    @Test func verdictsAndIntervalsReadAsTheTablesPrintThem() {
        let sample = MedianInterval([0.98, 1.02, 1.05, 1.07, 1.10, 1.12, 1.15])
        #expect(sample.formatted == "1.07 [0.98, 1.15]")
        #expect(TargetCheck(sample, atLeast: 1.1).summary == "≥ 1.10: not established")
        #expect(TargetCheck(sample, atLeast: 0.9).summary == "≥ 0.90: met")
        #expect(TargetCheck(sample, atLeast: 1.2).summary == "≥ 1.20: missed")
        #expect(TargetCheck.Verdict.notEstablished.rawValue == "not established")
    }

    @Test func theBenchmarksTargetsAreTheIssuesTargets() {
        #expect(KernelBenchmark.speedupTargets == [.adamw: 1.1, .sgd: 1.0, .momentum: 1.0, .nesterov: 1.0])
        #expect(OptimizerBenchmark.familyProbeTarget == 0.9)
        #expect(OptimizerBenchmark.familyKernels == ["adagrad", "rmsprop", "adadelta", "adamax", "nadam", "radam"])
    }
}
