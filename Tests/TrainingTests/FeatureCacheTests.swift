// The frozen strategy's feature table: an image's features in eval mode do not depend on the
// other images of its batch (what makes computing them once sound), the table holds every
// image's features, and training on it ends where training through the backbone ends.
import Data
import Distributed
import Experiment
import Foundation
import NN
import Support
import Tensors
import Training
import XCTest

/// A pool of images drawn in a new order every epoch, with their dataset indices: what the
/// loader gives a fine-tuning run.
final class ShuffledPool: BatchSource {
  let imageSize = 8
  let stepsPerEpoch: Int
  let pool: Int
  let perStep: Int
  let images: Tensor
  let labels: Tensor
  let batchImages: Tensor
  let batchLabels: Tensor
  var waitSeconds = 0.0

  init(pool: Int, perStep: Int) {
    self.pool = pool
    self.perStep = perStep
    stepsPerEpoch = pool / perStep
    images = Tensor(shape: [pool, 8, 8, 3])
    labels = Tensor(shape: [pool, 40])
    batchImages = Tensor(shape: [perStep, 8, 8, 3])
    batchLabels = Tensor(shape: [perStep, 40])
    var rng = SplitMix64(seed: 11)
    for n in 0..<pool {
      let target = Float(n % 2)
      for k in 0..<40 { labels.data[n * 40 + k] = k % 3 == 0 ? target : Float((n + k) % 2) }
      for i in 0..<192 { images.data[n * 192 + i] = rng.normal() * 0.5 + (target - 0.5) * Float(i % 3) }
    }
  }

  func order(epoch: Int) -> [Int] {
    var rng = SplitMix64(seed: UInt64(epoch) + 1)
    var order = Array(0..<pool)
    for i in stride(from: pool - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
    return order
  }

  func batch(epoch: Int, step: Int) throws -> TrainingBatch {
    let indices = Array(order(epoch: epoch)[(step * perStep)..<((step + 1) * perStep)])
    for (position, image) in indices.enumerated() {
      (batchImages.data + position * 192).update(from: images.data + image * 192, count: 192)
      (batchLabels.data + position * 40).update(from: labels.data + image * 40, count: 40)
    }
    return TrainingBatch(images: batchImages.data, labels: batchLabels.data, count: perStep, indices: indices)
  }
}

final class FeatureCacheTests: XCTestCase {
  static var packed: URL?

  override class func tearDown() {
    if let packed { try? FileManager.default.removeItem(at: packed.deletingLastPathComponent()) }
  }

  /// 40 train, 6 val and 6 test synthetic faces packed at 16 px.
  func dataset() throws -> PackedDataset {
    if Self.packed == nil { Self.packed = try TinyDataset.make("features", train: 40, validation: 6, test: 6, seed: 8) }
    return try PackedDataset(path: Self.packed!)
  }

  func frozenModel() throws -> ResNet {
    let model = try ResNet(ResNetConfiguration(depth: .resnet18, stem: .small, width: 0.125, classes: 40), seed: 5)
    // Running statistics away from (0, 1), so that eval-mode BatchNorm does something.
    for bn in model.batchNorms {
      for c in 0..<bn.runningMean.count {
        bn.runningMean.value[c] = 0.1 * Float(c % 5) - 0.2
        bn.runningVariance.value[c] = 0.5 + 0.1 * Float(c % 7)
      }
    }
    Strategy.frozen.apply(to: model)
    return model
  }

  func testAnImagesFeaturesDoNotDependOnTheRestOfItsBatch() throws {
    let model = try frozenModel()
    let source = ShuffledPool(pool: 18, perStep: 9)
    let d = model.featureDimension
    func features(_ images: [Int]) -> [[Float]] {
      let batch = Tensor(shape: [images.count, 8, 8, 3])
      for (k, image) in images.enumerated() { (batch.data + k * 192).update(from: source.images.data + image * 192, count: 192) }
      let out = model.forwardFeatures(FeatureMap(data: batch.data, batch: images.count, height: 8, width: 8, channels: 3))
      return (0..<images.count).map { Array(UnsafeBufferPointer(start: out.data + $0 * d, count: d)) }
    }
    let first = features(Array(0..<9))
    // The same batch size, other neighbours and other positions.
    let other = [4, 12, 0, 17, 8, 9, 10, 2, 15]
    let second = features(other)
    // The first batch again with bfloat16 products (unit roundoff 2^-8): how much this network
    // amplifies its products' rounding.
    BLAS.matmulPrecision = .bf16Emulated
    let emulated = features(Array(0..<9))
    BLAS.matmulPrecision = .fp32
    // Equal to rounding: an image's rows can land on the edge of OpenBLAS's register blocks in
    // one batch and inside them in another, and on some CPUs (the Haswell kernels that AMD Zen 3
    // gets) edge rows are summed in another order. What matters is that no other image leaks in.
    // Each batch's fp32 rounding, amplified by the network, is allowed 16 x 2^-16 x bf16's error
    // plus 16 x 2^-24, as for the float64 fixtures (ReferenceFixtureTests.checkFP32).
    for (k, image) in other.enumerated() where image < 9 {
      let largest = zip(second[k], first[image]).map { abs($0 - $1) }.max() ?? .infinity
      let scale = first[image].map(abs).max() ?? 1
      let bf16 = zip(emulated[image], first[image]).map { abs($0 - $1) }.max()! / scale
      let allowed = 2 * (16 * bf16 / 65536 + 16 * Float.ulpOfOne / 2)
      XCTAssertLessThanOrEqual(largest, allowed * scale, "image \(image) at position \(k) among other images")
    }
    XCTAssertNotEqual(first[0], first[1], "different images should have different features")
  }

  func testTheTableHoldsEveryImagesFeatures() throws {
    let data = try dataset()
    let model = try frozenModel()
    let all = data.train + data.validation + data.test
    let (made, note) = FeatureCache.forFinetuning(model, strategy: .frozen, augmented: false, images: all.count)
    let cache = try XCTUnwrap(made)
    XCTAssertNil(note)
    try cache.fill(model, dataset: data, communicator: LocalCommunicator(), threads: 1)
    XCTAssertEqual(cache.count, all.count)
    XCTAssertEqual(cache.backboneImages, 2 * FeatureCache.chunk, "52 images in two passes of 32")
    XCTAssertFalse(model.batchNorms.contains { $0.training }, "fill leaves the BatchNorm mode as it found it")
    // Against the backbone run directly on the images (one batch of all of them).
    let loader = BatchLoader(dataset: data, schedule: BatchSchedule(steps: 1) { _ in all }, transform: .none, threads: 1, seed: 0)
    let b = try XCTUnwrap(loader.next())
    let input = FeatureMap(data: b.images.data, batch: all.count, height: 16, width: 16, channels: 3)
    let d = model.featureDimension
    let direct = Array(UnsafeBufferPointer(start: model.forwardFeatures(input).data, count: all.count * d))
    // The same pass with bfloat16 products (unit roundoff 2^-8): how much this network amplifies
    // its products' rounding.
    BLAS.matmulPrecision = .bf16Emulated
    let emulated = Array(UnsafeBufferPointer(start: model.forwardFeatures(input).data, count: all.count * d))
    BLAS.matmulPrecision = .fp32
    let rows = try XCTUnwrap(cache.features(all.reversed()))
    var worst: Float = 0
    var bf16: Float = 0
    for (k, image) in all.reversed().enumerated() {
      let position = all.firstIndex(of: image)!
      for j in 0..<d {
        let e = direct[position * d + j]
        worst = max(worst, abs(rows[k * d + j] - e) / max(1, abs(e)))
        bf16 = max(bf16, abs(emulated[position * d + j] - e) / max(1, abs(e)))
      }
    }
    // Passes of 32 against one of 52 sum the same products in other orders (OpenBLAS's edge
    // rows on some CPUs): each is fp32 rounding amplified by the network, which bf16's error
    // measures at 2^16 times the unit roundoff. Allowed, as for the float64 fixtures
    // (ReferenceFixtureTests.checkFP32), 16 x 2^-16 x that plus 16 x 2^-24, for each of the two.
    let allowed = 2 * (16 * bf16 / 65536 + 16 * Float.ulpOfOne / 2)
    print(String(format: "table against direct features: %.2e (allowed %.2e; bf16 against fp32 %.2e)", worst, allowed, bf16))
    XCTAssertLessThan(worst, allowed)
    XCTAssertNil(cache.features([all.count + 3]), "an image not in the dataset is not in the table")
  }

  /// Fine-tunes with the frozen strategy on the dataset's train images, with or without the table.
  func finetune(_ data: PackedDataset, cache: FeatureCache?) throws -> (ResNet, Trainer) {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("fairtune-table-\(getpid())-\(cache == nil ? "plain" : "table")").path
    try? FileManager.default.removeItem(atPath: path)
    defer { try? FileManager.default.removeItem(atPath: path) }
    let model = try frozenModel()
    try cache?.fill(model, dataset: data, communicator: LocalCommunicator(), threads: 1)
    let comm = LocalCommunicator()
    let optimizer = OptimizerSettings(kind: .adam, learningRate: 0.01).make(model.registry.parameters { $0.requiresGradient })
    let source = LoaderSource(
      dataset: data, split: data.train, globalBatch: 8, communicator: comm, epochs: 3, seed: 2, transform: .none, threads: 1, firstStep: 0)
    let trainer = Trainer(
      step: .single(model, objective: .attributes, optimizer: optimizer),
      schedule: Schedule(kind: .constant, baseLearningRate: 0.01, totalSteps: 15), source: source, run: try RunDirectory(path: path, options: ["model": "resnet18"]),
      plan: TrainingPlan(epochs: 3, maxSteps: nil, globalBatch: 8, checkpointEvery: 100, keep: 1), metadata: ["strategy": "frozen"])
    trainer.logger = Log.silent
    trainer.featureCache = cache
    try trainer.train()
    return (model, trainer)
  }

  func testTrainingOnTheTableEndsWhereTrainingThroughTheBackboneEnds() throws {
    let data = try dataset()
    let (plain, _) = try finetune(data, cache: nil)
    let cache = FeatureCache(dimension: plain.featureDimension)
    let (tabled, _) = try finetune(data, cache: cache)
    XCTAssertEqual(cache.served, 3 * 40, "every step's rows came from the table")
    let initial = try frozenModel().fc!.weight
    let a = plain.fc!.weight
    let b = tabled.fc!.weight
    var moved: Float = 0
    var worst: Float = 0
    for i in 0..<a.count {
      moved = max(moved, abs(a.value[i] - initial.value[i]))
      worst = max(worst, abs(a.value[i] - b.value[i]))
    }
    // 15 Adam steps at rate 0.01 move the head by ~0.1.
    XCTAssertGreaterThan(moved, 1e-3, "the head did not train")
    // The table's features were computed in passes of 32, the plain run's in batches of 8:
    // the same up to float rounding (~1e-5 of the features, above), which moves each of the 15
    // Adam steps (at most 0.01) by about as much relative: ~1e-6 of the weights.
    XCTAssertLessThan(worst, 1e-5)
    // The backbone is untouched by either.
    for name in ["conv1.weight", "layer2.0.bn1.running_mean", "layer4.1.conv2.weight"] {
      let p = try XCTUnwrap(plain.registry.entry(named: name))
      let q = try XCTUnwrap(tabled.registry.entry(named: name))
      XCTAssertEqual(Array(UnsafeBufferPointer(start: p.value, count: p.count)), Array(UnsafeBufferPointer(start: q.value, count: q.count)), name)
    }
  }

  func testOnlyFrozenAndBnRecalOnPlainImagesGetATableAndOnlyIfItFits() throws {
    let model = try frozenModel()
    for strategy in [Strategy.frozen, .bnRecal] {
      XCTAssertNotNil(FeatureCache.forFinetuning(model, strategy: strategy, augmented: false, images: 100).cache)
      XCTAssertNil(FeatureCache.forFinetuning(model, strategy: strategy, augmented: true, images: 100).cache)
    }
    for strategy in Strategy.allCases where strategy != .frozen && strategy != .bnRecal {
      XCTAssertNil(FeatureCache.forFinetuning(model, strategy: strategy, augmented: false, images: 100).cache, strategy.rawValue)
    }
    let tooBig = FeatureCache.forFinetuning(model, strategy: .frozen, augmented: false, images: 100, bytes: 100 * model.featureDimension * 4 - 1)
    XCTAssertNil(tooBig.cache)
    XCTAssertTrue(tooBig.note?.contains("100 images") ?? false, tooBig.note ?? "no note")
  }
}
