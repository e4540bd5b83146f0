// swift-tools-version:6.0
//
// Decoupled: optimizer and regularizer experiments on the CPU.
// The module graph is described in docs/architecture.md.
import PackageDescription

/// The scalar reference kernels must stay plain scalar code, and every ISA path must round
/// exactly like it, so floating-point contraction (a*b+c → fma) is off for the C targets.
let kernelCFlags: [CSetting] = [.unsafeFlags(["-ffp-contract=off", "-O3"])]

let package = Package(
    name: "Decoupled",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "decoupled", targets: ["decoupled"]),
        .library(name: "DecoupledCore", targets: ["DecoupledCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.28.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        // Hummingbird's own dependencies, named for the logger and the bound address `serve` uses.
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
    ],
    targets: [
        // C: fused SIMD update kernels (scalar reference + AVX2 + AVX-512 + NEON), run-time dispatch.
        .target(name: "CDecoupledKernels", cSettings: kernelCFlags),
        // C: the versioned ABI external plugins implement (header only).
        .target(name: "CDecoupledPluginABI"),
        // C: shims for variadic system calls (prctl, for the trainer's stop signals) and the
        // per-thread subnormal flushing of the FPU (FloatingPointMode).
        .target(name: "CDecoupledSystem"),
        // C: 2-D convolutions on oneDNN (libdnnl, Debian's libdnnl-dev), private to DecoupledTraining.
        .target(name: "CDecoupledConvolution", linkerSettings: [.linkedLibrary("dnnl")]),
        // System libraries, found with pkg-config; the Makefile installs the Debian packages.
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),

        // Swift: the one layer of system calls — files (FS), the directory lock, the child-process
        // runner — below every module that writes files or starts processes.
        .target(name: "DecoupledSystem", dependencies: ["CDecoupledSystem"],
                swiftSettings: [.swiftLanguageMode(.v5)]),
        // Swift: a seeded, serializable PRNG shared by data shuffling and model initialisation.
        .target(name: "DecoupledRandom", swiftSettings: [.swiftLanguageMode(.v5)]),
        .target(name: "DecoupledCore", dependencies: ["CDecoupledKernels", "CDecoupledPluginABI", "CDecoupledSystem", "DecoupledRandom"],
                swiftSettings: [.swiftLanguageMode(.v5)]),
        .target(name: "DecoupledHDF5", dependencies: ["CHDF5", "DecoupledRandom", "DecoupledSystem"],
                swiftSettings: [.swiftLanguageMode(.v5)]),
        // Swift: atomic, checksummed HDF5 checkpoints of an arena plus the run state around it.
        .target(name: "DecoupledCheckpoint", dependencies: ["DecoupledCore", "DecoupledHDF5", "DecoupledRandom", "DecoupledSystem"],
                swiftSettings: [.swiftLanguageMode(.v5)]),
        // Swift: TensorBoard event files (TFRecord framing, Event protocol buffers generated once
        // from Proto/ by scripts/tensorboard/generate-proto.sh): writer and checking reader.
        .target(name: "DecoupledTensorBoard",
                dependencies: ["DecoupledHDF5", "DecoupledSystem", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                exclude: ["Proto"],
                swiftSettings: [.swiftLanguageMode(.v5)]),
        .target(name: "DecoupledTraining",
                dependencies: ["DecoupledCore", "DecoupledHDF5", "DecoupledCheckpoint", "DecoupledSystem", "DecoupledTensorBoard", "COpenBLAS", "CDecoupledConvolution", "CDecoupledSystem", "TOMLKit"],
                swiftSettings: [.swiftLanguageMode(.v5)]),
        // Swift: sweeps over configs (local and Slurm backends) and their reports.
        .target(name: "DecoupledExperiments", dependencies: ["DecoupledCore", "DecoupledHDF5", "DecoupledRandom", "DecoupledTraining", "DecoupledCheckpoint", "DecoupledSystem"],
                swiftSettings: [.swiftLanguageMode(.v5)]),
        // Swift: `decoupled serve`, a read-only live dashboard of a sweep or run directory over HTTP.
        .target(name: "DecoupledServe",
                dependencies: ["DecoupledExperiments", "DecoupledTraining",
                               .product(name: "Hummingbird", package: "hummingbird"),
                               .product(name: "Logging", package: "swift-log"),
                               .product(name: "NIOCore", package: "swift-nio")],
                swiftSettings: [.swiftLanguageMode(.v5)]),
        .executableTarget(
            name: "decoupled",
            dependencies: [
                "DecoupledCore", "DecoupledHDF5", "DecoupledCheckpoint", "DecoupledTraining", "DecoupledExperiments",
                "DecoupledServe", "DecoupledSystem", "CDecoupledSystem", "DecoupledTensorBoard",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: [.swiftLanguageMode(.v5)]),

        .testTarget(name: "DecoupledCoreTests", dependencies: ["DecoupledCore", "CDecoupledKernels"],
                    swiftSettings: [.swiftLanguageMode(.v5)]),
        // The .npy/.npz fixtures are read by path (scripts/datasets/make-numpy-fixtures.py writes them).
        .testTarget(name: "DecoupledHDF5Tests", dependencies: ["DecoupledHDF5"],
                    exclude: ["Fixtures"],
                    swiftSettings: [.swiftLanguageMode(.v5)]),
        // The event file written by TensorBoard's own writer is read by path, not bundled.
        .testTarget(name: "DecoupledTensorBoardTests", dependencies: ["DecoupledTensorBoard", "DecoupledHDF5"],
                    exclude: ["Fixtures"],
                    swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "DecoupledCheckpointTests", dependencies: ["DecoupledCheckpoint", "DecoupledSystem"],
                    swiftSettings: [.swiftLanguageMode(.v5)]),
        // The reference fixtures are read by path (scripts/reference writes them), not bundled.
        .testTarget(name: "DecoupledTrainingTests", dependencies: ["DecoupledTraining", "DecoupledCheckpoint", "DecoupledCore", "DecoupledHDF5", "DecoupledTensorBoard"],
                    exclude: ["Fixtures"],
                    swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "DecoupledExperimentsTests",
                    dependencies: ["DecoupledExperiments", "DecoupledTraining", "DecoupledCheckpoint", "DecoupledCore", "DecoupledSystem"],
                    swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "DecoupledServeTests",
                    dependencies: ["DecoupledServe", "DecoupledExperiments", "DecoupledTraining", "DecoupledSystem"],
                    swiftSettings: [.swiftLanguageMode(.v5)]),
    ]
)
