// The batch loader: the distributed sampler's indices, the same batches on any thread count,
// two SimCLR views, and the wait it measures.
import CelebAFormat
import Foundation
import Tensors
import XCTest

@testable import Data

final class LoaderTests: XCTestCase {
  static var packed: URL!

  /// One small packed dataset for all loader tests.
  func dataset() throws -> PackedDataset {
    if Self.packed == nil {
      let root = FileManager.default.temporaryDirectory.appendingPathComponent("fairtune-loader-\(UUID().uuidString)")
      try writeSynthetic(
        SynthesisPlan(train: 30, validation: 5, test: 5, imageSize: 24, seed: 3),
        to: root.appendingPathComponent("synth"))
      let output = try OutputDirectory(root.appendingPathComponent("packed"), option: "--out")
      _ = try Packer.pack(
        celebA: root.appendingPathComponent("synth"), imageSize: 16, into: output, skipBadImages: false)
      try output.commit()
      Self.packed = root.appendingPathComponent("packed")
    }
    return try PackedDataset(path: Self.packed)
  }

  override class func tearDown() {
    if let packed { try? FileManager.default.removeItem(at: packed.deletingLastPathComponent()) }
  }

  func testEpochsOfTheDistributedSamplerCoverEachTrainImageOncePerRankPair() throws {
    let data = try dataset()
    let train = data.train
    var seen: [Int] = []
    for rank in 0..<2 {
      let sampler = DistributedSampler(datasetSize: train.count, globalBatch: 8, rank: rank, ranks: 2, seed: 4)
      let schedule = BatchSchedule.epochs(sampler, images: train, epochs: 2)
      XCTAssertEqual(schedule.steps, 2 * sampler.stepsPerEpoch)
      let loader = BatchLoader(dataset: data, schedule: schedule, transform: .none, threads: 2, seed: 1)
      var step = 0
      while let batch = loader.next() {
        if step < sampler.stepsPerEpoch { seen += batch.indices }
        XCTAssertEqual(batch.step, step)
        step += 1
      }
      XCTAssertEqual(step, schedule.steps)
    }
    XCTAssertEqual(seen.sorted(), train)
  }

  func testBatchesDoNotDependOnTheThreadCount() throws {
    let data = try dataset()
    let schedule = BatchSchedule(steps: 5) { step in Array((step * 3)..<(step * 3 + 6)) }
    let transform = Transform.simCLR(SimCLRAugmentation(strength: 1, blur: true))
    let one = BatchLoader(dataset: data, schedule: schedule, transform: transform, threads: 1, seed: 9)
    let three = BatchLoader(dataset: data, schedule: schedule, transform: transform, threads: 3, prefetch: 4, seed: 9)
    for _ in 0..<5 {
      let a = try XCTUnwrap(one.next())
      let b = try XCTUnwrap(three.next())
      XCTAssertEqual(a.images.array, b.images.array)
      XCTAssertEqual(a.secondView?.array, b.secondView?.array)
      XCTAssertNotEqual(a.images.array, a.secondView?.array, "the two SimCLR views must differ")
    }
    XCTAssertEqual(one.batchesServed, 5)
  }

  func testFinetuneTransformFlipsAndCropsButKeepsLabels() throws {
    let data = try dataset()
    let schedule = BatchSchedule(steps: 1) { _ in [0, 1, 2, 3] }
    let plain = BatchLoader(dataset: data, schedule: schedule, transform: .none, threads: 1, seed: 2).next()!
    let augmented = BatchLoader(dataset: data, schedule: schedule, transform: .finetuneDefault, threads: 1, seed: 2)
      .next()!
    XCTAssertNil(augmented.secondView)
    XCTAssertEqual(plain.labels.array, augmented.labels.array)
    XCTAssertNotEqual(plain.images.array, augmented.images.array)
  }

  func testWaitingIsMeasuredAndAnEarlyDropStopsTheThreads() throws {
    let data = try dataset()
    let schedule = BatchSchedule(steps: 1000) { step in [step % 40] }
    let before = BatchLoader.liveWorkers
    let start = Clock.now()
    var loader: BatchLoader? = BatchLoader(dataset: data, schedule: schedule, transform: .none, threads: 2, seed: 0)
    XCTAssertNotNil(loader?.next())
    let elapsed = Clock.now() - start
    let waited = loader!.waitSeconds
    XCTAssertTrue(waited >= 0 && waited <= elapsed, "waited \(waited) s of \(elapsed) s")
    XCTAssertEqual(BatchLoader.liveWorkers, before + 2, "the loader runs its two threads")
    // Dropping the loader with 999 steps left must stop its threads and return (not hang):
    // when the drop returns, they have returned.
    loader = nil
    XCTAssertEqual(BatchLoader.liveWorkers, before, "the loader's threads ended when it was dropped")
  }

  func testAttributeCasesFollowCelebAsOrder() {
    XCTAssertEqual(Attribute.allCases.count, CelebA.attributeCount)
    for attribute in Attribute.allCases {
      let name = CelebA.attributeNames[attribute.rawValue].replacingOccurrences(of: "_", with: "").lowercased()
      let expected = attribute == .fiveOClockShadow ? "5oclockshadow" : "\(attribute)".lowercased()
      XCTAssertEqual(name, expected)
    }
  }
}

extension LoaderTests {
  func testDropLastLeavesOutEachEpochsSmallerBatch() throws {
    let data = try dataset()
    let sampler = DistributedSampler(datasetSize: 30, globalBatch: 8, rank: 1, ranks: 2, seed: 4)
    let dropping = DistributedSampler(datasetSize: 30, globalBatch: 8, rank: 1, ranks: 2, seed: 4, dropLast: true)
    XCTAssertEqual(dropping.stepsPerEpoch, 3)
    let all = BatchSchedule.epochs(sampler, images: data.train, epochs: 2)
    let full = BatchSchedule.epochs(dropping, images: data.train, epochs: 2)
    XCTAssertEqual(all.steps, 8)
    XCTAssertEqual(all.indices(3).count, 3)
    XCTAssertEqual(full.steps, 6)
    XCTAssertEqual((0..<6).map { full.indices($0).count }, Array(repeating: 4, count: 6))
    XCTAssertEqual(full.indices(3), all.indices(4), "the second epoch starts after three full steps")
  }
}
