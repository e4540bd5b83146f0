import DecoupledTraining
import Foundation

/// One method's heatmap as data rather than a gnuplot script: the cells, values, grey-cell
/// labels, selected outline and shared colour scale of the report's heatmaps (ReportPlots),
/// computed by the same `SweepResults` rules — only completed runs enter a cell, "selected" is
/// the report's selection (validation loss when the runs hold out a validation split).
/// `decoupled serve` draws these in the browser while a sweep fills in.
public struct ReportHeatmapGrid: Codable, Equatable, Sendable {
    /// One (lr, decay) cell.
    public struct Cell: Codable, Equatable, Sendable {
        public let lr: Double
        public let decay: Double
        /// Mean test error over the cell's completed seeds, in percent; nil without one.
        public let mean: Double?
        /// Sample standard deviation over those seeds, percent; nil for fewer than two.
        public let std: Double?
        /// Seeds with a result, and runs the cell has (0: the grid has no such run).
        public let completed: Int
        public let seeds: Int
        /// Without a result, the statuses of the cell's runs ("pending", "diverged / pending"),
        /// or "no run"; nil when the cell has a value.
        public let missing: String?
        /// The report's selected setting of this method.
        public let selected: Bool
        /// The ids of the cell's runs (its seeds), so a live view can say which are running.
        public let runs: [String]
    }

    /// The method label (one heatmap each).
    public let method: String
    /// Learning rates (x, ascending) and decays (y, ascending), with their axis labels.
    public let lrs: [Double]
    public let decays: [Double]
    public let lrLabels: [String]
    public let decayLabels: [String]
    /// Row by row from the smallest decay: `cells[y * lrs.count + x]`.
    public let cells: [Cell]
    /// The run of the selected setting whose curves the report draws (its best seed).
    public let selectedRun: String?

    enum CodingKeys: String, CodingKey {
        case method, lrs, decays, cells
        case lrLabels = "lr_labels", decayLabels = "decay_labels", selectedRun = "selected_run"
    }

    /// Every method's grid, in manifest order, with the colour scale they share; `metric` is
    /// the test error shown. Errors are `FileFormatError`s naming the file and key.
    public static func load(sweepDirectory: URL, metric: ReportMetric = .final) throws -> Set {
        let results = try SweepResults.load(sweepDirectory: sweepDirectory)
        let range = ReportPlots.colourRange(results, metric: metric)
        let grids = results.methods.map { method -> ReportHeatmapGrid in
            let (lrs, decays) = results.axes(of: method)
            let settings = results.settings(of: method)
            let selected = results.best(of: method, metric: metric)
            let best = selected?.setting
            var cells: [Cell] = []
            for decay in decays {
                for lr in lrs {
                    let setting = settings.first { $0.lr == lr && $0.decay == decay }
                    let value = setting?.aggregate(metric).map(ReportPlots.percent)
                    let missing = value != nil ? nil : setting.map { $0.missingLabel.isEmpty ? "no result" : $0.missingLabel } ?? "no run"
                    cells.append(Cell(lr: lr, decay: decay, mean: value?.mean, std: value?.std, completed: value?.count ?? 0,
                                      seeds: setting?.runs.count ?? 0, missing: missing,
                                      selected: best.map { $0.lr == lr && $0.decay == decay } ?? false,
                                      runs: setting?.runs.map(\.run.id) ?? []))
                }
            }
            return ReportHeatmapGrid(method: method, lrs: lrs, decays: decays, lrLabels: ReportFormat.hyperAxis(lrs),
                                     decayLabels: ReportFormat.hyperAxis(decays), cells: cells, selectedRun: selected?.run.run.id)
        }
        return Set(metric: metric.phrase, selection: results.selection.phrase,
                   colourLow: range?.low, colourHigh: range?.high,
                   colourCapped: range?.capped ?? false, grids: grids)
    }

    /// The heatmaps of one sweep.
    public struct Set: Codable, Equatable, Sendable {
        /// What the cells show ("final test error") and how the outlined cell was selected.
        public let metric: String
        public let selection: String
        /// The colour scale every grid shares (percent): values at or beyond `colourHigh` saturate
        /// when `colourCapped`. nil while no cell has a value.
        public let colourLow: Double?
        public let colourHigh: Double?
        public let colourCapped: Bool
        public let grids: [ReportHeatmapGrid]

        enum CodingKeys: String, CodingKey {
            case metric, selection, grids
            case colourLow = "colour_low", colourHigh = "colour_high", colourCapped = "colour_capped"
        }
    }
}
