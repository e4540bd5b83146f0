import DecoupledRandom

/// How many training samples to hold out for validation: a count or a fraction of the
/// training split.
public enum ValidationSize: Equatable, Sendable {
    case count(Int)
    case fraction(Double)

    /// The number of samples out of `total`, rounded to the nearest integer.
    public func samples(of total: Int) -> Int {
        switch self {
        case .count(let n): return n
        case .fraction(let f): return Int((f * Double(total)).rounded())
        }
    }
}

/// Which rows of a dataset's training split a run trains on and validates on.
///
/// Both lists are drawn by stratified sampling from the file's training split: within each
/// class the rows are a seeded random permutation; the first rows of each class go to
/// validation, the following ones to the training subset, each class contributing in
/// proportion to its share of the split (largest remainder, so the totals are exact). The
/// two lists are disjoint and sorted (file order, for sequential reads). The test split is
/// never touched, so the test set stays the file's whole test split.
///
/// The draw depends only on the labels, the sizes and `seed` (the config's
/// `data.split_seed`, separate from the run's seed): runs that differ only in their seed or
/// hyper-parameters see the same training and validation samples.
public struct DataSelection: Equatable, Sendable {
    /// Row indices within the training split to train on.
    public let train: [Int]
    /// Row indices within the training split held out for validation (empty: no validation).
    public let validation: [Int]

    /// Draws the selection from the training split's labels.
    ///
    /// - Parameters:
    ///   - trainSubset: training samples to keep after the validation rows are removed
    ///     (nil: all remaining rows).
    public static func stratified(labels: [Int32], numClasses: Int, validation: ValidationSize?,
                                  trainSubset: Int?, seed: UInt64) throws -> DataSelection {
        let total = labels.count
        let validationCount = validation?.samples(of: total) ?? 0
        guard validationCount >= 0, validationCount < total else {
            throw DataInputError("data.validation: \(validationCount) validation samples leave no training sample "
                                 + "(the training split has \(total)); expected fewer than \(total)")
        }
        let remaining = total - validationCount
        let trainCount = trainSubset ?? remaining
        guard trainCount >= 1, trainCount <= remaining else {
            throw DataInputError("data.train_subset: \(trainCount) training samples requested, but the training split has "
                                 + "\(total) samples of which \(validationCount) are held out for validation; "
                                 + "expected 1...\(remaining)")
        }
        var byClass = [[Int]](repeating: [], count: numClasses)
        for (i, y) in labels.enumerated() { byClass[Int(y)].append(i) }
        var rng = Xoshiro256(seed: seed, stream: "data-split")
        for c in 0..<numClasses where byClass[c].count > 1 {
            for i in stride(from: byClass[c].count - 1, to: 0, by: -1) {
                byClass[c].swapAt(i, rng.nextInt(below: i + 1))
            }
        }
        let sizes = byClass.map(\.count)
        let validationQuota = apportion(validationCount, over: sizes)
        let trainQuota = apportion(trainCount, over: zip(sizes, validationQuota).map { $0 - $1 })
        var validationRows: [Int] = []
        var trainRows: [Int] = []
        for c in 0..<numClasses {
            validationRows += byClass[c][0..<validationQuota[c]]
            trainRows += byClass[c][validationQuota[c]..<(validationQuota[c] + trainQuota[c])]
        }
        return DataSelection(train: trainRows.sorted(), validation: validationRows.sorted())
    }

    /// Splits `total` into integer parts proportional to `weights` (Hamilton's largest
    /// remainder method; ties go to the lower index), never giving a part more than its weight.
    static func apportion(_ total: Int, over weights: [Int]) -> [Int] {
        let sum = weights.reduce(0, +)
        guard sum > 0 else { return weights.map { _ in 0 } }
        var parts = weights.map { total * $0 / sum }
        var left = total - parts.reduce(0, +)
        let byRemainder = weights.indices.sorted { a, b in
            let ra = total * weights[a] % sum, rb = total * weights[b] % sum
            return ra != rb ? ra > rb : a < b
        }
        for i in byRemainder where left > 0 && parts[i] < weights[i] {
            parts[i] += 1
            left -= 1
        }
        return parts
    }
}

extension DatasetFile {
    /// Every label of a split, in file order (read in bounded blocks).
    public func allLabels(_ split: DatasetSplit, block: Int = 1 << 16) throws -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(count(split))
        let n = count(split)
        var start = 0
        while start < n {
            let c = min(block, n - start)
            out += try labels(split).read(start: [start], count: [c], as: Int32.self, converting: true)
            start += c
        }
        return out
    }
}
