// The fused layers against the plain definitions in `Reference`: BatchNorm (with its fused ReLU)
// and a whole residual unit (convolutions with their chosen methods, BatchNorms with observed
// sums, the join folded into the last BatchNorm, the projection shortcut), forward and backward.
import NN
import Support
import Tensors
import TestSupport
import XCTest

final class ReferenceTests: XCTestCase {
  func values(_ p: UnsafePointer<Float>, _ count: Int) -> [Float] { Array(UnsafeBufferPointer(start: p, count: count)) }

  func randomize(_ bn: BatchNorm2d, seed: UInt64) {
    var rng = SplitMix64(seed: seed)
    for ch in 0..<bn.channels {
      bn.weight.value[ch] = 1 + 0.3 * rng.normal()
      bn.bias.value[ch] = 0.2 * rng.normal()
    }
  }

  func testBatchNormMatchesTheDefinition() {
    for relu in [false, true] {
      let registry = ParameterRegistry()
      let bn = BatchNorm2d(registry, name: "bn", channels: 6, appliesReLU: relu)
      registry.allocate()
      bn.initialize()
      randomize(bn, seed: 3)
      registry.zeroGradients()
      let x = randomTensor([3, 5, 4, 6], seed: 5)
      for i in 0..<x.count { x.data[i] += Float(i % 6) * 0.5 }
      let dy = randomTensor([x.count], seed: 7)
      let y = bn.forward(FeatureMap(data: x.data, batch: 3, height: 5, width: 4, channels: 6))
      let yValues = values(y.data, y.count)
      let dx = bn.backward(dy.data)!
      let gamma = values(bn.weight.value, 6)
      let reference = Reference.batchNorm(values(x.data, x.count), channels: 6, gamma: gamma, beta: values(bn.bias.value, 6))
      var expected = reference.y
      var upstream = values(dy.data, dy.count)
      if relu {
        expected = expected.map { max($0, 0) }
        upstream = zip(upstream, expected).map { $1 > 0 ? $0 : 0 }
      }
      let gradients = Reference.batchNormBackward(upstream, values(x.data, x.count), channels: 6, gamma: gamma)
      // The definition is in Double. fp32 statistics over 60 values (means up to 2.5 against
      // deviations ~1) are within 60 x 2^-24 of the values' size: under 1e-5 of y's. dx
      // subtracts dy's mean and its projection on x-hat, and that cancellation can scale y's
      // relative error by ~10; dgamma and dbeta are sums over the same 60 positions.
      XCTAssertLessThan(relativeError(yValues, expected), 1e-5, "y, ReLU \(relu)")
      XCTAssertLessThan(relativeError(values(dx.data, dx.count), gradients.dx), 1e-4, "dx, ReLU \(relu)")
      XCTAssertLessThan(relativeError(values(bn.weight.gradient, 6), gradients.dgamma), 1e-5, "dgamma, ReLU \(relu)")
      XCTAssertLessThan(relativeError(values(bn.bias.gradient, 6), gradients.dbeta), 1e-5, "dbeta, ReLU \(relu)")
      // The running statistics move 0.1 of the way to the batch's (unbiased variance). Means
      // below 0.3 and variances below 2, within 60 x 2^-24 of the terms they sum.
      for ch in 0..<6 {
        XCTAssertEqual(Double(bn.runningMean.value[ch]), 0.1 * reference.mean[ch], accuracy: 1e-5)
        XCTAssertEqual(Double(bn.runningVariance.value[ch]), 0.9 + 0.1 * reference.unbiasedVariance[ch], accuracy: 1e-4)
      }
    }
  }

  /// The first unit of layer2 of a ResNet-18 (stride 2, projection shortcut) and of a ResNet-50
  /// (bottleneck), run by the model's own code, against the composition of the definitions.
  func testResidualUnitsMatchTheDefinition() throws {
    for depth in [ResNetDepth.resnet18, .resnet50] {
      let model = try ResNet(ResNetConfiguration(depth: depth, stem: .small, width: 0.125, classes: 2), seed: 9)
      let unit = model.layers[1][0]
      for (index, bn) in unit.batchNorms.enumerated() { randomize(bn, seed: 20 + UInt64(index)) }
      let channels = unit.main[0].conv.inputChannels
      let (n, size) = (2, 8)
      let x = randomTensor([n, size, size, channels], seed: 31)
      let input = FeatureMap(data: x.data, batch: n, height: size, width: size, channels: channels)
      model.registry.zeroGradients()
      let y = unit.forward(input)
      let yValues = values(y.data, y.count)
      let dy = randomTensor([y.count], seed: 33)
      let dx = unit.backward(dy.data)!
      let dxValues = values(dx.data, dx.count)

      // The definition: each pair is BatchNorm(conv(h)), ReLU after all but the last; the
      // shortcut is BatchNorm(1x1 conv(x)); y = ReLU(main + shortcut).
      struct Saved { var input: [Float]; var g: ConvGeometry; var conv: Conv2d; var preNorm: [Float]; var bn: BatchNorm2d; var output: [Float] }
      func pair(_ h: [Float], _ g: ConvGeometry, _ conv: Conv2d, _ bn: BatchNorm2d, relu: Bool) -> Saved {
        let w = values(conv.weight.value, conv.weight.count)
        let c = Reference.convolution(h, g, weight: w, outputChannels: conv.outputChannels)
        var out = Reference.batchNorm(c, channels: bn.channels, gamma: values(bn.weight.value, bn.channels), beta: values(bn.bias.value, bn.channels)).y
        if relu { out = out.map { max($0, 0) } }
        return Saved(input: h, g: g, conv: conv, preNorm: c, bn: bn, output: out)
      }
      func geometry(_ conv: Conv2d, height: Int) -> ConvGeometry {
        ConvGeometry(batch: n, height: height, width: height, channels: conv.inputChannels, kernel: conv.kernelSize, stride: conv.stride, padding: conv.padding)
      }
      var saved: [Saved] = []
      var h = values(x.data, x.count)
      var height = size
      for (index, (conv, bn)) in unit.main.enumerated() {
        let s = pair(h, geometry(conv, height: height), conv, bn, relu: index < unit.main.count - 1)
        saved.append(s)
        h = s.output
        height = s.g.outputHeight
      }
      let projection = unit.downsample!
      let shortcut = pair(values(x.data, x.count), geometry(projection.convolution, height: size), projection.convolution, projection.batchNorm, relu: false)
      let expected = Reference.residualJoin(main: h, shortcut: shortcut.output)
      // Both sides are fp32, summing in other orders: convolutions of up to 144 products (within
      // 144 x 2^-24 of sum |x w|, ~1e-5) feeding BatchNorms over 32 positions, whose division by
      // deviations over so few values can amplify that a few times.
      XCTAssertLessThan(relativeError(yValues, expected), 1e-4, "\(depth) y")

      // Backward through the definition, accumulating dW, dγ, dβ per layer.
      var expectedGradients: [(name: String, values: [Float])] = []
      func back(_ s: Saved, _ dOut: [Float], relu: Bool) -> [Float] {
        let d = relu ? zip(dOut, s.output).map { $1 > 0 ? $0 : 0 } : dOut
        let bnGradients = Reference.batchNormBackward(d, s.preNorm, channels: s.bn.channels, gamma: values(s.bn.weight.value, s.bn.channels))
        let convGradients = Reference.convolutionBackward(
          bnGradients.dx, s.input, s.g, weight: values(s.conv.weight.value, s.conv.weight.count), outputChannels: s.conv.outputChannels)
        expectedGradients += [(s.bn.weight.name, bnGradients.dgamma), (s.bn.bias.name, bnGradients.dbeta), (s.conv.weight.name, convGradients.dw)]
        return convGradients.dx
      }
      let joined = Reference.residualJoinBackward(values(dy.data, dy.count), output: expected)
      var dMain = joined.main
      for (index, s) in saved.enumerated().reversed() { dMain = back(s, dMain, relu: index < saved.count - 1) }
      let dShortcut = back(shortcut, joined.shortcut, relu: false)
      // Backward goes through the same sums again, and BatchNorm's backward subtracts near-equal
      // projections (two BatchNorms deep): ten times y's allowance.
      XCTAssertLessThan(relativeError(dxValues, zip(dMain, dShortcut).map(+)), 1e-3, "\(depth) dx")
      for (name, reference) in expectedGradients {
        let p = model.registry.parameters.first { $0.name == name }!
        XCTAssertLessThan(relativeError(values(p.gradient, p.count), reference), 1e-3, "\(depth) \(name)")
      }
    }
  }
}
