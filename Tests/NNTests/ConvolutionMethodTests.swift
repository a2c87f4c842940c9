// The fast convolution methods (Winograd, one GEMM per kernel tap) against im2col + GEMM at
// realistic channel counts: forward, dx and dW.
import NN
import Support
import Tensors
import TestSupport
import XCTest

final class ConvolutionMethodTests: XCTestCase {
  struct Shape {
    var channels: Int, outputChannels: Int, height: Int, width: Int
    var kernel = 3, stride = 1, padding = 1, batch = 2
  }

  /// Relative differences of y, dx and dW between the layer's default (fast) method and the
  /// plain definition (`Reference.convolution`), and the method the layer chose; `gemm` the same
  /// for the layer's GEMM path.
  func compare(_ s: Shape) -> (y: Float, dx: Float, dw: Float, method: String, gemm: Float) {
    let registry = ParameterRegistry()
    let conv = Conv2d(
      registry, name: "c", inputChannels: s.channels, outputChannels: s.outputChannels,
      kernelSize: s.kernel, stride: s.stride, padding: s.padding)
    registry.allocate()
    var rng = SplitMix64(seed: UInt64(s.channels * 1000 + s.height))
    conv.initialize(&rng)
    let x = randomTensor([s.batch, s.height, s.width, s.channels], seed: 3)
    let input = FeatureMap(data: x.data, batch: s.batch, height: s.height, width: s.width, channels: s.channels)
    let (oh, ow) = conv.outputSize(height: s.height, width: s.width)
    let dy = randomTensor([s.batch, oh, ow, s.outputChannels], seed: 5)
    // Some gradient already accumulated: every method must add to it, not overwrite it.
    let earlier = randomTensor([conv.weight.count], seed: 7)

    func pass(_ algorithm: ConvolutionAlgorithm) -> (y: [Float], dx: [Float], dw: [Float], method: String) {
      conv.algorithm = algorithm
      conv.weight.gradient.update(from: earlier.data, count: conv.weight.count)
      let y = conv.forward(input)
      let yValues = Array(UnsafeBufferPointer(start: y.data, count: y.count))
      let dx = conv.backward(.whole(dy.data))!
      return (yValues, Array(UnsafeBufferPointer(start: dx.data, count: dx.count)),
        Array(UnsafeBufferPointer(start: conv.weight.gradient, count: conv.weight.count)), conv.method?.name ?? "?")
    }
    let g = ConvGeometry(batch: s.batch, height: s.height, width: s.width, channels: s.channels, kernel: s.kernel, stride: s.stride, padding: s.padding)
    let xs = Array(UnsafeBufferPointer(start: x.data, count: x.count))
    let dys = Array(UnsafeBufferPointer(start: dy.data, count: dy.count))
    let w = Array(UnsafeBufferPointer(start: conv.weight.value, count: conv.weight.count))
    let y = Reference.convolution(xs, g, weight: w, outputChannels: s.outputChannels)
    var (dx, dw) = Reference.convolutionBackward(dys, xs, g, weight: w, outputChannels: s.outputChannels)
    for i in dw.indices { dw[i] += earlier.data[i] }
    let fast = pass(.winograd)
    let gemm = pass(.gemm)
    return (relativeError(fast.y, y), relativeError(fast.dx, dx), relativeError(fast.dw, dw), fast.method,
      max(relativeError(gemm.y, y), relativeError(gemm.dx, dx), relativeError(gemm.dw, dw)))
  }

  func check(_ shapes: [Shape], expecting method: String) {
    var worst: Float = 0
    for s in shapes {
      let r = compare(s)
      let name = "\(s.kernel)x\(s.kernel)/\(s.stride) pad \(s.padding), \(s.height)x\(s.width), \(s.channels)->\(s.outputChannels)"
      print(String(format: "%@ vs the definition, %@: y %.1e, dx %.1e, dW %.1e (gemm %.1e)", r.method, name, r.y, r.dx, r.dw, r.gemm))
      XCTAssertTrue(r.method.hasPrefix(method), "\(name) used \(r.method), expected \(method)")
      worst = max(worst, r.y, r.dx, r.dw)
      // Both sides are fp32. A sum of K products rounded step by step drifts by about
      // 2^-24 x sqrt(K) / 10 of the largest output (steps of ~2^-24 of partial sums ~sqrt(K) x
      // a term), some 5 times that at the largest of many outputs: ~2e-6 at K = 9 x 512, the
      // longest here. Winograd F(4x4)'s transforms round values up to ~10 times larger.
      XCTAssertLessThan(r.y, 1e-4, "forward \(name)")
      XCTAssertLessThan(r.dx, 1e-4, "dx \(name)")
      XCTAssertLessThan(r.dw, 1e-4, "dW \(name)")
      XCTAssertLessThan(r.gemm, 1e-4, "gemm \(name)")
    }
    XCTAssertGreaterThan(worst, 0, "the fast path and the definition should not be the same computation")
  }

  func testWinogradMatchesTheDefinition() {
    check([
      Shape(channels: 64, outputChannels: 64, height: 16, width: 16),
      Shape(channels: 128, outputChannels: 128, height: 8, width: 8),
      Shape(channels: 256, outputChannels: 256, height: 4, width: 4),
      Shape(channels: 3, outputChannels: 5, height: 7, width: 5),
      Shape(channels: 16, outputChannels: 32, height: 9, width: 11),
      Shape(channels: 8, outputChannels: 8, height: 1, width: 9),
      Shape(channels: 5, outputChannels: 6, height: 3, width: 4),  // F(2x2), channels not a multiple of 8
    ], expecting: "winograd")
  }

  /// Outputs of at most 4 pixels: one GEMM per kernel tap, with and without stride and
  /// padding, down to taps that meet no pixel at all.
  func testTapsMatchTheDefinition() {
    check([
      Shape(channels: 512, outputChannels: 512, height: 2, width: 2),
      Shape(channels: 8, outputChannels: 8, height: 1, width: 1),
      Shape(channels: 64, outputChannels: 96, height: 4, width: 4, stride: 2),
      Shape(channels: 24, outputChannels: 16, height: 3, width: 3, stride: 2),
      Shape(channels: 5, outputChannels: 7, height: 1, width: 3, batch: 3),
      Shape(channels: 6, outputChannels: 10, height: 4, width: 3, kernel: 3, stride: 2, padding: 0),
      Shape(channels: 3, outputChannels: 16, height: 8, width: 8, kernel: 7, stride: 4, padding: 3),
      Shape(channels: 12, outputChannels: 4, height: 5, width: 5, kernel: 5, stride: 3, padding: 0),
    ], expecting: "taps")
  }

  /// F(2x2) on 4x4 maps in small batches, F(4x4) from `Conv2d.f4MinimumTiles` tiles on.
  func testWinogradTileFollowsTheBatch() {
    check([Shape(channels: 32, outputChannels: 32, height: 4, width: 4, batch: 2)], expecting: "winograd F(2x2)")
    check([Shape(channels: 32, outputChannels: 32, height: 4, width: 4, batch: Conv2d.f4MinimumTiles)], expecting: "winograd F(4x4)")
    check([Shape(channels: 16, outputChannels: 16, height: 8, width: 8, batch: 1)], expecting: "winograd F(4x4)")
  }

  /// `backward(_:addingTo:)` adds the input gradient to what the target holds, for every
  /// method: GEMM with and without im2col, Winograd, taps.
  func testInputGradientAddsToATarget() {
    let shapes = [
      Shape(channels: 16, outputChannels: 24, height: 5, width: 5, kernel: 1, padding: 0),
      Shape(channels: 16, outputChannels: 24, height: 6, width: 6, kernel: 1, stride: 2, padding: 0),
      Shape(channels: 16, outputChannels: 24, height: 8, width: 8, stride: 2),
      Shape(channels: 16, outputChannels: 24, height: 8, width: 8),
      Shape(channels: 16, outputChannels: 24, height: 2, width: 2),
    ]
    for s in shapes {
      let registry = ParameterRegistry()
      let conv = Conv2d(
        registry, name: "c", inputChannels: s.channels, outputChannels: s.outputChannels,
        kernelSize: s.kernel, stride: s.stride, padding: s.padding)
      registry.allocate()
      var rng = SplitMix64(seed: 11)
      conv.initialize(&rng)
      let x = randomTensor([s.batch, s.height, s.width, s.channels], seed: 3)
      let input = FeatureMap(data: x.data, batch: s.batch, height: s.height, width: s.width, channels: s.channels)
      let (oh, ow) = conv.outputSize(height: s.height, width: s.width)
      let dy = randomTensor([s.batch, oh, ow, s.outputChannels], seed: 5)
      _ = conv.forward(input)
      let alone = conv.backward(.whole(dy.data))!
      let expected = Array(UnsafeBufferPointer(start: alone.data, count: alone.count))
      let target = randomTensor([x.count], seed: 9)
      let before = Array(UnsafeBufferPointer(start: target.data, count: target.count))
      let sum = conv.backward(.whole(dy.data), addingTo: target.data)!
      XCTAssertEqual(sum.data, target.data, "the target is the gradient returned")
      var worst: Float = 0
      for i in 0..<x.count { worst = max(worst, abs(target.data[i] - (before[i] + expected[i]))) }
      // Added after the sum or inside the GEMM: a rounding or two of sums below 16 (ulp <= 9.5e-7),
      // of an input gradient of order 1 (not 0).
      XCTAssertLessThan(worst, 1e-5, "\(s)")
      XCTAssertGreaterThan(Elementwise.maxAbs(alone.data, count: alone.count), 0.1)
    }
  }

  /// A stem-like layer with no input gradient lowers its input part by part (in forward and
  /// again for dW); the same layer asked for dx lowers it whole. Both give the same y and dW.
  func testStreamedLoweringMatchesTheWholeLowering() {
    let registry = ParameterRegistry()
    let conv = Conv2d(registry, name: "c", inputChannels: 3, outputChannels: 16, kernelSize: 7, stride: 2, padding: 3)
    registry.allocate()
    var rng = SplitMix64(seed: 29)
    conv.initialize(&rng)
    let x = randomTensor([5, 64, 64, 3], seed: 31)
    let input = FeatureMap(data: x.data, batch: 5, height: 64, width: 64, channels: 3)
    let dy = randomTensor([5, 32, 32, 16], seed: 37)
    func pass(streamed: Bool) -> (y: [Float], dw: [Float]) {
      conv.computesInputGradient = !streamed
      registry.zeroGradients()
      let y = conv.forward(input)
      XCTAssertEqual(conv.streamedLowering, streamed)
      let values = Array(UnsafeBufferPointer(start: y.data, count: y.count))
      _ = conv.backward(.whole(dy.data))
      return (values, Array(UnsafeBufferPointer(start: conv.weight.gradient, count: conv.weight.count)))
    }
    let whole = pass(streamed: false)
    let parts = pass(streamed: true)
    // The same K = 147 products per output, summed in blocks of other sizes: two fp32 sums of
    // the same products, in any orders, are within 2 K 2^-24 sum |x w| of each other.
    let g = ConvGeometry(batch: 5, height: 64, width: 64, channels: 3, kernel: 7, stride: 2, padding: 3)
    let magnitudes = Reference.convolution(
      Array(UnsafeBufferPointer(start: x.data, count: x.count)).map(abs), g,
      weight: Array(UnsafeBufferPointer(start: conv.weight.value, count: conv.weight.count)).map(abs), outputChannels: 16)
    let allowed = 2 * Float(g.columns) * Float.ulpOfOne / 2
    let outside = zip(zip(parts.y, whole.y), magnitudes).filter { abs($0.0 - $0.1) > allowed * $1 }.count
    XCTAssertEqual(outside, 0, "outputs further apart than 2 K 2^-24 sum |x w|")
    // dW sums 5120 rows, in other blocks too: about sqrt(5120) x 2^-24 ~ 4e-6 of its terms'
    // size, and dW is large (not 0).
    XCTAssertLessThan(relativeError(parts.dw, whole.dw, count: whole.dw.count), 1e-5)
    XCTAssertGreaterThan(Elementwise.maxAbs(whole.dw, count: whole.dw.count), 1)
  }

  func testTapPlanCountsOnlyPairsInsideTheImage() {
    // 3x3, padding 1 on a 2x2 map: centre 4 pairs, 4 edges 2 each, 4 corners 1 each.
    let plan = TapPlan(ConvGeometry(batch: 1, height: 2, width: 2, channels: 1, kernel: 3, stride: 1, padding: 1))
    XCTAssertEqual(plan.taps.count, 9)
    XCTAssertEqual(plan.pairCount, 16)
    XCTAssertEqual(plan.taps.first?.index, 4, "the centre covers the output and goes first")
    XCTAssertTrue(plan.taps.first?.isIdentity ?? false)
    XCTAssertEqual(plan.taps.filter(\.coversOutput).count, 1)
    // 3x3 on a 1x1 map: only the centre meets the image.
    let single = TapPlan(ConvGeometry(batch: 4, height: 1, width: 1, channels: 1, kernel: 3, stride: 1, padding: 1))
    XCTAssertEqual(single.taps.map(\.index), [4])
    XCTAssertEqual(single.maximumRows, 4)
  }
}
