// A convolution's backward taking its dy (the dx of the BatchNorm above it) a part at a time,
// against the BatchNorm's whole dx followed by the convolution's backward.
import NN
import Support
import Tensors
import TestSupport
import XCTest

final class GradientInPartsTests: XCTestCase {
  struct Case {
    var channels: Int, outputChannels: Int, size: Int, batch: Int
    var kernel = 1, stride = 1, padding = 0
    var relu = false, target = false, inputGradient = true, frozen = false
  }

  /// Counts the elements reported to an observer, per worker (workers report concurrently,
  /// each into its own slot).
  final class Tally {
    let slots = Parallel.workers
    let counts: UnsafeMutablePointer<Int>
    init() {
      counts = .allocate(capacity: slots)
      counts.initialize(repeating: 0, count: slots)
    }
    deinit { counts.deallocate() }
    var total: Int { (0..<slots).reduce(0) { $0 + counts[$1] } }
    var observer: ProductObserver {
      let counts = self.counts
      return { worker, _, _, rows, columns in counts[worker] += rows.count * columns.count }
    }
  }

  /// dx and every gradient of conv + BatchNorm's backward, in parts or whole, and the elements
  /// of dx reported to an observer.
  func run(_ s: Case, inParts: Bool, line: UInt = #line) -> (dx: [Float], gradients: [Float], reported: Int) {
    let registry = ParameterRegistry()
    let conv = Conv2d(
      registry, name: "c", inputChannels: s.channels, outputChannels: s.outputChannels,
      kernelSize: s.kernel, stride: s.stride, padding: s.padding)
    let bn = BatchNorm2d(registry, name: "bn", channels: s.outputChannels, appliesReLU: s.relu)
    registry.allocate()
    var rng = SplitMix64(seed: 5)
    conv.initialize(&rng)
    bn.initialize()
    for ch in 0..<s.outputChannels {
      bn.weight.value[ch] = 1 + 0.01 * Float(ch % 13)
      bn.bias.value[ch] = 0.02 * Float(ch % 7) - 0.05
    }
    conv.computesInputGradient = s.inputGradient
    conv.weight.requiresGradient = !s.frozen
    let x = randomTensor([s.batch, s.size, s.size, s.channels], seed: 7)
    let input = FeatureMap(data: x.data, batch: s.batch, height: s.size, width: s.size, channels: s.channels)
    let sums = bn.inputSums()
    let y = bn.forward(conv.forward(input, observer: sums?.observer), sums: sums)
    let dy = randomTensor([y.count], seed: 11)
    let target = randomTensor([x.count], seed: 13)
    registry.zeroGradients()
    let tally = Tally()
    let into = s.target ? target.data : nil
    let dx: FeatureMap?
    if inParts {
      XCTAssertTrue(conv.consumesGradientInParts, "\(s)", line: line)
      let prepared = bn.prepareBackward(dy.data)
      XCTAssertNotNil(prepared, "the layer below takes dx")
      dx = prepared.flatMap { conv.backward(.parts($0.inputGradient), addingTo: into, observer: tally.observer) }
    } else {
      let d = bn.backward(dy.data)!
      dx = conv.backward(.whole(d.data), addingTo: into, observer: tally.observer)
    }
    XCTAssertEqual(dx == nil, !s.inputGradient, line: line)
    if s.target, let dx { XCTAssertEqual(dx.data, target.data, "dx is the target", line: line) }
    let gradients = Array(UnsafeBufferPointer(start: registry.gradients.data, count: registry.gradients.count))
    return (dx.map { Array(UnsafeBufferPointer(start: $0.data, count: $0.count)) } ?? [], gradients, tally.total)
  }

  func testBackwardInPartsMatchesTheWholeGradient() {
    let cases = [
      // 3072 rows: two workers of 1536, each in parts of 1024 and 512 rows; dx added to a target.
      Case(channels: 32, outputChannels: 256, size: 16, batch: 12, target: true),
      // Wider input than output, with the BatchNorm's ReLU.
      Case(channels: 256, outputChannels: 64, size: 16, batch: 10, relu: true),
      // A frozen weight: dx only.
      Case(channels: 32, outputChannels: 256, size: 16, batch: 12, frozen: true),
      // The stem: no dx, the input lowered part by part for dW.
      Case(channels: 3, outputChannels: 16, size: 64, batch: 5, kernel: 7, stride: 2, padding: 3, relu: true, inputGradient: false),
    ]
    let workers = Parallel.workers
    defer { Parallel.workers = workers }
    for (s, threads) in cases.map({ ($0, workers) }) + [(cases[0], 1)] {
      Parallel.workers = threads
      let whole = run(s, inParts: false)
      let parts = run(s, inParts: true)
      // The same products summed in parts (dW over up to 3072 rows, in parts of 1024 and 512)
      // and then added: fp32 reordering, about sqrt(3072) x 2^-24 ~ 3e-6 of the terms' size.
      // The gradients compared are of order 1 (dy ~ N(0, 1)), not 0.
      XCTAssertLessThan(relativeError(parts.dx, whole.dx), 1e-5, "dx, \(s), \(threads) workers")
      XCTAssertLessThan(relativeError(parts.gradients, whole.gradients), 1e-5, "gradients, \(s)")
      XCTAssertGreaterThan(whole.gradients.map { abs($0) }.max()!, 0.1, "\(s)")
      if s.inputGradient {
        XCTAssertEqual(parts.reported, whole.dx.count, "every element of dx reported once, \(s)")
      }
    }
  }

  func testSmallMapsTakeTheWholeGradient() {
    let registry = ParameterRegistry()
    let conv = Conv2d(registry, name: "c", inputChannels: 64, outputChannels: 256, kernelSize: 1)
    registry.allocate()
    let x = randomTensor([2, 8, 8, 64], seed: 3)
    _ = conv.forward(FeatureMap(data: x.data, batch: 2, height: 8, width: 8, channels: 64))
    XCTAssertFalse(conv.consumesGradientInParts, "128 rows against 256 channels: a short reduction")
    let big = randomTensor([16, 16, 16, 64], seed: 3)
    _ = conv.forward(FeatureMap(data: big.data, batch: 16, height: 16, width: 16, channels: 64))
    XCTAssertTrue(conv.consumesGradientInParts, "4096 rows")
  }
}

final class SharedBufferTests: XCTestCase {
  /// A model's layers share one set of per-call buffers; two models have their own (so models
  /// on different threads never share one), and running them interleaved gives each the
  /// gradients it gets alone.
  func testModelsInterleavedMatchModelsAlone() throws {
    func model() throws -> ResNet {
      try ResNet(ResNetConfiguration(depth: .resnet50, stem: .small, width: 0.25, classes: 4), seed: 3)
    }
    let inputs = [randomTensor([4, 16, 16, 3], seed: 41), randomTensor([4, 16, 16, 3], seed: 42)]
    let dy = randomTensor([4, 4], seed: 43)
    func gradients(_ m: ResNet) -> [Float] {
      Array(UnsafeBufferPointer(start: m.registry.gradients.data, count: m.registry.gradients.count))
    }
    func map(_ t: Tensor) -> FeatureMap { FeatureMap(data: t.data, batch: 4, height: 16, width: 16, channels: 3) }
    var alone: [[Float]] = []
    for input in inputs {
      let m = try model()
      _ = m.forward(map(input))
      m.backward(dy.data)
      alone.append(gradients(m))
    }
    let (a, b) = (try model(), try model())
    XCTAssertTrue(a.convolutions.allSatisfy { $0.scratch === a.conv1.scratch })
    XCTAssertFalse(a.conv1.scratch === b.conv1.scratch)
    _ = a.forward(map(inputs[0]))
    _ = b.forward(map(inputs[1]))
    a.backward(dy.data)
    b.backward(dy.data)
    XCTAssertEqual(gradients(a), alone[0])
    XCTAssertEqual(gradients(b), alone[1])
    XCTAssertNotEqual(alone[0], alone[1])
  }
}
