// swift-tools-version:6.0
// fairtune: a multi-process distributed trainer for the fairness of fine-tuning strategies in SSL.
import PackageDescription

// Kernels are compiled for AVX2 + FMA (Haswell and later: every x86 server since 2013): the hot loops
// vectorise 8 floats wide instead of SSE's 4.
#if arch(x86_64)
  let cpuFlags = ["-target-cpu", "haswell"]
#else
  let cpuFlags: [String] = []
#endif
let optimized: [SwiftSetting] = [
  .unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release)),
  .unsafeFlags(cpuFlags),
]

let package = Package(
  name: "fairtune",
  platforms: [.macOS(.v13)],
  products: [
    .executable(name: "fairtune", targets: ["fairtune"]),
    .executable(name: "fairtune-fuzz", targets: ["fairtune-fuzz"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
  ],
  targets: [
    .systemLibrary(name: "CBLAS", pkgConfig: "openblas"),
    .systemLibrary(name: "CZstd", pkgConfig: "libzstd"),
    .systemLibrary(name: "CMPI", pkgConfig: "ompi-c"),
    .systemLibrary(name: "CTurboJPEG", pkgConfig: "libturbojpeg"),
    // The seeded generator and the atomic file writer that every module shares.
    .target(name: "Support", dependencies: [.product(name: "Logging", package: "swift-log")], swiftSettings: optimized),
    // The vocabulary of training and reporting: the strategies and run.json.
    .target(name: "Experiment", swiftSettings: optimized),
    .target(name: "Tensors", dependencies: ["CBLAS", "Support"], swiftSettings: optimized),
    .target(name: "NN", dependencies: ["Tensors", "Support"], swiftSettings: optimized),
    .target(name: "Distributed", dependencies: ["CMPI", "Tensors"], swiftSettings: optimized),
    .target(name: "CelebAFormat", swiftSettings: optimized),
    .target(name: "Data", dependencies: ["CTurboJPEG", "CelebAFormat", "Tensors", "Support"], swiftSettings: optimized),
    .target(name: "Fairness", dependencies: ["CelebAFormat", "Support"], swiftSettings: optimized),
    .target(
      name: "Training",
      dependencies: [
        "CZstd", "NN", "Tensors", "Distributed", "Data", "Fairness", "Experiment", "Support",
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: optimized),
    .target(name: "Report", dependencies: ["Fairness", "CelebAFormat", "Experiment", "Support"], swiftSettings: optimized),
    // reproduce's stages as data and the job that runs them, and plan's cost model of the same stages.
    .target(
      name: "Pipeline", dependencies: ["Training", "Report", "Data", "Distributed", "Fairness", "CelebAFormat", "Experiment", "Support"],
      swiftSettings: optimized),
    .executableTarget(
      name: "fairtune",
      dependencies: [
        "Distributed", "Data", "Training", "Pipeline", "Fairness", "Report", "CelebAFormat", "Experiment", "Support",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: optimized),
    // The fuzz targets of every reader of outside data; scripts/fuzz.sh runs them under libFuzzer.
    .target(name: "FuzzTargets", dependencies: ["CelebAFormat", "Data", "Experiment", "Fairness", "NN", "Support", "Tensors", "Training"]),
    .executableTarget(name: "fairtune-fuzz", dependencies: ["FuzzTargets"]),
    // Helpers the test suites share.
    .target(name: "TestSupport", dependencies: [.product(name: "Logging", package: "swift-log")], path: "Tests/TestSupport"),
    .testTarget(name: "SupportTests", dependencies: ["Support", .product(name: "Logging", package: "swift-log")]),
    .testTarget(name: "TensorsTests", dependencies: ["Tensors", "Support"]),
    .testTarget(name: "NNTests", dependencies: ["NN", "Tensors", "Support", "TestSupport"], resources: [.copy("Fixtures")]),
    .testTarget(name: "DistributedTests", dependencies: ["Distributed", "Data", "NN", "Tensors", "Support", "TestSupport", "Training"]),
    // The fairtune binary driven under mpirun, in network namespaces and through Slurm.
    .testTarget(name: "SystemTests", dependencies: ["Tensors", "Support", "TestSupport"]),
    .testTarget(
      name: "TrainingTests", dependencies: ["Training", "NN", "Tensors", "Experiment", "Support", "TestSupport", .product(name: "Logging", package: "swift-log")],
      resources: [.copy("Fixtures")]),
    .testTarget(name: "FairnessTests", dependencies: ["Fairness", "CelebAFormat"]),
    .testTarget(name: "DataTests", dependencies: ["Data", "CelebAFormat", "Tensors", "Support"], resources: [.copy("Fixtures")]),
    .testTarget(name: "ReportTests", dependencies: ["Report", "Fairness", "CelebAFormat", "Experiment"]),
    .testTarget(name: "FuzzTargetsTests", dependencies: ["FuzzTargets", "Training"]),
    .testTarget(name: "ShimTests", dependencies: ["CBLAS", "CZstd", "CMPI", "CTurboJPEG"]),
  ],
  swiftLanguageModes: [.v5]
)
