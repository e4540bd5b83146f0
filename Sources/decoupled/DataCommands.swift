import ArgumentParser
import DecoupledCore
import DecoupledHDF5
import DecoupledTraining
import Foundation

// The data commands only parse arguments and call DecoupledHDF5, where the logic lives.

/// `decoupled data …`
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Import datasets into HDF5 and inspect dataset files.",
        discussion: """
        Dataset files hold /train/x, /train/y, /test/x, /test/y (features uint8 or float32, \
        integer labels) and the root attributes num_classes, scale, source and license; see \
        datasets/README.md.

        Examples:
          decoupled data import fashion-mnist --output datasets/fashion-mnist.h5
          decoupled data import csv measurements.csv --label-column label -o m.h5
          decoupled data inspect datasets/fashion-mnist-small.h5
        """,
        subcommands: [DataImportCommand.self, DataInspectCommand.self])
}

/// Storage layout options shared by the importers.
struct DataStorageOptions: ParsableArguments {
    @Option(help: "Layout: chunked+gzip, chunked or contiguous.")
    var layout: String = "chunked+gzip"

    @Option(help: "Rows per chunk (default: about 256 KiB of features per chunk).")
    var chunkRows: Int?

    @Option(help: "gzip level 0-9 for the chunked+gzip layout.")
    var gzipLevel: Int = 4

    @Flag(help: "Add a Fletcher-32 checksum to every chunk.")
    var fletcher32 = false

    func storage(rowBytes: Int) throws -> DatasetStorage {
        let rows = chunkRows ?? DatasetStorage.defaultChunkRows(rowBytes: rowBytes)
        if let r = chunkRows, r < 1 { throw ValidationError("--chunk-rows must be ≥ 1, got \(r)") }
        switch layout {
        case "chunked+gzip": return DatasetStorage(chunkRows: rows, gzipLevel: gzipLevel, shuffle: true, fletcher32: fletcher32)
        case "chunked": return DatasetStorage(chunkRows: rows, fletcher32: fletcher32)
        case "contiguous":
            if fletcher32 { throw ValidationError("--fletcher32 needs a chunked layout") }
            return .contiguous
        default: throw ValidationError("--layout must be chunked+gzip, chunked or contiguous, got '\(layout)'")
        }
    }
}

/// `decoupled data import …`
struct DataImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Convert a dataset into a Decoupled HDF5 dataset file.",
        discussion: """
        Examples:
          decoupled data import fashion-mnist --output datasets/fashion-mnist.h5
          decoupled data import csv train.csv --test test.csv --output mydata.h5
        """,
        subcommands: [ImportFashionMNISTCommand.self, ImportCSVCommand.self, ImportNPYCommand.self, ImportNPZCommand.self])
}

struct ImportFashionMNISTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fashion-mnist",
        abstract: "Import Fashion-MNIST from its IDX files (gzip-compressed or not).",
        discussion: """
        Reads train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and \
        t10k-labels-idx1-ubyte (each optionally .gz) from --source, by default the directory of \
        the Debian package dataset-fashion-mnist (\(FashionMNIST.defaultDirectory)). Images \
        become uint8 rows of 784 features with scale 1/255; labels uint8 in 0..<10.

        --train-per-class / --test-per-class keep a stratified subset, drawn with --seed.

        Examples:
          decoupled data import fashion-mnist --output datasets/fashion-mnist.h5
          decoupled data import fashion-mnist --source ~/fmnist --layout chunked \\
              --output fm.h5
          decoupled data import fashion-mnist --train-per-class 1000 \\
              --test-per-class 200 --seed 0 --output small.h5
        """)

    @Option(help: "Directory with the IDX files (default: \(FashionMNIST.defaultDirectory)).")
    var source: String?

    @Option(name: [.short, .long], help: "Output HDF5 file.")
    var output: String

    @Option(help: "Keep this many training samples of each class (stratified subset).")
    var trainPerClass: Int?

    @Option(help: "Keep this many test samples of each class.")
    var testPerClass: Int?

    @Option(help: "Seed of the subset selection.")
    var seed: UInt64 = 0

    @OptionGroup var storage: DataStorageOptions

    func run() throws {
        let s = try FashionMNIST.importDataset(directory: source, output: output, trainPerClass: trainPerClass,
                                               testPerClass: testPerClass, seed: seed,
                                               storage: storage.storage(rowBytes: 784))
        print(s)
    }
}

struct ImportCSVCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "csv",
        abstract: "Import a CSV file (one sample per row, one label column: class indices or names).",
        discussion: """
        Every column except the label column is a feature. A header row is detected when the \
        first row is not all numbers (or forced with --header yes/no). Without --test, an exact, \
        seeded --test-fraction of the rows becomes the test split. Labels that are all \
        non-negative integers are the class indices; otherwise they are class names (iris's \
        "setosa", "versicolor", "virginica"), numbered in sorted order and stored as the \
        class_names attribute. Bad values stop the import with the file, line and column; no \
        partial output file is left behind.

        Examples:
          decoupled data import csv train.csv --test test.csv --output data.h5
          decoupled data import csv measurements.csv --label-column label \\
              --test-fraction 0.2 --output measurements.h5
          decoupled data import csv iris.csv --label-column species \\
              --test-fraction 0.2 --output iris.h5
          decoupled data import csv digits.csv --label-column first \\
              --features uint8 --output digits.h5
        """)

    @Argument(help: "Training CSV file.")
    var train: String

    @Option(help: "Test CSV file (same columns).")
    var test: String?

    @Option(help: "Fraction of the training rows to hold out as test split when --test is not given.")
    var testFraction: Double = 0.2

    @Option(name: [.short, .long], help: "Output HDF5 file.")
    var output: String

    @Option(help: "Label column: last, first, a 0-based index, or a header name.")
    var labelColumn: String = "last"

    @Option(help: "Header row: auto, yes or no.")
    var header: String = "auto"

    @Option(help: "Field delimiter (one character).")
    var delimiter: String = ","

    @Option(help: "Feature type: float32, or uint8 for integers 0-255.")
    var features: String = "float32"

    @OptionGroup var dataset: ImportedDatasetOptions

    @OptionGroup var storage: DataStorageOptions

    func run() throws {
        guard let h = CSVImportOptions.Header(rawValue: header) else {
            throw ValidationError("--header must be auto, yes or no, got '\(header)'")
        }
        guard delimiter.count == 1, let d = delimiter.first else {
            throw ValidationError("--delimiter must be one character, got '\(delimiter)'")
        }
        guard let ft = H5ScalarType(rawValue: features), ft == .float32 || ft == .uint8 else {
            throw ValidationError("--features must be float32 or uint8, got '\(features)'")
        }
        var o = CSVImportOptions(trainPath: train, output: output)
        o.testPath = test
        o.testFraction = testFraction
        o.labelColumn = labelColumn
        o.header = h
        o.delimiter = d
        o.featureType = ft
        o.scale = dataset.scale
        o.numClasses = dataset.numClasses
        o.seed = dataset.seed
        o.source = dataset.source
        o.license = dataset.license
        // Row bytes are unknown until the file is scanned; size chunks for a typical 100-column row
        // unless --chunk-rows is given.
        o.storage = try storage.storage(rowBytes: 100 * ft.byteSize)
        print(try CSVImport.importDataset(o))
    }
}

/// The dataset attributes and split seed every `data import` from the user's files takes
/// (csv, npy, npz).
struct ImportedDatasetOptions: ParsableArguments {
    @Option(help: "Scale stored features by this factor when loading (default 1/255 for uint8, 1 for float32).")
    var scale: Double?

    @Option(help: "Number of classes (default: largest label + 1).")
    var numClasses: Int?

    @Option(help: "Seed of the test split selection.")
    var seed: UInt64 = 0

    @Option(help: "Text of the source attribute.")
    var source: String?

    @Option(help: "Text of the license attribute.")
    var license: String?
}

/// Options shared by `data import npy` and `data import npz`.
struct NumPyImportArguments: ParsableArguments {
    @Option(name: [.short, .long], help: "Output HDF5 file.")
    var output: String

    @Option(help: "Without test arrays: the fraction of the samples held out as the test split.")
    var testFraction: Double = 0.2

    @Option(help: "Feature type: uint8 or float32 (default: uint8 for uint8 images, else float32).")
    var features: String?

    @OptionGroup var dataset: ImportedDatasetOptions

    @OptionGroup var storage: DataStorageOptions

    func options() throws -> NumPyImportOptions {
        var o = NumPyImportOptions(output: output)
        if let f = features {
            guard let t = H5ScalarType(rawValue: f), t == .uint8 || t == .float32 else {
                throw ValidationError("--features must be uint8 or float32, got '\(f)'")
            }
            o.featureType = t
        }
        o.scale = dataset.scale
        o.numClasses = dataset.numClasses
        o.testFraction = testFraction
        o.seed = dataset.seed
        o.source = dataset.source
        o.license = dataset.license
        // Check the layout options now; chunks are sized once the arrays' sample size is known.
        _ = try storage.storage(rowBytes: 1)
        let layout = storage
        o.storage = { try layout.storage(rowBytes: $0) }
        return o
    }
}

struct ImportNPYCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "npy",
        abstract: "Import NumPy .npy arrays of images and labels.",
        discussion: """
        Images: samples first, any shape after that ((N, 784), (N, 28, 28), ...), of type uint8, int8-64, uint16-64, float32 or float64, little-endian; the sample shape is kept. uint8 images are stored as uint8 with scale 1/255, all others as float32 with scale 1 (override with --features and --scale). Labels: integer class indices, shape (N,) or (N, 1). Without --test-images and --test-labels an exact, seeded --test-fraction of the samples becomes the test split.

        Examples:
          decoupled data import npy --images x.npy --labels y.npy \\
              --output mydata.h5
          decoupled data import npy --images x_train.npy \\
              --labels y_train.npy --test-images x_test.npy \\
              --test-labels y_test.npy --output mydata.h5
        """)

    @Option(help: "Training images (.npy).")
    var images: String

    @Option(help: "Training labels (.npy).")
    var labels: String

    @Option(help: "Test images (.npy).")
    var testImages: String?

    @Option(help: "Test labels (.npy).")
    var testLabels: String?

    @OptionGroup var arguments: NumPyImportArguments

    func run() throws {
        let o = try arguments.options()
        print(try NumPyImport.importFiles(images: images, labels: labels, testImages: testImages,
                                          testLabels: testLabels, options: o))
    }
}

struct ImportNPZCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "npz",
        abstract: "Import a NumPy .npz archive (np.savez, np.savez_compressed, keras.datasets files).",
        discussion: """
        Reads the arrays x_train, y_train, x_test and y_test (the names keras.datasets uses; others with --images-key and friends), stored or compressed. Types and shapes as for `data import npy`. When the archive holds neither test array, an exact, seeded --test-fraction of the samples becomes the test split, with a notice.

        Examples:
          decoupled data import npz mnist.npz --output mnist.h5
          decoupled data import npz arrays.npz --images-key X \\
              --labels-key y --output mydata.h5
        """)

    @Argument(help: "The .npz file.")
    var file: String

    @Option(help: "Name of the training images array.")
    var imagesKey = "x_train"

    @Option(help: "Name of the training labels array.")
    var labelsKey = "y_train"

    @Option(help: "Name of the test images array.")
    var testImagesKey = "x_test"

    @Option(help: "Name of the test labels array.")
    var testLabelsKey = "y_test"

    @OptionGroup var arguments: NumPyImportArguments

    func run() throws {
        var keys = NumPyImport.Keys()
        keys.images = imagesKey
        keys.labels = labelsKey
        keys.testImages = testImagesKey
        keys.testLabels = testLabelsKey
        let summary = try NumPyImport.importArchive(file, keys: keys, options: try arguments.options())
        for note in summary.notes { FileHandle.standardError.write(Data("notice: \(note)\n".utf8)) }
        print(summary)
    }
}

/// `decoupled data inspect FILE.h5`
struct DataInspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show an HDF5 file's groups, datasets (shape, type, chunking, filters, size) and attributes.",
        discussion: """
        For dataset files (with /train or /test) the file is also validated against the format \
        and the class balance of each split is shown; an invalid dataset file exits with status 1. \
        Any HDF5 file can be inspected, checkpoints included.

        Examples:
          decoupled data inspect datasets/fashion-mnist-small.h5
          decoupled data inspect runs/x/checkpoints/ckpt-0000000500.h5
        """)

    @Argument(help: "HDF5 file to inspect.")
    var file: String

    func run() throws {
        if SyntheticData.isSynthetic(file) {
            throw ValidationError("'\(file)' names a data set generated in memory on every open (docs/problems.md), not a file: "
                                  + "there is nothing on disk to inspect. Expected an HDF5 file's path.")
        }
        let report = try DatasetInspector.inspect(path: file)
        print(report.text, terminator: "")
        if report.formatError != nil { throw ExitCode(1) }
    }
}

/// `decoupled bench data` (registered under `bench`).
struct BenchDataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Benchmark streaming minibatches from HDF5, beside h5py, and peak memory vs dataset size.",
        discussion: """
        Writes Fashion-MNIST (or a synthetic stand-in) as contiguous, chunked and chunked+gzip \
        files, streams each sequentially and shuffled with the MinibatchLoader, then runs the \
        shipped scripts/bench/h5py_stream.py on the same files. Finally it generates datasets of \
        --memory-sizes MB and streams one epoch of each in a fresh process to compare peak RSS.

        Examples:
          decoupled bench data
          decoupled bench data --seconds 5 --buffer-mb 128
          decoupled bench data --no-h5py --memory-sizes ""
        """)

    @Option(help: "Fashion-MNIST IDX directory (synthetic data when it does not exist).")
    var source: String = FashionMNIST.defaultDirectory

    @Option(help: "Directory for the benchmark files.")
    var workDir: String = NSTemporaryDirectory() + "decoupled-bench-data"

    @Option(help: "Minibatch size.")
    var batchSize: Int = 128

    @Option(help: "Loader buffer in MiB (default 16, below the 47 MB of Fashion-MNIST, so each epoch reads HDF5).")
    var bufferMb: Int = 16

    @Option(help: "Minimum seconds per measurement.")
    var seconds: Double = 2

    @Option(help: "Comma-separated sizes in MB of generated files for the peak-RSS comparison (\"\" to skip).")
    var memorySizes: String = "200,2000"

    @Option(help: "The h5py benchmark script (default: the shipped scripts/bench/h5py_stream.py).")
    var h5pyScript: String?

    @Option(help: "Python interpreter with h5py.")
    var python: String = "/usr/bin/python3"

    @Flag(help: "Skip the h5py side.")
    var noH5py = false

    @Flag(help: "Keep the benchmark files.")
    var keepFiles = false

    @Option(help: .hidden)
    var rssProbe: String?

    func run() throws {
        guard batchSize >= 1, bufferMb >= 1, seconds >= 0 else {
            throw ValidationError("--batch-size and --buffer-mb must be ≥ 1 and --seconds ≥ 0")
        }
        if let probe = rssProbe {
            // Child mode: stream one epoch of `probe` and report this process's peak RSS.
            let bytes = try DataBenchmark.rssProbe(path: probe, batchSize: batchSize, bufferBytes: bufferMb << 20, seed: 0)
            print("peak_rss_bytes=\(bytes)")
            return
        }
        var o = DataBenchmark.Options()
        o.source = source
        o.workDirectory = workDir
        o.batchSize = batchSize
        o.bufferBytes = bufferMb << 20
        o.seconds = seconds
        o.h5pyScript = noH5py ? nil : try h5pyScript ?? InstallLayout.require("scripts/bench/h5py_stream.py", for: "the h5py side (or --no-h5py)")
        o.python = python
        o.keepFiles = keepFiles
        o.memorySizesMB = try memorySizes.split(separator: ",").map {
            guard let v = Int($0.trimmingCharacters(in: .whitespaces)), v > 0 else {
                throw ValidationError("--memory-sizes must be positive integers, got '\($0)'")
            }
            return v
        }
        // The probe re-runs this executable as `… bench data --rss-probe FILE`.
        o.probeCommand = ["/proc/self/exe", "bench", "data"]
        try DataBenchmark.run(o) { print($0) }
    }
}
