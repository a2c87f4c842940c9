// The strategies: the paper's parameter counts, and each one changes exactly what it should.
import Experiment
import NN
import Support
import Tensors
import Training
import XCTest

final class StrategyTests: XCTestCase {
  func testResNet50CountsAreThePapers() throws {
    let model = try ResNet(ResNetConfiguration(depth: .resnet50, classes: 40))
    XCTAssertEqual(model.registry.parameterCount, 23_589_992)
    let expected: [Strategy: (Int, Int)] = [
      .frozen: (81_960, 0), .bnRecal: (81_960, 53_120), .bnStats: (81_960, 53_120), .bnStatsAffine: (81_960 + 53_120, 53_120),
      .bnStatsSkip: (2_903_976, 53_120), .full: (23_589_992, 53_120), .supervised: (23_589_992, 53_120),
    ]
    for strategy in Strategy.allCases {
      let counts = strategy.updatedCounts(model)
      XCTAssertEqual(counts.parameters, expected[strategy]!.0, strategy.rawValue)
      XCTAssertEqual(counts.buffers, expected[strategy]!.1, strategy.rawValue)
    }
    // The paper's shares of the parameters: 0.35% for the BN-statistics strategies, 12.3% with the
    // skip connections (to half the last digit the paper prints).
    let total = Double(model.registry.parameterCount)
    XCTAssertEqual(Double(Strategy.bnStats.updatedCounts(model).parameters) / total * 100, 0.35, accuracy: 0.005)
    XCTAssertEqual(Double(Strategy.bnStatsSkip.updatedCounts(model).parameters) / total * 100, 12.3, accuracy: 0.05)
  }

  /// One SGD step under each strategy: the tensors that may change do, the others stay bit-identical.
  func testEachStrategyChangesExactlyItsTensors() throws {
    for strategy in Strategy.allCases {
      let model = try ResNet(ResNetConfiguration(depth: .resnet18, stem: .small, width: 0.0625, classes: 3), seed: 5)
      strategy.apply(to: model)
      let before = Dictionary(uniqueKeysWithValues: model.namedTensors().map { ($0.name, $0.values) })
      var rng = SplitMix64(seed: 3)
      let x = Tensor(shape: [4, 8, 8, 3])
      for i in 0..<x.count { x.data[i] = rng.normal() }
      let targets = Tensor(shape: [4, 3], values: (0..<12).map { Float($0 % 2) })
      let g = Tensor(shape: [4, 3])
      let optimizer = SGD(model.registry.parameters { $0.requiresGradient }, learningRate: 0.1, momentum: 0)
      model.registry.zeroGradients()
      let logits = model.forward(FeatureMap(data: x.data, batch: 4, height: 8, width: 8, channels: 3))
      _ = Losses.binaryCrossEntropyWithLogits(logits: logits, targets: targets.data, count: 12, gradient: g.data)
      model.backward(g.data)
      optimizer.step()
      for entry in model.registry.entries {
        let changed = entry.torchOrdered() != before[entry.name]!
        let isBuffer = model.registry.buffers.contains { $0 === entry }
        // bn-recal's running statistics change in its pass before training, not in a step.
        let shouldChange = isBuffer ? strategy.trainsBatchNorm : strategy.trains(entry)
        XCTAssertEqual(changed, shouldChange, "\(strategy.rawValue): \(entry.name)")
      }
    }
  }
}
