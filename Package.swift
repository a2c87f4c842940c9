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
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0")
  ],
  targets: [
    .systemLibrary(name: "CBLAS", pkgConfig: "openblas"),
    .systemLibrary(name: "CZstd", pkgConfig: "libzstd"),
    .systemLibrary(name: "CMPI", pkgConfig: "ompi-c"),
    .systemLibrary(name: "CTurboJPEG", pkgConfig: "libturbojpeg"),
    .target(name: "Tensors", dependencies: ["CBLAS"], swiftSettings: optimized),
    .target(name: "NN", dependencies: ["Tensors"], swiftSettings: optimized),
    .target(name: "Distributed", dependencies: ["CMPI", "NN", "Tensors"], swiftSettings: optimized),
    .target(name: "CelebAFormat", swiftSettings: optimized),
    .target(name: "Data", dependencies: ["CTurboJPEG", "CelebAFormat", "Tensors"], swiftSettings: optimized),
    .target(name: "Fairness", dependencies: ["CelebAFormat"], swiftSettings: optimized),
    .target(
      name: "Training", dependencies: ["CZstd", "NN", "Tensors", "Distributed", "Data", "Fairness"],
      swiftSettings: optimized),
    .target(name: "Report", dependencies: ["Fairness"], swiftSettings: optimized),
    .executableTarget(
      name: "fairtune",
      dependencies: [
        "NN", "Tensors", "Distributed", "Data", "Training", "Fairness", "Report",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ],
      swiftSettings: optimized),
    // The fuzz targets of every reader of outside data; scripts/fuzz.sh runs them under libFuzzer.
    .target(name: "FuzzTargets", dependencies: ["CelebAFormat", "Data", "Fairness", "NN", "Tensors", "Training"]),
    .executableTarget(name: "fairtune-fuzz", dependencies: ["FuzzTargets"]),
    .testTarget(name: "TensorsTests", dependencies: ["Tensors"]),
    .testTarget(name: "NNTests", dependencies: ["NN", "Tensors"], resources: [.copy("Fixtures")]),
    .testTarget(name: "DistributedTests", dependencies: ["Distributed", "Data", "NN", "Tensors"]),
    .testTarget(name: "TrainingTests", dependencies: ["Training", "NN", "Tensors"], resources: [.copy("Fixtures")]),
    .testTarget(name: "FairnessTests", dependencies: ["Fairness"]),
    .testTarget(name: "DataTests", dependencies: ["Data", "CelebAFormat", "Tensors"], resources: [.copy("Fixtures")]),
    .testTarget(name: "ReportTests", dependencies: ["Report", "Fairness"]),
    .testTarget(name: "FuzzTargetsTests", dependencies: ["FuzzTargets", "Training"]),
    .testTarget(name: "ShimTests", dependencies: ["CBLAS", "CZstd", "CMPI", "CTurboJPEG"]),
  ],
  swiftLanguageModes: [.v5]
)
