// ResNet-18/50 forward, loss, every gradient and the running statistics against PyTorch fixtures.
import Foundation
import NN
import Tensors
import TestSupport
import XCTest

/// The weight pattern of scripts/make_reference.py, computed independently here.
enum Pattern {
  static func fnv1a(_ name: String) -> UInt64 {
    var h: UInt32 = 0x811C_9DC5
    for byte in name.utf8 { h = (h ^ UInt32(byte)) &* 0x0100_0193 }
    return UInt64(h)
  }

  static func uniform(_ name: String, _ count: Int) -> [Double] {
    let seed = fnv1a(name)
    return (0..<count).map { i in
      var h = UInt32(truncatingIfNeeded: UInt64(i) &* 2_654_435_761 &+ seed)
      h ^= h >> 16
      h = h &* 0x85EB_CA6B
      h ^= h >> 13
      h = h &* 0xC2B2_AE35
      h ^= h >> 16
      return Double(h) / Double(1 << 32) - 0.5
    }
  }

  /// Values for a state-dict entry, by the script's rules.
  static func values(name: String, shape: [Int]) -> [Float] {
    let count = shape.reduce(1, *)
    if name.hasSuffix("num_batches_tracked") { return [3] }
    let u = uniform(name, count)
    let isNorm = name.contains("bn") || name.contains("downsample.1")
    if name.hasSuffix("running_var") { return u.map { Float(1.0 + $0) } }
    if name.hasSuffix("running_mean") || (isNorm && name.hasSuffix("bias")) { return u.map { Float(0.4 * $0) } }
    if name.hasSuffix("bn3.weight") { return u.map { Float(0.25 + 0.1 * $0) } }
    if isNorm && name.hasSuffix("weight") { return u.map { Float(1.0 + 0.4 * $0) } }
    if name == "fc.bias" { return u.map { Float(0.2 * $0) } }
    let fanIn = Double(shape.dropFirst().reduce(1, *))
    let scale = 2.0 * pow(6.0 / fanIn, 0.5)
    return u.map { Float($0 * scale) }
  }
}

final class ReferenceFixtureTests: XCTestCase {
  struct Case {
    let file: String
    let depth: ResNetDepth
    let stem: Stem
    let training: Bool
    var algorithm = ConvolutionAlgorithm.winograd
    var precision = Precision.fp32
  }

  func fixture(_ name: String) throws -> SafeTensors {
    let url = try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures"))
    return try SafeTensors(contentsOf: url.path)
  }

  /// max |ours - torch| / (max |torch| + 1e-6) of every tensor, by name (fp32 cases are checked
  /// by `checkFP32`, bf16 cases by `compareBF16`).
  @discardableResult
  func run(_ c: Case) throws -> [String: Float] {
    let f = try fixture(c.file)
    let config = ResNetConfiguration(depth: c.depth, stem: c.stem, width: 4.0 / 64.0, classes: 40)
    let model = try ResNet(config)
    model.setConvolutionAlgorithm(c.algorithm)
    BLAS.matmulPrecision = c.precision
    defer { BLAS.matmulPrecision = .fp32 }
    var checksum = 0.0
    for entry in model.registry.entries {
      let values = Pattern.values(name: entry.name, shape: entry.shape)
      values.withUnsafeBufferPointer { entry.setTorchOrdered($0) }
      if !entry.name.hasSuffix("num_batches_tracked") { checksum += values.reduce(0.0) { $0 + Double($1) } }
    }
    let expectedChecksum = Double(try f.floats("weights_checksum")[0])
    // The same float32 values summed in float64, read back through Float: 2^-24 of the sum apart.
    XCTAssertEqual(checksum, expectedChecksum, accuracy: 1e-3 * max(1, abs(expectedChecksum)), "weight pattern differs from the script's")

    let inputShape = try f.floats("input_shape").map { Int($0) }
    let (n, channels, h, w) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
    let nchw = Pattern.uniform("input", n * channels * h * w).map { Float($0) * 4 }
    // A float32 sum of up to 49,152 values in [-2, 2) (about -287): each addition rounds by up to
    // 2^-24 of a partial sum of a few hundred, a random walk of well under 1e-2.
    XCTAssertEqual(Double(nchw.reduce(0, +)), Double(try f.floats("input_checksum")[0]), accuracy: 1e-2)
    let images = Tensor(shape: [n, h, w, channels])
    for b in 0..<n { for ch in 0..<channels { for y in 0..<h { for x in 0..<w {
      images.data[((b * h + y) * w + x) * channels + ch] = nchw[((b * channels + ch) * h + y) * w + x]
    } } } }
    let targets = Pattern.uniform("targets", n * 40).map { $0 > 0.1 ? Float(1) : 0 }
    model.setBatchNormTraining(c.training)
    model.registry.zeroGradients()
    let logits = model.forward(FeatureMap(data: images.data, batch: n, height: h, width: w, channels: channels))
    let gradient = Tensor(shape: [n, 40])
    let loss = targets.withUnsafeBufferPointer {
      Losses.binaryCrossEntropyWithLogits(logits: logits, targets: $0.baseAddress!, count: n * 40, gradient: gradient.data)
    }
    model.backward(gradient.data)

    var errors: [(String, Float)] = []
    errors.append(("logits", relativeError(Array(UnsafeBufferPointer(start: logits, count: n * 40)), try f.floats("logits"))))
    errors.append(("loss", relativeError([loss], try f.floats("loss"))))
    for p in model.registry.parameters {
      errors.append(("grad." + p.name, relativeError(p.torchOrderedGradient(), try f.floats("grad." + p.name, shape: p.shape))))
    }
    for b in model.registry.buffers where !b.name.hasSuffix("num_batches_tracked") {
      errors.append(("after." + b.name, relativeError(b.torchOrdered(), try f.floats("after." + b.name, shape: b.shape))))
    }
    XCTAssertEqual(errors.count, 2 + model.registry.parameters.count + model.registry.buffers.count - model.batchNorms.count)
    let worst = errors.max { $0.1 < $1.1 }!
    let gradients = errors.filter { $0.0.hasPrefix("grad.") }.map(\.1).sorted()
    print(String(format: "%@ (%@, %@, %@): %d tensors, worst relative error %.2e in %@; logits %.2e, loss %.2e, median gradient %.2e",
      c.file, c.training ? "train" : "eval", c.algorithm.rawValue, c.precision.rawValue, errors.count, Double(worst.1), worst.0,
      Double(errors[0].1), Double(errors[1].1), Double(gradients[gradients.count / 2])))
    return Dictionary(errors) { a, _ in a }
  }

  /// fp32 against the float64 fixture, tensor by tensor, with a tolerance derived from the same
  /// tensor's bf16-emulated error: the converse of `compareBF16`. A tensor's fp32 error is its
  /// computation's amplification of rounding errors times 2^-24, and that amplification varies by
  /// orders of magnitude between tensors (the worst, training-mode BatchNorm gradients, are near
  /// 1000); the emulated run is the same computation with its products' operands rounded to
  /// bfloat16 (unit roundoff 2^-8), so its error measures the amplification whatever order
  /// OpenBLAS sums in. Allowed: 16 x 2^-16 x the bf16 error (16: each error is a noisy measure,
  /// off by a few either way; on three OpenBLAS cores the ratio of the two ran from 2^13.5 to
  /// 2^18 over the tensors above a few 2^-24), plus 16 x 2^-24 for what no product amplifies (a
  /// tensor's own last fp32 steps, such as a running statistic's momentum blend, and the
  /// fixture's float32 storage: a few roundings each). Code that computes something else is off
  /// by as much in both runs, far more than 2^-16 of the bf16 error allows.
  func checkFP32(_ c: Case) throws {
    let single = try run(c)
    var emulated = c
    emulated.precision = .bf16Emulated
    let bf16 = try run(emulated)
    let ratio: Float = 65536
    var share: (Float, String) = (0, "")
    for (name, error) in single.sorted(by: { $0.key < $1.key }) {
      let tolerance = 16 * (bf16[name] ?? 0) / ratio + 16 * Float.ulpOfOne / 2
      if error / tolerance > share.0 { share = (error / tolerance, name) }
      if error > tolerance { XCTFail("\(c.file) (fp32): \(name) relative error \(error) > \(tolerance) (bf16: \(bf16[name] ?? 0))") }
    }
    print(String(format: "%@ (%@, %@, fp32): largest error over its tolerance %.2f, in %@", c.file, c.training ? "train" : "eval",
      c.algorithm.rawValue, Double(share.0), share.1))
  }

  /// bf16 against the float64 fixture, tensor by tensor, with a tolerance derived from the same
  /// tensor's fp32 error. A tensor's error is its computation's amplification of rounding
  /// errors times the unit roundoff: fp32's error measures that amplification (these fixtures
  /// are 4 channels wide with 2 images, so some gradients are sums that nearly cancel, and
  /// training-mode BatchNorm divides by small deviations), and bf16's should be the same
  /// amplification times bfloat16's unit roundoff, 2^16 times fp32's. Allowed: 16 x 2^16 x the
  /// fp32 error (at least 4 x 2^-24): a single fp32 error is itself a noisy measure of the
  /// amplification, off by a factor of a few either way. The median ratio over the tensors must also lie within a
  /// factor 8 of 2^16: emulation that is off (ratio near 1) or that adds an error of its own
  /// (far above) both fail.
  func compareBF16(_ c: Case) throws {
    var fp32Case = c
    fp32Case.precision = .fp32
    let single = try run(fp32Case)
    let bf16 = try run(c)
    let ratio: Float = 65536
    var ratios: [Float] = []
    for (name, error) in bf16.sorted(by: { $0.key < $1.key }) {
      let reference = max(single[name] ?? 0, 4 * Float.ulpOfOne / 2)
      let tolerance = 16 * ratio * reference
      if error > tolerance { XCTFail("\(c.file) (bf16): \(name) relative error \(error) > \(tolerance) (fp32: \(single[name] ?? 0))") }
      if let s = single[name], s > 4 * Float.ulpOfOne / 2 { ratios.append(error / s) }
    }
    let median = ratios.sorted()[ratios.count / 2]
    print(String(format: "%@ (%@, %@): bf16 error / fp32 error, median over %d tensors: %.3g (2^16 = 65536)",
      c.file, c.training ? "train" : "eval", c.algorithm.rawValue, ratios.count, Double(median)))
    XCTAssertGreaterThan(median, ratio / 8, "bf16's errors should be about 2^16 times fp32's")
    XCTAssertLessThan(median, ratio * 8, "bf16's errors should be about 2^16 times fp32's")
  }

  func testResNet18EvalInBF16() throws {
    try compareBF16(Case(file: "resnet18-eval", depth: .resnet18, stem: .imagenet, training: false, precision: .bf16Emulated))
  }
  func testResNet50EvalInBF16() throws {
    try compareBF16(Case(file: "resnet50-eval", depth: .resnet50, stem: .imagenet, training: false, precision: .bf16Emulated))
  }
  func testResNet18TrainingInBF16() throws {
    try compareBF16(Case(file: "resnet18-train", depth: .resnet18, stem: .imagenet, training: true, precision: .bf16Emulated))
  }
  func testResNet18TrainingInBF16WithGEMM() throws {
    try compareBF16(Case(file: "resnet18-train", depth: .resnet18, stem: .imagenet, training: true, algorithm: .gemm, precision: .bf16Emulated))
  }
  func testResNet50TrainingInBF16() throws {
    try compareBF16(Case(file: "resnet50-train", depth: .resnet50, stem: .imagenet, training: true, precision: .bf16Emulated))
  }
  func testResNet50TrainingInBF16WithGEMM() throws {
    try compareBF16(Case(file: "resnet50-train", depth: .resnet50, stem: .imagenet, training: true, algorithm: .gemm, precision: .bf16Emulated))
  }

  func testResNet18Training() throws { try checkFP32(Case(file: "resnet18-train", depth: .resnet18, stem: .imagenet, training: true)) }
  func testResNet18Eval() throws { try checkFP32(Case(file: "resnet18-eval", depth: .resnet18, stem: .imagenet, training: false)) }
  func testResNet50Training() throws { try checkFP32(Case(file: "resnet50-train", depth: .resnet50, stem: .imagenet, training: true)) }
  func testResNet50Eval() throws { try checkFP32(Case(file: "resnet50-eval", depth: .resnet50, stem: .imagenet, training: false)) }
  func testResNet18SmallStemTraining() throws { try checkFP32(Case(file: "resnet18-small-train", depth: .resnet18, stem: .small, training: true)) }
  func testResNet18TrainingWithGEMM() throws {
    try checkFP32(Case(file: "resnet18-train", depth: .resnet18, stem: .imagenet, training: true, algorithm: .gemm))
  }
  func testResNet50TrainingWithGEMM() throws {
    try checkFP32(Case(file: "resnet50-train", depth: .resnet50, stem: .imagenet, training: true, algorithm: .gemm))
  }

  func testParameterNamesAndCountsMatchTorchvision() throws {
    let model = try ResNet(ResNetConfiguration(depth: .resnet50, classes: 40))
    let backbone = model.registry.parameters.filter { $0.group != .head }.reduce(0) { $0 + $1.count }
    XCTAssertEqual(backbone, 23_508_032)
    XCTAssertEqual(model.batchNorms.count, 53)
    XCTAssertEqual(model.batchNorms.reduce(0) { $0 + $1.channels }, 26_560)
    let shortcut = model.registry.parameters.filter { $0.group == .shortcut }.reduce(0) { $0 + $1.count }
    XCTAssertEqual(shortcut, 2_776_576)
    let affine = model.registry.parameters.filter { $0.kind == .normalization }.reduce(0) { $0 + $1.count }
    XCTAssertEqual(affine, 53_120)
    let head = model.registry.parameters.filter { $0.group == .head }.reduce(0) { $0 + $1.count }
    XCTAssertEqual(head, 81_960)
    XCTAssertNotNil(model.registry.entry(named: "layer2.0.downsample.0.weight"))
    XCTAssertNotNil(model.registry.entry(named: "layer4.2.bn3.running_var"))
    XCTAssertEqual(model.registry.entry(named: "conv1.weight")?.shape, [64, 3, 7, 7])
    let r18 = try ResNet(ResNetConfiguration(depth: .resnet18, classes: 1000))
    XCTAssertEqual(r18.registry.parameterCount, 11_689_512)
    let r34 = try ResNet(ResNetConfiguration(depth: .resnet34, classes: 1000))
    XCTAssertEqual(r34.registry.parameterCount, 21_797_672)
  }

  func testWidthThatRoundsToZeroIsAnError() {
    XCTAssertThrowsError(try ResNet(ResNetConfiguration(depth: .resnet18, width: 0.001))) { error in
      XCTAssertTrue("\(error)".contains("width"))
    }
  }
}
