// NT-Xent: loss and gradient against PyTorch, and the split over ranks summing to the whole.
import Foundation
import NN
import Tensors
import TestSupport
import XCTest

final class NTXentTests: XCTestCase {
  func fixture() throws -> SafeTensors {
    try SafeTensors(contentsOf: try XCTUnwrap(Bundle.module.url(forResource: "ntxent", withExtension: "safetensors", subdirectory: "Fixtures")).path)
  }

  func testLossAndGradientMatchPyTorch() throws {
    let f = try fixture()
    let z = try f.floats("z", shape: [8, 6])
    for t in ["0.1", "0.5"] {
      var scratch = Workspace()
      var gradient = [Float](repeating: 0, count: 48)
      let (loss, correct) = gradient.withUnsafeMutableBufferPointer { g in
        Losses.ntXent(embeddings: z, rows: 8, dimension: 6, anchors: 0..<8, positive: { ($0 + 4) % 8 },
          temperature: Float(t)!, normalizer: 8, gradient: g.baseAddress!, scratch: &scratch)
      }
      let expectedLoss = try f.floats("loss.\(t)")[0]
      let expected = try f.floats("grad.\(t)", shape: [8, 6])
      let error = relativeError(gradient, expected, count: 48)
      print(String(format: "NT-Xent, temperature %@: loss %.6f (torch %.6f), gradient max relative difference %.2e", t, loss, expectedLoss, Double(error)))
      // The fixture is float64 PyTorch stored as float32 (2^-24). Ours is fp32: cosines over 6
      // dimensions, divided by the temperature (x10 at most), through a softmax over 7: some tens
      // of 2^-24 relative; 1e-5 is ~170 of them.
      XCTAssertEqual(Float(loss), expectedLoss, accuracy: 1e-5 * expectedLoss)
      XCTAssertLessThan(error, 1e-5)
      XCTAssertTrue((0...8).contains(correct))
    }
  }

  /// Two "ranks" each taking half the anchors: their losses add up, and their gradient parts
  /// sum to the one-process gradient.
  func testAnchorsSplitOverRanksSumToTheWhole() throws {
    let z = try fixture().floats("z", shape: [8, 6])
    func run(_ anchors: Range<Int>) -> (Double, [Float]) {
      var scratch = Workspace()
      var g = [Float](repeating: 0, count: 48)
      let (loss, _) = g.withUnsafeMutableBufferPointer {
        Losses.ntXent(embeddings: z, rows: 8, dimension: 6, anchors: anchors, positive: { ($0 + 4) % 8 },
          temperature: 0.1, normalizer: 8, gradient: $0.baseAddress!, scratch: &scratch)
      }
      return (loss, g)
    }
    let whole = run(0..<8)
    let first = run(0..<3)
    let second = run(3..<8)
    // The same fp32 terms (at most 8 per sum) added in two groups instead of one: a few ulps of
    // the loss (~2) and of each gradient entry (1e-6 of the largest is ~16 ulps of it; 1e-7 for
    // entries near 0).
    XCTAssertEqual(first.0 + second.0, whole.0, accuracy: 1e-6)
    let summed = zip(first.1, second.1).map { $0 + $1 }
    XCTAssertLessThan(Elementwise.maxAbsDifference(summed, whole.1, count: 48), 1e-6 * Elementwise.maxAbs(whole.1, count: 48) + 1e-7)
  }
}
