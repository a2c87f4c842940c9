// bn-recal's pass: the first BatchNorm's statistics against the stem convolution's output over
// every train image computed here independently (pooled, and balanced on an attribute), the
// batches of the pass, and an interrupted pass resumed to the same bits.
import Data
import Distributed
import Experiment
import Foundation
import NN
import Support
import Tensors
import Training
import XCTest

final class RecalibrationTests: XCTestCase {
  static var packed: URL?

  override class func tearDown() {
    if let packed { try? FileManager.default.removeItem(at: packed.deletingLastPathComponent()) }
  }

  /// 37 train, 4 val and 4 test synthetic faces packed at 16 px.
  func dataset() throws -> PackedDataset {
    if Self.packed == nil { Self.packed = try TinyDataset.make("recal", train: 37, validation: 4, test: 4, seed: 3) }
    return try PackedDataset(path: Self.packed!)
  }

  func model() throws -> ResNet {
    let model = try ResNet(ResNetConfiguration(depth: .resnet18, stem: .small, width: 0.125, classes: 40), seed: 5)
    Strategy.bnRecal.apply(to: model)
    return model
  }

  func temporaryDirectory(_ name: String) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("fairtune-recal-\(name)-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
  }

  /// Per channel, the mean and biased variance of the stem convolution's output over `images`
  /// (the weights, and so the output, do not depend on any BatchNorm), in two passes in Double;
  /// with `weights`, each image's values weigh by its weight (summing to 1 over the images).
  func stemStatistics(_ model: ResNet, _ data: PackedDataset, images: [Int], weights: [Double]? = nil) throws -> (mean: [Double], variance: [Double]) {
    let loader = BatchLoader(dataset: data, schedule: BatchSchedule(steps: 1) { _ in images }, transform: .none, threads: 1, seed: 0)
    let b = try XCTUnwrap(loader.next())
    let y = model.conv1.forward(FeatureMap(data: b.images.data, batch: images.count, height: 16, width: 16, channels: 3))
    let c = y.channels
    let perImage = y.height * y.width
    let weight = weights ?? [Double](repeating: 1 / Double(images.count), count: images.count)
    var mean = [Double](repeating: 0, count: c)
    for n in 0..<images.count {
      for p in 0..<perImage { for ch in 0..<c { mean[ch] += weight[n] * Double(y.data[(n * perImage + p) * c + ch]) / Double(perImage) } }
    }
    var variance = [Double](repeating: 0, count: c)
    for n in 0..<images.count {
      for p in 0..<perImage {
        for ch in 0..<c {
          let d = Double(y.data[(n * perImage + p) * c + ch]) - mean[ch]
          variance[ch] += weight[n] * d * d / Double(perImage)
        }
      }
    }
    return (mean, variance)
  }

  func assertStatistics(_ bn: BatchNorm2d, _ expected: (mean: [Double], variance: [Double]), _ message: String) {
    var worst = 0.0
    for ch in 0..<bn.channels {
      let scale = expected.variance[ch].squareRoot()
      worst = max(worst, abs(Double(bn.runningMean.value[ch]) - expected.mean[ch]) / scale)
      worst = max(worst, abs(Double(bn.runningVariance.value[ch]) - expected.variance[ch]) / expected.variance[ch])
    }
    print(String(format: "%@: largest difference from the independent statistics %.2e (relative to the standard deviation / variance)", message, worst))
    // The pass sees the stem's outputs of batches of 10, rounded otherwise than in one batch of
    // 37 (3x3 products over 3 channels: a few 2^-24), and sums them in fp32 over at most 64
    // rows before Double: ~1e-6 of the deviation at most.
    XCTAssertLessThan(worst, 1e-5, message)
  }

  func testTheFirstBatchNormHoldsTheStemOutputsStatisticsOverEveryTrainImage() throws {
    let data = try dataset()
    let model = try self.model()
    let before = model.bn1.runningMean.value[0]
    var recalibration = BatchNormRecalibration(batch: 10, seed: 4)
    recalibration.checkpointEvery = 100
    let result = try XCTUnwrap(try recalibration.run(model, dataset: data, communicator: LocalCommunicator(), threads: 1, directory: nil))
    XCTAssertEqual(result.images, 37)
    XCTAssertNotEqual(model.bn1.runningMean.value[0], before)
    assertStatistics(model.bn1, try stemStatistics(model, data, images: data.train), "pooled")
    XCTAssertFalse(model.batchNorms.contains { $0.training }, "the pass leaves BatchNorm in eval mode, as bn-recal trains")
    XCTAssertTrue(model.batchNorms.allSatisfy { $0.population == nil })
    // Deeper layers: positive variances, set from the pass (not the initial 1s).
    for bn in model.batchNorms.dropFirst() {
      XCTAssertTrue((0..<bn.channels).allSatisfy { bn.runningVariance.value[$0] > 0 && bn.runningVariance.value[$0] != 1 }, bn.runningMean.name)
    }
  }

  func testBalancedStatisticsWeighBothGroupsEqually() throws {
    let data = try dataset()
    let model = try self.model()
    let balance = try BatchNormRecalibration.balance("male", dataset: data)
    XCTAssertEqual(balance.name, "Male")
    let male = data.train.map { data.labels($0)[balance.index] != 0 }
    let men = male.filter { $0 }.count
    XCTAssertTrue(men > 0 && men < male.count)
    _ = try BatchNormRecalibration(batch: 10, seed: 4, balance: balance)
      .run(model, dataset: data, communicator: LocalCommunicator(), threads: 1, directory: nil)
    // Each group weighs one half, shared equally by its images.
    let weights = male.map { $0 ? 0.5 / Double(men) : 0.5 / Double(male.count - men) }
    assertStatistics(model.bn1, try stemStatistics(model, data, images: data.train, weights: weights), "balanced on Male")
    let pooled = try stemStatistics(model, data, images: data.train)
    // Unequal groups move some channel's mean by ~0.05; 1e-4 is ten times what rounding can.
    XCTAssertGreaterThan(
      (0..<model.bn1.channels).map { abs(Double(model.bn1.runningMean.value[$0]) - pooled.mean[$0]) }.max()!, 1e-4,
      "the mixture differs from the pool when the groups are unequal in size")
    XCTAssertThrowsError(try BatchNormRecalibration.balance("Mail", dataset: data)) { error in
      XCTAssertTrue("\(error)".contains("--bn-balance Mail"), "\(error)")
    }
  }

  func testBatchesCoverEveryImageOnceAndFoldASmallRemainder() {
    for (images, batch, ranks) in [(37, 10, 1), (37, 10, 3), (33, 10, 2), (40, 10, 4), (9, 10, 1), (21, 4, 4)] {
      let batches = BatchNormRecalibration.batches(images: images, batch: batch, ranks: ranks)
      XCTAssertEqual(batches.flatMap { Array($0) }, Array(0..<images), "\(images) images, batch \(batch)")
      XCTAssertTrue(batches.allSatisfy { $0.count >= min(ranks, images) }, "every rank has an image in every batch")
      XCTAssertTrue(batches.allSatisfy { $0.count < batch + (batch + 1) / 2 || $0.count < batch + ranks })
    }
    XCTAssertEqual(BatchNormRecalibration.batches(images: 37, batch: 10, ranks: 1).map(\.count), [10, 10, 10, 7])
    XCTAssertEqual(BatchNormRecalibration.batches(images: 33, batch: 10, ranks: 2).map(\.count), [10, 10, 13])
    XCTAssertEqual(
      BatchNormRecalibration.batches(images: 37, batch: 10, ranks: 1), BatchNormRecalibration.batches(images: 37, batch: 10, ranks: 3),
      "the batches do not depend on the rank count")
  }

  /// Stopped after two batches (its sums saved), then run again: the statistics are the bits of
  /// an uninterrupted pass; a third run reads the finished pass back.
  func testAnInterruptedPassResumesToTheSameBits() throws {
    let data = try dataset()
    let comm = LocalCommunicator()
    let whole = try self.model()
    var plain = BatchNormRecalibration(batch: 8, seed: 2, balance: try BatchNormRecalibration.balance("Young", dataset: data))
    plain.checkpointEvery = 1
    _ = try plain.run(whole, dataset: data, communicator: comm, threads: 1, directory: try temporaryDirectory("whole"))

    let directory = try temporaryDirectory("resumed")
    var stopped = plain
    stopped.stopAfter = 2
    let resumed = try self.model()
    XCTAssertNil(try stopped.run(resumed, dataset: data, communicator: comm, threads: 1, directory: directory))
    XCTAssertTrue(FileManager.default.fileExists(atPath: directory + "/recalibration-partial.json"))
    XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/recalibration.json"))
    let fresh = try self.model()
    var lines: [String] = []
    let result = try XCTUnwrap(try plain.run(fresh, dataset: data, communicator: comm, threads: 1, directory: directory) { lines.append($0) })
    XCTAssertFalse(result.reused)
    XCTAssertTrue(lines.contains { $0.contains("resuming the pass at batch 3") }, lines.joined(separator: "\n"))
    for (a, b) in zip(whole.batchNorms, fresh.batchNorms) {
      XCTAssertEqual(Array(UnsafeBufferPointer(start: a.runningMean.value, count: a.channels)), Array(UnsafeBufferPointer(start: b.runningMean.value, count: b.channels)))
      XCTAssertEqual(
        Array(UnsafeBufferPointer(start: a.runningVariance.value, count: a.channels)), Array(UnsafeBufferPointer(start: b.runningVariance.value, count: b.channels)))
    }
    XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/recalibration-partial.json"))

    let again = try self.model()
    let read = try XCTUnwrap(try plain.run(again, dataset: data, communicator: comm, threads: 1, directory: directory))
    XCTAssertTrue(read.reused)
    XCTAssertEqual(Array(UnsafeBufferPointer(start: again.bn1.runningVariance.value, count: again.bn1.channels)),
      Array(UnsafeBufferPointer(start: whole.bn1.runningVariance.value, count: whole.bn1.channels)))
    // Other settings do not reuse it.
    var other = plain
    other.seed = 3
    XCTAssertFalse(try XCTUnwrap(try other.run(try self.model(), dataset: data, communicator: comm, threads: 1, directory: directory)).reused)
  }
}

/// The mechanism's distances (docs/mechanism.md): a difference of means in the data's standard
/// deviations and the log of the variance ratio, per channel, averaged.
final class BatchNormDistanceTests: XCTestCase {
  func testDistancesAreInTheDataStandardDeviations() {
    let running = LayerStatistics(name: "bn1", mean: [0, 1], variance: [4, 1])
    let data = LayerStatistics(name: "bn1", mean: [2, 1], variance: [4, 4])
    let d = BatchNormDrift.distance(running, data, reference: data)
    // Channel 0: |0 - 2| / 2 = 1, log(4/4) = 0; channel 1: 0 / 2 = 0, |log(1/4)| = log 4. Every
    // input is a small integer, exact in Float; the sums are in Double (1e-12), and log 4 / 2
    // against log of Float values computed in Double (1e-6 leaves room for a Float rounding).
    XCTAssertEqual(d.mean, 0.5, accuracy: 1e-12)
    XCTAssertEqual(d.logVariance, log(4) / 2, accuracy: 1e-6)
    // The same layer with every activation scaled by 10 (a layer of another scale): the same
    // standardised distance.
    let scaled = BatchNormDrift.distance(
      LayerStatistics(name: "bn1", mean: [0, 10], variance: [400, 100]), LayerStatistics(name: "bn1", mean: [20, 10], variance: [400, 400]),
      reference: LayerStatistics(name: "bn1", mean: [20, 10], variance: [400, 400]))
    XCTAssertEqual(scaled.mean, d.mean, accuracy: 1e-12)
    XCTAssertEqual(scaled.logVariance, d.logVariance, accuracy: 1e-6)
    let rows = BatchNormDrift.distances(of: [running, running], from: [data, LayerStatistics(name: "bn2", mean: [0, 1], variance: [4, 1])])
    XCTAssertEqual(rows.map(\.layer), ["bn1", "bn2", "mean over layers"])
    XCTAssertEqual(rows[1].mean, 0)
    XCTAssertEqual(rows[2].mean, 0.25, accuracy: 1e-12)
  }
}
