import Foundation
import Testing
@testable import DecoupledHDF5

/// `data.train_subset` / `data.validation`: a stratified, seeded, disjoint selection of the
/// training split, and a loader that visits exactly the selected rows.
@Suite struct DataSelectionTests {
    /// Labels of an unbalanced 10-class split: class c has 100 + 10·c samples, interleaved.
    static let labels: [Int32] = {
        var out: [Int32] = []
        var left = (0..<10).map { 100 + 10 * $0 }
        while left.contains(where: { $0 > 0 }) {
            for c in 0..<10 where left[c] > 0 { out.append(Int32(c)); left[c] -= 1 }
        }
        return out
    }()

    func classCounts(_ rows: [Int]) -> [Int] {
        var counts = [Int](repeating: 0, count: 10)
        for r in rows { counts[Int(Self.labels[r])] += 1 }
        return counts
    }

    @Test func stratifiedDisjointSortedAndExact() throws {
        let total = Self.labels.count  // 1450
        let s = try DataSelection.stratified(labels: Self.labels, numClasses: 10, validation: .fraction(0.2),
                                             trainSubset: 300, seed: 7)
        #expect(s.validation.count == 290 && s.train.count == 300)
        #expect(Set(s.train).isDisjoint(with: s.validation))
        #expect(s.train == s.train.sorted() && s.validation == s.validation.sorted())
        #expect(s.train.allSatisfy { $0 >= 0 && $0 < total })
        // Each class contributes in proportion to its share (largest remainder: within one sample).
        for (rows, n) in [(s.validation, 290), (s.train, 300)] {
            for (c, k) in classCounts(rows).enumerated() {
                let share = Double(n) * Double(100 + 10 * c) / Double(total)
                #expect(abs(Double(k) - share) < 1.0 + 1e-9, "class \(c): \(k) of \(n), share \(share)")
            }
        }
    }

    @Test func seedDecidesTheDrawAndNothingElse() throws {
        let a = try DataSelection.stratified(labels: Self.labels, numClasses: 10, validation: .count(100), trainSubset: 50, seed: 1)
        let b = try DataSelection.stratified(labels: Self.labels, numClasses: 10, validation: .count(100), trainSubset: 50, seed: 1)
        let c = try DataSelection.stratified(labels: Self.labels, numClasses: 10, validation: .count(100), trainSubset: 50, seed: 2)
        #expect(a == b && a != c)
        // The validation rows do not depend on the training subset's size.
        let d = try DataSelection.stratified(labels: Self.labels, numClasses: 10, validation: .count(100), trainSubset: 500, seed: 1)
        #expect(d.validation == a.validation)
        // Without a subset every other row trains.
        let e = try DataSelection.stratified(labels: Self.labels, numClasses: 10, validation: .count(100), trainSubset: nil, seed: 1)
        #expect(e.train.count == Self.labels.count - 100 && Set(e.train).union(e.validation).count == Self.labels.count)
    }

    @Test func impossibleSizesNameTheKey() {
        #expect(throws: DataInputError.self) {
            try DataSelection.stratified(labels: Self.labels, numClasses: 10, validation: .count(1450), trainSubset: nil, seed: 0)
        }
        do {
            _ = try DataSelection.stratified(labels: Self.labels, numClasses: 10, validation: .count(1000), trainSubset: 451, seed: 0)
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("data.train_subset") && "\(error)".contains("1...450"), "\(error)")
        }
    }

    /// The loader visits exactly the selected rows, each once per epoch, with their own
    /// features and labels, for chunked+gzip and contiguous files.
    @Test(arguments: [0, 1])
    func loaderVisitsExactlyTheSelectedRows(layout: Int) throws {
        let dir = TempDir()
        let storage = layout == 0 ? DatasetStorage(chunkRows: 16, gzipLevel: 1, shuffle: true) : .contiguous
        let path = try makeDataset(dir.file("d.h5"), train: 1_003, test: 37, storage: storage)
        let ds = try DatasetFile(path: path)
        let rows = try DataSelection.stratified(labels: try ds.allLabels(.train), numClasses: ds.numClasses,
                                                validation: .count(200), trainSubset: 301, seed: 3)
        for (selected, shuffle) in [(rows.train, true), (rows.validation, false)] {
            // A small buffer forces several windows and re-reads.
            let loader = try MinibatchLoader(file: ds, split: .train, batchSize: 32, seed: 5, shuffle: shuffle,
                                             bufferBytes: 4_000, rows: selected)
            for _ in 0..<2 {
                let all = try collectEpoch(loader).flatMap { $0 }
                #expect(all.count == selected.count && Set(all) == Set(selected))
                if !shuffle { #expect(all == selected, "evaluation visits the rows in file order") }
            }
        }
        #expect(throws: DataInputError.self) {
            try MinibatchLoader(file: ds, split: .train, batchSize: 8, seed: 0, rows: [5, 3])
        }
        #expect(throws: DataInputError.self) {
            try MinibatchLoader(file: ds, split: .train, batchSize: 8, seed: 0, rows: [1_003])
        }
    }
}
