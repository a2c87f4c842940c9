// BatchNorm statistics gathered while the convolution makes its output (`inputSums`)
// against the BatchNorm's own pass over the finished output.
import NN
import Support
import Tensors
import XCTest

final class FusedStatisticsTests: XCTestCase {
  struct Case {
    var channels: Int, outputChannels: Int, size: Int, batch: Int, kernel = 1, stride = 1, padding = 0
  }

  /// Output and running statistics of conv + BatchNorm, with and without the observer.
  func run(_ s: Case, observed: Bool, line: UInt = #line) -> (y: [Float], state: [Float]) {
    let registry = ParameterRegistry()
    let conv = Conv2d(
      registry, name: "c", inputChannels: s.channels, outputChannels: s.outputChannels,
      kernelSize: s.kernel, stride: s.stride, padding: s.padding)
    let bn = BatchNorm2d(registry, name: "bn", channels: s.outputChannels, appliesReLU: true)
    registry.allocate()
    var rng = SplitMix64(seed: 17)
    conv.initialize(&rng)
    bn.initialize()
    let x = randomTensor([s.batch, s.size, s.size, s.channels], seed: 19)
    // An offset per input channel, so that the means are far from zero.
    for i in 0..<x.count { x.data[i] += Float(i % s.channels) * 0.05 }
    let input = FeatureMap(data: x.data, batch: s.batch, height: s.size, width: s.size, channels: s.channels)
    let sums = observed ? bn.inputSums() : nil
    let y = bn.forward(conv.forward(input, observer: sums?.observer), sums: sums)
    XCTAssertEqual(bn.statisticsWereObserved, observed, "\(s)", line: line)
    return (Array(UnsafeBufferPointer(start: y.data, count: y.count)),
      Array(UnsafeBufferPointer(start: registry.state.data, count: registry.state.count)))
  }

  func testObservedStatisticsMatchAPassOverTheOutput() {
    let cases = [
      Case(channels: 16, outputChannels: 128, size: 32, batch: 8),  // row split, parts of 2048 rows
      Case(channels: 256, outputChannels: 256, size: 8, batch: 1),  // fewer rows than columns: column split
      Case(channels: 24, outputChannels: 40, size: 8, batch: 2, kernel: 3, padding: 1),  // Winograd, written out
      Case(channels: 3, outputChannels: 5, size: 6, batch: 2, kernel: 3, padding: 1),  // Winograd, general path
      Case(channels: 8, outputChannels: 32, size: 9, batch: 3, kernel: 3, stride: 2, padding: 1),  // im2col
      Case(channels: 4, outputChannels: 5, size: 3, batch: 1),  // one small serial product
    ]
    for s in cases {
      let plain = run(s, observed: false)
      let fused = run(s, observed: true)
      var worst: Float = 0
      for (a, b) in zip(fused.state, plain.state) { worst = max(worst, abs(a - b) / max(abs(b), 1)) }
      // The observed sums add the same fp32 values grouped by GEMM part or tile instead of by
      // the BatchNorm's own pass: over up to 8192 rows, a reordering moves a sum by about
      // sqrt(8192) x 2^-24 ~ 5e-6 of its terms' size, and less after averaging. The outputs
      // (about unit deviation) move by that over the deviation.
      XCTAssertLessThan(worst, 1e-5, "running statistics, \(s)")
      var worstY: Float = 0
      for (a, b) in zip(fused.y, plain.y) { worstY = max(worstY, abs(a - b)) }
      XCTAssertLessThan(worstY, 1e-4, "output, \(s)")
      // Not vacuous: a running mean moves by 0.1 of a batch mean of order 1.
      XCTAssertGreaterThan(plain.state.map { abs($0) }.max()!, 0.05, "the running means should have moved")
    }
  }

  /// Sums that saw only part of the input (or none of it), or that were started before the
  /// last forward, are not trusted: the BatchNorm makes its own pass.
  func testStatisticsOfAnIncompleteObservationAreNotUsed() {
    let registry = ParameterRegistry()
    let bn = BatchNorm2d(registry, name: "bn", channels: 8)
    registry.allocate()
    bn.initialize()
    let x = randomTensor([2, 4, 4, 8], seed: 23)
    let map = FeatureMap(data: x.data, batch: 2, height: 4, width: 4, channels: 8)
    let reference = Array(UnsafeBufferPointer(start: bn.forward(map).data, count: x.count))
    let sums = bn.inputSums()!
    sums.observer(0, x.data, 8, 0..<5, 0..<8)  // 5 of the 32 rows
    let y = bn.forward(map, sums: sums)
    XCTAssertFalse(bn.statisticsWereObserved)
    XCTAssertEqual(Array(UnsafeBufferPointer(start: y.data, count: x.count)), reference)
    let none = bn.inputSums()!
    XCTAssertEqual(Array(UnsafeBufferPointer(start: bn.forward(map, sums: none).data, count: x.count)), reference)
    XCTAssertFalse(bn.statisticsWereObserved)
    // Complete sums are used, once: the same value passed to a later forward is stale.
    let complete = bn.inputSums()!
    complete.observer(0, x.data, 8, 0..<32, 0..<8)
    _ = bn.forward(map, sums: complete)
    XCTAssertTrue(bn.statisticsWereObserved)
    _ = bn.forward(map, sums: complete)
    XCTAssertFalse(bn.statisticsWereObserved, "sums from before the last forward are stale")
  }
}

final class ObservedGradientSumsTests: XCTestCase {
  /// Backward of a ResNet-50 with and without the observed gradient sums: the BatchNorms below
  /// a 1x1 convolution, each block's first BatchNorm below the next block (and, beside a
  /// projection shortcut, the main path's last), and the stem's BatchNorm below the first block
  /// or the max-pool take their sums from what made their dy; every gradient agrees to rounding.
  func testObservedGradientSumsMatchThePass() throws {
    for stem in [Stem.small, .imagenet] {
      func gradients(observed: Bool) throws -> (values: [Float], model: ResNet) {
        let model = try ResNet(ResNetConfiguration(depth: .resnet50, stem: stem, width: 0.25, classes: 4), seed: 3)
        let size = stem == .small ? 8 : 32
        let x = randomTensor([4, size, size, 3], seed: 41)
        let dy = randomTensor([4, 4], seed: 43)
        model.registry.zeroGradients()
        _ = model.forward(FeatureMap(data: x.data, batch: 4, height: size, width: size, channels: 3))
        if !observed {
          // Backward block by block without handing observers down.
          var g = UnsafePointer(model.fc!.backward(dy.data)!)
          g = UnsafePointer(model.pool.backward(g)!.data)
          for block in model.blocks.reversed() { g = UnsafePointer(block.backward(g)!.data) }
          if let pool = model.maxPool { g = UnsafePointer(pool.backward(g)!.data) }
          let d = model.bn1.backward(g)!
          _ = model.conv1.backward(.whole(d.data))
        } else {
          model.backward(dy.data)
        }
        return (Array(UnsafeBufferPointer(start: model.registry.gradients.data, count: model.registry.gradients.count)), model)
      }
      let plain = try gradients(observed: false)
      let fused = try gradients(observed: true)
      let first = fused.model.layers[0][0]
      let second = fused.model.layers[0][1]
      XCTAssertEqual(first.kind, .bottleneck)
      XCTAssertTrue(first.main[1].bn.gradientSumsWereObserved, "bn2 sits below a 1x1 convolution")
      XCTAssertTrue(first.downsample!.batchNorm.gradientSumsWereObserved, "the block's first BatchNorm below the next block")
      XCTAssertTrue(first.main[2].bn.gradientSumsWereObserved, "beside the projection shortcut's BatchNorm")
      XCTAssertTrue(second.main[2].bn.gradientSumsWereObserved)
      XCTAssertTrue(first.main[0].bn.gradientSumsWereObserved, "below a Winograd convolution: observed after the fact")
      XCTAssertTrue(fused.model.bn1.gradientSumsWereObserved, "the stem's BatchNorm, below \(stem)")
      // Without sums from the block above, a block's first BatchNorm makes its own pass.
      XCTAssertFalse(plain.model.layers[0][1].main[2].bn.gradientSumsWereObserved)
      XCTAssertFalse(plain.model.layers[0][0].downsample!.batchNorm.gradientSumsWereObserved)
      XCTAssertFalse(plain.model.layers[0][0].main[2].bn.gradientSumsWereObserved)
      XCTAssertFalse(plain.model.bn1.gradientSumsWereObserved)
      let scale = plain.values.map { abs($0) }.max()!
      var worst: Float = 0
      for (a, b) in zip(fused.values, plain.values) { worst = max(worst, abs(a - b)) }
      // The same sums grouped otherwise: fp32 reordering, a few 2^-24 x sqrt(rows) of the
      // values' scale (they come out equal here); and the values are not all zero.
      XCTAssertLessThan(worst / scale, 1e-5, "\(stem)")
      XCTAssertGreaterThan(scale, 0)
    }
  }
}
