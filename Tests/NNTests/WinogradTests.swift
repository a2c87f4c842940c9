// Winograd against the GEMM path at realistic channel counts: forward, dx and dW.
import NN
import Tensors
import XCTest

final class WinogradTests: XCTestCase {
  func relative(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) -> Float {
    Elementwise.maxAbsDifference(a, b, count: count) / (Elementwise.maxAbs(b, count: count) + 1e-6)
  }

  func compare(channels: Int, outputChannels: Int, height: Int, width: Int, batch: Int = 2) -> (Float, Float, Float) {
    let registry = ParameterRegistry()
    let conv = Conv2d(registry, name: "c", inputChannels: channels, outputChannels: outputChannels, kernelSize: 3, padding: 1)
    registry.allocate()
    var rng = SplitMix64(seed: UInt64(channels * 1000 + height))
    conv.initialize(&rng)
    let x = randomTensor([batch, height, width, channels], seed: 3)
    let input = FeatureMap(data: x.data, batch: batch, height: height, width: width, channels: channels)
    let dy = randomTensor([batch, height, width, outputChannels], seed: 5)

    func pass(_ algorithm: ConvolutionAlgorithm) -> (y: [Float], dx: [Float], dw: [Float]) {
      conv.algorithm = algorithm
      registry.zeroGradients()
      let y = conv.forward(input)
      let yValues = Array(UnsafeBufferPointer(start: y.data, count: y.count))
      let dx = conv.backward(dy.data)!
      return (yValues, Array(UnsafeBufferPointer(start: dx.data, count: dx.count)),
        Array(UnsafeBufferPointer(start: conv.weight.gradient, count: conv.weight.count)))
    }
    let direct = pass(.gemm)
    let fast = pass(.winograd)
    return (relative(fast.y, direct.y, direct.y.count), relative(fast.dx, direct.dx, direct.dx.count),
      relative(fast.dw, direct.dw, direct.dw.count))
  }

  func testWinogradMatchesGEMM() {
    var worst: Float = 0
    for (c, o, h, w) in [(64, 64, 16, 16), (128, 128, 8, 8), (256, 256, 4, 4), (512, 512, 2, 2), (3, 5, 7, 5), (16, 32, 9, 11), (8, 8, 1, 1)] {
      let (y, dx, dw) = compare(channels: c, outputChannels: o, height: h, width: w)
      print(String(format: "winograd vs gemm, %dx%d, %d->%d channels: y %.1e, dx %.1e, dW %.1e", h, w, c, o, y, dx, dw))
      worst = max(worst, y, dx, dw)
      XCTAssertLessThan(y, 1e-4, "forward \(h)x\(w) \(c)->\(o)")
      XCTAssertLessThan(dx, 1e-4, "dx \(h)x\(w) \(c)->\(o)")
      XCTAssertLessThan(dw, 1e-4, "dW \(h)x\(w) \(c)->\(o)")
    }
    XCTAssertGreaterThan(worst, 0, "the two paths should not be the same computation")
  }
}
