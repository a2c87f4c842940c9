// Finite-difference checks of every layer's backward on tiny shapes, and forward against
// direct (Double) definitions.
import NN
import Support
import Tensors
import XCTest

/// L = sum(y * r) for a fixed random r, so dL/dy = r.
struct Probe {
  let r: [Float]

  init(count: Int, seed: UInt64) {
    var rng = SplitMix64(seed: seed)
    r = (0..<count).map { _ in rng.normal() }
  }

  func loss(_ y: UnsafePointer<Float>) -> Double {
    var s = 0.0
    for i in 0..<r.count { s += Double(y[i]) * Double(r[i]) }
    return s
  }
}

func randomTensor(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
  let t = Tensor(shape: shape)
  var rng = SplitMix64(seed: seed)
  for i in 0..<t.count { t.data[i] = rng.normal() * scale }
  return t
}

/// Compares `analytic` with central differences of `loss` in each entry of `values`;
/// returns max |numeric - analytic| / (max |analytic| + 1e-6).
func finiteDifferenceError(
  _ values: UnsafeMutablePointer<Float>, count: Int, analytic: [Float], epsilon: Float = 1e-2,
  loss: () -> Double
) -> Float {
  var worst: Float = 0
  var scale: Float = 0
  for i in 0..<count {
    let saved = values[i]
    values[i] = saved + epsilon
    let plus = loss()
    values[i] = saved - epsilon
    let minus = loss()
    values[i] = saved
    let numeric = Float((plus - minus) / Double(2 * epsilon))
    worst = max(worst, abs(numeric - analytic[i]))
    scale = max(scale, abs(analytic[i]))
  }
  return worst / (scale + 1e-6)
}

final class GradientCheckTests: XCTestCase {
  func checkConvolution(kernel: Int, stride: Int, padding: Int, line: UInt = #line) {
    let (n, h, w, cin, cout) = (2, 6, 5, 3, 4)
    let registry = ParameterRegistry()
    let conv = Conv2d(registry, name: "c", inputChannels: cin, outputChannels: cout, kernelSize: kernel, stride: stride, padding: padding)
    registry.allocate()
    var rng = SplitMix64(seed: 7)
    conv.initialize(&rng)
    let x = randomTensor([n, h, w, cin], seed: 3)
    let input = FeatureMap(data: x.data, batch: n, height: h, width: w, channels: cin)
    let y = conv.forward(input)

    // Forward against the direct definition, in Double; weights are OHWI.
    var worstForward = 0.0
    var largest = 0.0
    for b in 0..<n { for oy in 0..<y.height { for ox in 0..<y.width { for o in 0..<cout {
      var s = 0.0
      for ky in 0..<kernel { for kx in 0..<kernel {
        let iy = oy * stride - padding + ky
        let ix = ox * stride - padding + kx
        if iy < 0 || iy >= h || ix < 0 || ix >= w { continue }
        for c in 0..<cin {
          s += Double(x.data[((b * h + iy) * w + ix) * cin + c]) * Double(conv.weight.value[((o * kernel + ky) * kernel + kx) * cin + c])
        }
      } }
      worstForward = max(worstForward, abs(s - Double(y.data[((b * y.height + oy) * y.width + ox) * cout + o])))
      largest = max(largest, abs(s))
    } } } }
    // Relative to the largest output. The direct methods (GEMM, taps) sum K <= 147 products in
    // some order, within K * 2^-24 * sum |x w| of the exact sum: at most 2.5e-5 of the largest
    // output on these shapes. Winograd F(4x4) (3x3 stride 1 here) rounds in its transforms
    // instead: measured over 100 seeds of x and W, at most 5.3e-6 (88 x 2^-24).
    XCTAssertLessThan(worstForward / largest, 1e-4, "forward k\(kernel) s\(stride) p\(padding)", line: line)

    let probe = Probe(count: y.count, seed: 11)
    registry.zeroGradients()
    let dx = probe.r.withUnsafeBufferPointer { conv.backward(.whole($0.baseAddress!)) }!
    let analyticX = Array(UnsafeBufferPointer(start: dx.data, count: x.count))
    let analyticW = Array(UnsafeBufferPointer(start: conv.weight.gradient, count: conv.weight.count))
    let loss = { probe.loss(conv.forward(input).data) }
    // The loss is linear in x and in W, so central differences have no truncation error: what
    // is left is y's fp32 rounding (about 2^-24 * sum |x w| per output) over 2 * 0.01, ~1e-4.
    XCTAssertLessThan(finiteDifferenceError(x.data, count: x.count, analytic: analyticX, loss: loss), 1e-3, "dx k\(kernel) s\(stride)", line: line)
    XCTAssertLessThan(finiteDifferenceError(conv.weight.value, count: conv.weight.count, analytic: analyticW, loss: loss), 1e-3, "dW k\(kernel) s\(stride)", line: line)
  }

  func testConvolutions() {
    checkConvolution(kernel: 3, stride: 1, padding: 1)
    checkConvolution(kernel: 3, stride: 2, padding: 1)
    checkConvolution(kernel: 1, stride: 1, padding: 0)
    checkConvolution(kernel: 1, stride: 2, padding: 0)
    checkConvolution(kernel: 7, stride: 2, padding: 3)
    checkConvolution(kernel: 5, stride: 1, padding: 0)
  }

  func checkBatchNorm(training: Bool, relu: Bool, line: UInt = #line) {
    let (n, h, w, c) = (3, 4, 3, 5)
    let registry = ParameterRegistry()
    let bn = BatchNorm2d(registry, name: "bn", channels: c, appliesReLU: relu)
    registry.allocate()
    bn.initialize()
    var rng = SplitMix64(seed: 5)
    for i in 0..<c {
      bn.weight.value[i] = 1 + 0.3 * rng.normal()
      bn.bias.value[i] = 0.3 * rng.normal()
      bn.runningMean.value[i] = 0.2 * rng.normal()
      bn.runningVariance.value[i] = 1 + 0.5 * rng.uniform()
    }
    bn.training = training
    let x = randomTensor([n, h, w, c], seed: 9, scale: 2)
    for i in 0..<x.count { x.data[i] += Float(i % c) }  // a different mean per channel
    let input = FeatureMap(data: x.data, batch: n, height: h, width: w, channels: c)
    let y = bn.forward(input)

    // Forward against the definition, in Double.
    var worstForward = 0.0
    for ch in 0..<c {
      var mean = 0.0
      var variance = 0.0
      if training {
        for p in 0..<(n * h * w) { mean += Double(x.data[p * c + ch]) }
        mean /= Double(n * h * w)
        for p in 0..<(n * h * w) { variance += pow(Double(x.data[p * c + ch]) - mean, 2) }
        variance /= Double(n * h * w)
      } else {
        mean = Double(bn.runningMean.value[ch])
        variance = Double(bn.runningVariance.value[ch])
      }
      for p in 0..<(n * h * w) {
        var expected = (Double(x.data[p * c + ch]) - mean) / (variance + 1e-5).squareRoot()
        expected = expected * Double(bn.weight.value[ch]) + Double(bn.bias.value[ch])
        if relu { expected = max(expected, 0) }
        worstForward = max(worstForward, abs(expected - Double(y.data[p * c + ch])))
      }
    }
    // fp32 statistics over 36 values and a few elementwise steps on outputs below ~5: a few
    // 2^-24 of those, about 1e-6.
    XCTAssertLessThan(worstForward, 1e-5, "forward training=\(training) relu=\(relu)", line: line)

    let probe = Probe(count: y.count, seed: 13)
    registry.zeroGradients()
    let dx = probe.r.withUnsafeBufferPointer { bn.backward($0.baseAddress!) }!
    let analyticX = Array(UnsafeBufferPointer(start: dx.data, count: x.count))
    let analyticGamma = Array(UnsafeBufferPointer(start: bn.weight.gradient, count: c))
    let analyticBeta = Array(UnsafeBufferPointer(start: bn.bias.gradient, count: c))
    let loss = { probe.loss(bn.forward(input).data) }
    let eps: Float = 1e-3
    // Float rounding of the forward pass puts about 1e-3 of noise in a central difference of
    // one input at a step of 1e-3; at 3e-3 it is a third of that, and the truncation error is
    // still far below the tolerance. (gamma and beta move a whole channel: there a larger step
    // crosses the ReLU's kink.)
    XCTAssertLessThan(finiteDifferenceError(x.data, count: x.count, analytic: analyticX, epsilon: 3 * eps, loss: loss), 2e-3, "dx", line: line)
    XCTAssertLessThan(finiteDifferenceError(bn.weight.value, count: c, analytic: analyticGamma, epsilon: eps, loss: loss), 2e-3, "dgamma", line: line)
    XCTAssertLessThan(finiteDifferenceError(bn.bias.value, count: c, analytic: analyticBeta, epsilon: eps, loss: loss), 2e-3, "dbeta", line: line)
  }

  func testBatchNorm() {
    checkBatchNorm(training: true, relu: false)
    checkBatchNorm(training: true, relu: true)
    checkBatchNorm(training: false, relu: false)
    checkBatchNorm(training: false, relu: true)
  }

  func testBatchNormRunningStatisticsFollowPyTorch() {
    let registry = ParameterRegistry()
    let bn = BatchNorm2d(registry, name: "bn", channels: 1)
    registry.allocate()
    bn.initialize()
    let x = Tensor(shape: [1, 2, 2, 1], values: [1, 2, 3, 6])
    _ = bn.forward(FeatureMap(data: x.data, batch: 1, height: 2, width: 2, channels: 1))
    // mean 3, biased variance 3.5, unbiased 14/3; momentum 0.1 from (0, 1). Values below 2 from
    // a few fp32 steps: within a few ulps (1.2e-7).
    XCTAssertEqual(bn.runningMean.value[0], 0.3, accuracy: 1e-6)
    XCTAssertEqual(bn.runningVariance.value[0], 0.9 + 0.1 * 14 / 3, accuracy: 1e-6)
    XCTAssertEqual(bn.batchesTracked.value[0], 1)
  }

  func testMaxPool() {
    let (n, h, w, c) = (2, 7, 6, 3)
    let pool = MaxPool2d()
    let x = randomTensor([n, h, w, c], seed: 17)
    let input = FeatureMap(data: x.data, batch: n, height: h, width: w, channels: c)
    let y = pool.forward(input)
    XCTAssertEqual(y.height, 4)
    XCTAssertEqual(y.width, 3)
    for b in 0..<n { for oy in 0..<y.height { for ox in 0..<y.width { for ch in 0..<c {
      var m = -Float.infinity
      for ky in 0..<3 { for kx in 0..<3 {
        let iy = oy * 2 - 1 + ky
        let ix = ox * 2 - 1 + kx
        if iy >= 0 && iy < h && ix >= 0 && ix < w { m = max(m, x.data[((b * h + iy) * w + ix) * c + ch]) }
      } }
      XCTAssertEqual(y.data[((b * y.height + oy) * y.width + ox) * c + ch], m)
    } } } }
    let probe = Probe(count: y.count, seed: 19)
    let dx = probe.r.withUnsafeBufferPointer { pool.backward($0.baseAddress!) }!
    let analytic = Array(UnsafeBufferPointer(start: dx.data, count: x.count))
    let error = finiteDifferenceError(x.data, count: x.count, analytic: analytic, epsilon: 1e-3) {
      probe.loss(pool.forward(input).data)
    }
    // y copies inputs (no rounding, no truncation away from ties); x ± 1e-3 rounds to fp32 by
    // up to 2^-24 * |x|, which over 2e-3 is ~1e-4 of a unit gradient.
    XCTAssertLessThan(error, 1e-2)
  }

  func testGlobalAveragePool() {
    let pool = GlobalAveragePool()
    let x = randomTensor([2, 3, 4, 5], seed: 23)
    let input = FeatureMap(data: x.data, batch: 2, height: 3, width: 4, channels: 5)
    let y = pool.forward(input)
    var expected = 0.0
    for p in 0..<12 { expected += Double(x.data[(12 + p) * 5 + 2]) }
    // An fp32 mean of 12 values of size ~1: within 12 * 2^-24 of their mean size, ~7e-7.
    XCTAssertEqual(Double(y.data[5 + 2]), expected / 12, accuracy: 1e-6)
    let probe = Probe(count: y.count, seed: 29)
    let dx = probe.r.withUnsafeBufferPointer { pool.backward($0.baseAddress!) }!
    let analytic = Array(UnsafeBufferPointer(start: dx.data, count: x.count))
    // Linear in x: no truncation error; fp32 rounding of the means over 2 * 0.01, ~1e-5.
    XCTAssertLessThan(finiteDifferenceError(x.data, count: x.count, analytic: analytic) { probe.loss(pool.forward(input).data) }, 1e-3)
  }

  func testLinear() {
    let registry = ParameterRegistry()
    let fc = Linear(registry, name: "fc", inputFeatures: 6, outputFeatures: 4)
    registry.allocate()
    var rng = SplitMix64(seed: 31)
    fc.initialize(&rng)
    let x = randomTensor([3, 6], seed: 37)
    let y = fc.forward(x.data, batch: 3)
    var expected = Double(fc.bias!.value[1])
    for i in 0..<6 { expected += Double(x.data[2 * 6 + i]) * Double(fc.weight.value[1 * 6 + i]) }
    // A bias and 6 products in fp32: within 7 * 2^-24 * sum |terms| (terms of size ~1), ~1e-6.
    XCTAssertEqual(Double(y[2 * 4 + 1]), expected, accuracy: 1e-5)
    let probe = Probe(count: 12, seed: 41)
    registry.zeroGradients()
    let dx = probe.r.withUnsafeBufferPointer { fc.backward($0.baseAddress!) }!
    let analyticX = Array(UnsafeBufferPointer(start: dx, count: x.count))
    let analyticW = Array(UnsafeBufferPointer(start: fc.weight.gradient, count: fc.weight.count))
    let analyticB = Array(UnsafeBufferPointer(start: fc.bias!.gradient, count: 4))
    let loss = { probe.loss(fc.forward(x.data, batch: 3)) }
    // Linear in x, W and b: no truncation error; y's fp32 rounding over 2 * 0.01, ~1e-5.
    XCTAssertLessThan(finiteDifferenceError(x.data, count: x.count, analytic: analyticX, loss: loss), 1e-3)
    XCTAssertLessThan(finiteDifferenceError(fc.weight.value, count: fc.weight.count, analytic: analyticW, loss: loss), 1e-3)
    XCTAssertLessThan(finiteDifferenceError(fc.bias!.value, count: 4, analytic: analyticB, loss: loss), 1e-3)
  }

  func testResidualAddReLU() {
    let join = ResidualAddReLU()
    let a = randomTensor([1, 2, 2, 3], seed: 43)
    let b = randomTensor([1, 2, 2, 3], seed: 47)
    let fa = FeatureMap(data: a.data, batch: 1, height: 2, width: 2, channels: 3)
    let fb = fa.with(data: b.data)
    let y = join.forward(fa, fb)
    for i in 0..<12 { XCTAssertEqual(y.data[i], max(a.data[i] + b.data[i], 0)) }
    let probe = Probe(count: 12, seed: 53)
    let d = probe.r.withUnsafeBufferPointer { join.backward($0.baseAddress!) }
    let analytic = Array(UnsafeBufferPointer(start: d, count: 12))
    let loss = { probe.loss(join.forward(fa, fb).data) }
    // Piecewise linear: no truncation away from the kink; a + b and a ± 1e-3 round to fp32 by
    // up to 2^-24 of values ~3, which over 2e-3 is ~1e-4 of a unit gradient.
    XCTAssertLessThan(finiteDifferenceError(a.data, count: 12, analytic: analytic, epsilon: 1e-3, loss: loss), 1e-2)
    XCTAssertLessThan(finiteDifferenceError(b.data, count: 12, analytic: analytic, epsilon: 1e-3, loss: loss), 1e-2)
  }

  /// The join folded into a BatchNorm gives exactly what BatchNorm then the join give.
  func testJoinedBatchNormMatchesBatchNormThenJoin() {
    let registry = ParameterRegistry()
    let bn = BatchNorm2d(registry, name: "bn", channels: 5)
    registry.allocate()
    bn.initialize()
    for ch in 0..<5 {
      bn.weight.value[ch] = 0.5 + Float(ch) * 0.3
      bn.bias.value[ch] = Float(ch) * 0.2 - 0.4
    }
    let x = randomTensor([2, 3, 3, 5], seed: 59)
    let s = randomTensor([2, 3, 3, 5], seed: 61)
    let fx = FeatureMap(data: x.data, batch: 2, height: 3, width: 3, channels: 5)
    let fs = fx.with(data: s.data)
    let state = Array(UnsafeBufferPointer(start: registry.state.data, count: registry.state.count))
    let plain = Array(UnsafeBufferPointer(start: bn.forward(fx).data, count: x.count))
    let stats = Array(UnsafeBufferPointer(start: registry.state.data, count: registry.state.count))
    registry.state.data.update(from: state, count: state.count)
    let joined = bn.forward(fx, joining: fs)
    var positive = 0
    for i in 0..<x.count {
      XCTAssertEqual(joined.data[i], max(plain[i] + s.data[i], 0), "element \(i)")
      if joined.data[i] > 0 { positive += 1 }
    }
    XCTAssertTrue(positive > 0 && positive < x.count, "the ReLU should cut some entries and pass others")
    XCTAssertEqual(Array(UnsafeBufferPointer(start: registry.state.data, count: registry.state.count)), stats,
      "the joined pass updates the running statistics like the plain one")
  }

  /// The join's mask done inside the BatchNorm's backward gives the join's masked gradient
  /// bit for bit, and the BatchNorm's dx, dgamma and dbeta.
  func testBatchNormMaskingByTheJoinMatchesJoinThenBatchNorm() {
    let registry = ParameterRegistry()
    let bn = BatchNorm2d(registry, name: "bn", channels: 6)
    registry.allocate()
    bn.initialize()
    for ch in 0..<6 {
      bn.weight.value[ch] = 0.7 + Float(ch) * 0.2
      bn.bias.value[ch] = Float(ch) * 0.1 - 0.3
    }
    let x = randomTensor([2, 4, 3, 6], seed: 71)
    let s = randomTensor([2, 4, 3, 6], seed: 73)
    let dy = randomTensor([2, 4, 3, 6], seed: 79)
    let fx = FeatureMap(data: x.data, batch: 2, height: 4, width: 3, channels: 6)
    let join = ResidualAddReLU()
    join.adopt(bn.forward(fx, joining: fx.with(data: s.data)))

    func run(folded: Bool) -> (masked: [Float], dx: [Float], gradients: [Float]) {
      registry.zeroGradients()
      let masked: UnsafeMutablePointer<Float>
      let dx: FeatureMap
      if folded {
        let mask = join.maskedGradient()
        masked = mask.masked
        masked.update(repeating: .nan, count: x.count)
        dx = bn.backward(dy.data, join: mask)!
      } else {
        masked = join.backward(dy.data)
        dx = bn.backward(masked)!
      }
      return (Array(UnsafeBufferPointer(start: masked, count: x.count)),
        Array(UnsafeBufferPointer(start: dx.data, count: x.count)),
        Array(UnsafeBufferPointer(start: registry.gradients.data, count: registry.gradients.count)))
    }
    let separate = run(folded: false)
    let folded = run(folded: true)
    XCTAssertEqual(folded.masked, separate.masked)
    // The sums are grouped differently (unmasked sums take four rows at a time): equal up to
    // rounding, 2 * 24 * 2^-24 (sums over 24 positions, in two orders) ~ 3e-6 of the terms' size.
    func close(_ a: [Float], _ b: [Float]) -> Bool {
      let scale = b.map { abs($0) }.max()!
      return zip(a, b).allSatisfy { abs($0 - $1) <= 1e-5 * scale }
    }
    XCTAssertTrue(close(folded.dx, separate.dx))
    XCTAssertTrue(close(folded.gradients, separate.gradients))
    // Not vacuous: the gradients compared are of order 1 (dy ~ N(0, 1)).
    XCTAssertGreaterThan(separate.gradients.map { abs($0) }.max()!, 0.1)
    let zeros = separate.masked.filter { $0 == 0 }.count
    XCTAssertTrue(zeros > 0 && zeros < x.count, "the mask should cut some entries and pass others")
  }

  func testBinaryCrossEntropy() {
    let z = Tensor(shape: [2, 3], values: [0.5, -2, 30, -30, 0, 1.5])
    let t = Tensor(shape: [2, 3], values: [1, 0, 1, 1, 0, 0])
    let g = Tensor(shape: [2, 3])
    let loss = Losses.binaryCrossEntropyWithLogits(logits: z.data, targets: t.data, count: 6, gradient: g.data)
    var expected = 0.0
    for i in 0..<6 {
      let p = 1 / (1 + exp(-Double(z.data[i])))
      expected -= Double(t.data[i]) * log(max(p, 1e-300)) + (1 - Double(t.data[i])) * log(max(1 - p, 1e-300))
    }
    // The loss is an fp32 value near 5 (ulp 4.8e-7): 1e-5 is some 20 ulps.
    XCTAssertEqual(Double(loss), expected / 6, accuracy: 1e-5)
    let error = finiteDifferenceError(z.data, count: 6, analytic: g.array, epsilon: 1e-2) {
      Double(Losses.binaryCrossEntropyWithLogits(logits: z.data, targets: t.data, count: 6, gradient: nil))
    }
    // Half an ulp of that fp32 loss over 2 * 0.01 is 1.2e-5, 7e-5 of gradients up to 1/6;
    // truncation, 0.01^2 / 6 * |softplus'''| / 6, is ~3e-7.
    XCTAssertLessThan(error, 1e-3)
  }

  func testSoftmaxCrossEntropy() {
    let z = Tensor(shape: [2, 4], values: [1, 2, 3, 4, -1, 0, 5, 2])
    let labels: [Int32] = [3, 0]
    let g = Tensor(shape: [2, 4])
    let loss = labels.withUnsafeBufferPointer {
      Losses.softmaxCrossEntropy(logits: z.data, labels: $0.baseAddress!, batch: 2, classes: 4, gradient: g.data)
    }
    let row0 = log(exp(1.0) + exp(2.0) + exp(3.0) + exp(4.0)) - 4
    let row1 = log(exp(-1.0) + exp(0.0) + exp(5.0) + exp(2.0)) + 1
    // An fp32 loss near 3.3 (ulp 2.4e-7): 1e-5 is some 40 ulps.
    XCTAssertEqual(Double(loss), (row0 + row1) / 2, accuracy: 1e-5)
    let error = finiteDifferenceError(z.data, count: 8, analytic: g.array, epsilon: 1e-2) {
      labels.withUnsafeBufferPointer {
        Double(Losses.softmaxCrossEntropy(logits: z.data, labels: $0.baseAddress!, batch: 2, classes: 4, gradient: nil))
      }
    }
    // As for the binary loss: the fp32 loss's rounding over 2 * 0.01 is ~1e-5 of gradients ~0.5,
    // truncation ~0.01^2 / 6.
    XCTAssertLessThan(error, 1e-3)
  }

  /// Freezing everything below the head skips the backbone's backward entirely; freezing all
  /// but the BatchNorm affine parameters still reaches the stem's BatchNorm.
  func testFrozenParametersGetNoGradient() throws {
    let model = try ResNet(ResNetConfiguration(depth: .resnet18, stem: .small, width: 0.0625, classes: 3))
    for p in model.registry.parameters { p.requiresGradient = p.group == .head }
    model.configureGradients()
    let x = randomTensor([2, 8, 8, 3], seed: 59)
    let logits = model.forward(FeatureMap(data: x.data, batch: 2, height: 8, width: 8, channels: 3))
    let probe = Probe(count: 6, seed: 61)
    model.registry.zeroGradients()
    _ = logits
    probe.r.withUnsafeBufferPointer { model.backward($0.baseAddress!) }
    for p in model.registry.parameters where p.group != .head {
      XCTAssertEqual(Elementwise.maxAbs(p.gradient, count: p.count), 0, p.name)
    }
    // Any nonzero value: the head itself does get a gradient.
    XCTAssertGreaterThan(Elementwise.maxAbs(model.fc!.weight.gradient, count: model.fc!.weight.count), 0)

    for p in model.registry.parameters { p.requiresGradient = p.group == .head || p.kind == .normalization }
    model.configureGradients()
    _ = model.forward(FeatureMap(data: x.data, batch: 2, height: 8, width: 8, channels: 3))
    model.registry.zeroGradients()
    probe.r.withUnsafeBufferPointer { model.backward($0.baseAddress!) }
    // Any nonzero value reaches the stem's BatchNorm; exactly nothing its convolution.
    XCTAssertGreaterThan(Elementwise.maxAbs(model.bn1.weight.gradient, count: model.bn1.channels), 0)
    XCTAssertEqual(Elementwise.maxAbs(model.conv1.weight.gradient, count: model.conv1.weight.count), 0)
  }
}

final class TrainingStepTests: XCTestCase {
  /// After the first step has sized every buffer, further steps allocate no tensor storage.
  func testStepsAfterTheFirstAllocateNothing() throws {
    for depth in [ResNetDepth.resnet18, .resnet50] {
      let model = try ResNet(ResNetConfiguration(depth: depth, stem: .imagenet, width: 0.125, classes: 40))
      let x = randomTensor([4, 32, 32, 3], seed: 67)
      let targets = Tensor(shape: [4, 40])
      let gradient = Tensor(shape: [4, 40])
      let optimizer = SGD(model.registry, learningRate: 0.1)
      var losses: [Float] = []
      func step() {
        model.registry.zeroGradients()
        let logits = model.forward(FeatureMap(data: x.data, batch: 4, height: 32, width: 32, channels: 3))
        losses.append(Losses.binaryCrossEntropyWithLogits(logits: logits, targets: targets.data, count: 160, gradient: gradient.data))
        model.backward(gradient.data)
        optimizer.step()
      }
      step()
      let before = Tensor.allocations
      for _ in 0..<3 { step() }
      XCTAssertEqual(Tensor.allocations, before, "\(depth) allocated during steps 2-4")
      // All-zero targets: SGD on the same batch must drive the loss down.
      XCTAssertLessThan(losses.last!, losses.first!, "\(depth) loss did not fall: \(losses)")
    }
  }
}
