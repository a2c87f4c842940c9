// In one process: the sampler's split, bucket layout, and the synchronized paths against the plain ones.
import Data
import Distributed
import NN
import Support
import Tensors
import Training
import XCTest

final class SamplerTests: XCTestCase {
  func testSharesCoverTheBatchOnceWithUnevenSplits() {
    for (batch, ranks) in [(10, 3), (64, 2), (7, 7), (5, 1)] {
      var covered: [Int] = []
      for r in 0..<ranks {
        let offset = DistributedSampler.offset(of: batch, rank: r, ranks: ranks)
        covered += Array(offset..<(offset + DistributedSampler.share(of: batch, rank: r, ranks: ranks)))
      }
      XCTAssertEqual(covered, Array(0..<batch), "batch \(batch) on \(ranks) ranks")
    }
    XCTAssertEqual((0..<3).map { DistributedSampler.share(of: 10, rank: $0, ranks: 3) }, [4, 3, 3])
  }

  func testEveryImageOncePerEpochAcrossRanks() {
    let ranks = 3
    let samplers = (0..<ranks).map { DistributedSampler(datasetSize: 23, globalBatch: 5, rank: $0, ranks: ranks, seed: 9) }
    for epoch in 0..<2 {
      let order = samplers[0].permutation(epoch: epoch)
      XCTAssertEqual(samplers[2].permutation(epoch: epoch), order, "ranks must shuffle alike")
      var seen: [Int] = []
      for step in 0..<samplers[0].stepsPerEpoch {
        for s in samplers { seen += s.indices(step: step, permutation: order) }
      }
      XCTAssertEqual(seen.sorted(), Array(0..<23), "epoch \(epoch)")
    }
    XCTAssertNotEqual(samplers[0].permutation(epoch: 0), samplers[0].permutation(epoch: 1))
    // 23 = 4 * 5 + 3, and the partial batch of 3 still gives each of 3 ranks an image.
    XCTAssertEqual(samplers[0].stepsPerEpoch, 5)
    XCTAssertEqual(DistributedSampler(datasetSize: 22, globalBatch: 5, rank: 0, ranks: 3, seed: 1).stepsPerEpoch, 4)
  }
}

final class ReducerTests: XCTestCase {
  func testBucketsFollowReverseLayerOrderAndSkipFrozenParameters() throws {
    let model = try ResNet(ResNetConfiguration(depth: .resnet18, width: 0.25, classes: 40))
    let registry = model.registry
    let reducer = GradientReducer(communicator: LocalCommunicator(), registry: registry, bucketBytes: 1 << 20)
    var covered = 0
    var previousStart = Int.max
    // Exact offsets and sizes: buckets are contiguous and hold at most 1 MiB, or one parameter
    // larger than that.
    for bucket in reducer.buckets {
      XCTAssertLessThanOrEqual(bucket.range.upperBound, previousStart, "buckets must go from the end of the buffer to its start")
      XCTAssertLessThanOrEqual(bucket.range.count * 4, max(1 << 20, registry.parameters.map(\.count).max()! * 4))
      previousStart = bucket.range.lowerBound
      covered += bucket.range.count
    }
    XCTAssertEqual(covered, registry.parameterCount)
    for bucket in reducer.buckets {
      let stages = Set(registry.parameters.filter { bucket.range.contains($0.offset) }.map { $0.name.hasPrefix("layer") ? String($0.name.prefix(6)) : $0.group.rawValue })
      XCTAssertEqual(stages.count, 1, "a bucket spans stages \(stages)")
    }

    for p in registry.parameters { p.requiresGradient = p.group == .head || p.kind == .normalization }
    reducer.rebuild()
    let trainable = registry.parameters.filter(\.requiresGradient).reduce(0) { $0 + $1.count }
    XCTAssertEqual(reducer.buckets.reduce(0) { $0 + $1.range.count }, trainable)
    for bucket in reducer.buckets {
      for p in registry.parameters where !p.requiresGradient {
        XCTAssertFalse(bucket.range.overlaps(p.offset..<(p.offset + p.count)), "\(p.name) is frozen but communicated")
      }
    }
  }

  /// Synchronized BatchNorm and the gradient reducer over a group of one give exactly the plain
  /// path's numbers.
  func testLocalCommunicatorPathsMatchThePlainPath() throws {
    func train(distributed: Bool) throws -> ([Float], [Float]) {
      let model = try ResNet(ResNetConfiguration(depth: .resnet18, stem: .small, width: 0.0625, classes: 4), seed: 3)
      let comm = LocalCommunicator()
      let reducer = GradientReducer(communicator: comm, registry: model.registry, bucketBytes: 4096)
      if distributed {
        let statistics = SynchronizedStatistics(communicator: comm)
        for bn in model.batchNorms { bn.reducer = statistics }
        try Replicas.synchronize(model.registry, communicator: comm)
      }
      var rng = SplitMix64(seed: 5)
      let x = Tensor(shape: [3, 8, 8, 3])
      for i in 0..<x.count { x.data[i] = rng.normal() }
      let targets = Tensor(shape: [3, 4], values: (0..<12).map { Float($0 % 2) })
      let g = Tensor(shape: [3, 4])
      let optimizer = SGD(model.registry, learningRate: 0.1)
      var losses: [Float] = []
      for _ in 0..<3 {
        model.registry.zeroGradients()
        reducer.beginStep()
        let logits = model.forward(FeatureMap(data: x.data, batch: 3, height: 8, width: 8, channels: 3))
        losses.append(Losses.binaryCrossEntropyWithLogits(logits: logits, targets: targets.data, count: 12, gradient: g.data))
        if distributed {
          model.backward(g.data) { try? reducer.gradientsReady(from: $0) }
          try reducer.finish()
        } else {
          model.backward(g.data)
        }
        optimizer.step()
      }
      return (losses, model.registry.values.array + model.registry.state.array)
    }
    let plain = try train(distributed: false)
    let synced = try train(distributed: true)
    XCTAssertEqual(plain.0, synced.0)
    XCTAssertEqual(plain.1, synced.1)
  }

  func testReplicaDigestCatchesADifferentReplica() throws {
    let model = try ResNet(ResNetConfiguration(depth: .resnet18, width: 0.0625, classes: 2))
    XCTAssertNoThrow(try Replicas.synchronize(model.registry, communicator: LocalCommunicator()))
    let a = digest(UnsafeRawBufferPointer(start: model.registry.values.data, count: model.registry.values.count * 4))
    model.registry.values.data[7] += 1e-6
    let b = digest(UnsafeRawBufferPointer(start: model.registry.values.data, count: model.registry.values.count * 4))
    XCTAssertNotEqual(a, b)
  }
}
