// The in-process communicator on 2 and 3 ranks: its collectives, splits, messages and timeouts;
// then the data-parallel step on it (synchronized BatchNorm against one process, the gradient
// reducer's sums).
import Data
import Distributed
import Foundation
import NN
import Support
import Tensors
import TestSupport
import Training
import XCTest

/// A rank's error, to show which one `run` rethrows.
struct RankError: Error, Equatable {
  let rank: Int
}

final class InProcessCollectiveTests: XCTestCase {
  /// What one rank saw; compared on the test's thread (XCTest assertions stay off the ranks').
  struct Seen: Equatable {
    var broadcast: UInt64 = 0
    var floatSum: Float = 0
    var doubleSum: Double = 0
    var gathered: [UInt64] = []
    var gatheredVariable: [Float] = []
    var pendingBeforeOthers: Bool?
    var pendingAfterWait: Bool?
    var pending: [Float] = []
  }

  func testCollectivesOnTwoAndThreeRanks() throws {
    for ranks in [2, 3] {
      let seen = try InProcessGroup.run(ranks: ranks) { c -> Seen in
        var seen = Seen()
        try c.barrier()
        seen.broadcast = c.rank == ranks - 1 ? 0xFA17_0001 : 0
        try c.broadcast(&seen.broadcast, root: ranks - 1)
        // 2^24 + 1 rounds to 2^24 in fp32 (and 2^53 + 1 to 2^53 in fp64): added in rank order the
        // sum is 0 on every rank, in any other order it would be 1 somewhere.
        seen.floatSum = [16_777_216, 1, -16_777_216][c.rank]
        try c.allReduceSum(&seen.floatSum, count: 1)
        seen.doubleSum = try c.sum([9_007_199_254_740_992, 1, -9_007_199_254_740_992][c.rank])
        seen.gathered = try c.allGather(UInt64(100 + c.rank))
        let mine = (0...c.rank).map { Float(10 * c.rank + $0) }
        seen.gatheredVariable = [Float](repeating: .nan, count: ranks * (ranks + 1) / 2)
        try seen.gatheredVariable.withUnsafeMutableBufferPointer { all in
          try c.allGatherVariable(mine, count: mine.count, into: all.baseAddress!, counts: (0..<ranks).map { $0 + 1 })
        }
        return seen
      }
      // On two ranks the sum is 2^24 + 1 (2^53 + 1), rounded to even.
      let expectedFloat: Float = ranks == 2 ? 16_777_216 : 0
      let expectedDouble: Double = ranks == 2 ? 9_007_199_254_740_992 : 0
      for (rank, s) in seen.enumerated() {
        XCTAssertEqual(s.broadcast, 0xFA17_0001, "rank \(rank) of \(ranks)")
        XCTAssertEqual(s.floatSum, expectedFloat, "rank \(rank) of \(ranks)")
        XCTAssertEqual(s.doubleSum, expectedDouble, "rank \(rank) of \(ranks)")
        XCTAssertEqual(s.gathered, (0..<ranks).map { UInt64(100 + $0) })
        XCTAssertEqual(s.gatheredVariable, (0..<ranks).flatMap { r in (0...r).map { Float(10 * r + $0) } })
      }
    }
  }

  /// A started reduction is not complete while a rank has yet to start it, completes at wait,
  /// and several may be in flight, waited for in another order than started.
  func testNonblockingReductions() throws {
    for ranks in [2, 3] {
      let seen = try InProcessGroup.run(ranks: ranks) { c -> Seen in
        var seen = Seen()
        let first = UnsafeMutablePointer<Float>.allocate(capacity: 4)
        let second = UnsafeMutablePointer<Float>.allocate(capacity: 2)
        defer {
          first.deallocate()
          second.deallocate()
        }
        for i in 0..<4 { first[i] = Float(c.rank * 4 + i) }
        for i in 0..<2 { second[i] = Float(c.rank + 1) }
        // The last rank starts only when rank 0 says so, so rank 0's first test cannot see it done.
        if c.rank == ranks - 1 { _ = try c.receive(tag: 1, timeout: 30) }
        let a = try c.startAllReduceSum(first, count: 4)
        if c.rank == 0 {
          seen.pendingBeforeOthers = try a.test()
          try c.send([], to: ranks - 1, tag: 1)
        }
        let b = try c.startAllReduceSum(second, count: 2)
        try b.wait()
        try a.wait()
        seen.pendingAfterWait = try a.test()
        seen.pending = Array(UnsafeBufferPointer(start: first, count: 4)) + Array(UnsafeBufferPointer(start: second, count: 2))
        return seen
      }
      XCTAssertEqual(seen[0].pendingBeforeOthers, false)
      let sumOfRanks = Float(ranks * (ranks - 1) / 2)
      let expected = (0..<4).map { Float(ranks * $0) + 4 * sumOfRanks } + Array(repeating: sumOfRanks + Float(ranks), count: 2)
      for s in seen {
        XCTAssertEqual(s.pending, expected, "\(ranks) ranks")
        XCTAssertEqual(s.pendingAfterWait, true)
      }
    }
  }

  /// Groups by color, ordered by key (then by rank); a negative color gets no group; each group's
  /// collectives and messages stay within it.
  func testSplitFormsGroupsThatCommunicateWithinThemselves() throws {
    for ranks in [2, 3] {
      let seen = try InProcessGroup.run(ranks: ranks) { c -> [Int] in
        // Even and odd ranks, each group in reverse rank order.
        guard let parity = try c.split(color: c.rank % 2, key: -c.rank) else { return [-1] }
        let members = try parity.allGather(UInt64(c.rank)).map(Int.init)
        let total = try parity.sum(Double(c.rank))
        // The next rank of the group, round the ring, is sent this rank's world rank.
        try parity.send([UInt8(c.rank)], to: (parity.rank + 1) % parity.size, tag: 3)
        guard let message = try parity.receive(tag: 3, timeout: 30) else { throw RankError(rank: c.rank) }
        // Every rank but the last, in world order.
        let rest = try c.split(color: c.rank == ranks - 1 ? -1 : 0, key: c.rank)
        let restSize = try rest.map { try Int($0.sum(1)) } ?? 0
        return [parity.rank, parity.size] + members + [Int(total), message.source, Int(message.bytes[0]), restSize]
      }
      for (rank, s) in seen.enumerated() {
        let group = stride(from: rank % 2, to: ranks, by: 2).reversed().map { $0 }
        let index = group.firstIndex(of: rank)!
        let sender = group[(index + group.count - 1) % group.count]
        let restSize = rank == ranks - 1 ? 0 : ranks - 1
        XCTAssertEqual(
          s, [index, group.count] + group + [group.reduce(0, +), (index + group.count - 1) % group.count, sender, restSize],
          "rank \(rank) of \(ranks)")
      }
    }
  }

  /// Messages from any rank, by tag or any tag, in the order sent; nil after the timeout.
  func testSendAndReceive() throws {
    for ranks in [2, 3] {
      let seen = try InProcessGroup.run(ranks: ranks) { c -> [[Int]] in
        guard c.rank == 0 else {
          try c.send([UInt8(c.rank), 7], to: 0, tag: 7)
          try c.send([UInt8(c.rank), 8], to: 0, tag: 8)
          try c.barrier()
          return []
        }
        var got: [[Int]] = []
        // Tag 8 is taken before the tag 7 sent ahead of it, then the rest in arrival order.
        for _ in 1..<ranks {
          guard let m = try c.receive(tag: 8, timeout: 30) else { throw RankError(rank: 0) }
          got.append([m.source, m.tag] + m.bytes.map(Int.init))
        }
        for _ in 1..<ranks {
          guard let m = try c.receive(tag: nil, timeout: 30) else { throw RankError(rank: 0) }
          got.append([m.source, m.tag] + m.bytes.map(Int.init))
        }
        let start = Clock.now()
        let none = try c.receive(tag: nil, timeout: 0.2)
        got.append([none == nil ? 1 : 0, Clock.now() - start >= 0.2 ? 1 : 0])
        try c.barrier()
        return got
      }
      let got = seen[0]
      XCTAssertEqual(Set(got.prefix(ranks - 1)), Set((1..<ranks).map { [$0, 8, $0, 8] }))
      XCTAssertEqual(Set(got.dropFirst(ranks - 1).prefix(ranks - 1)), Set((1..<ranks).map { [$0, 7, $0, 7] }))
      XCTAssertEqual(got.last, [1, 1], "receive must return nil, and only after its timeout")
    }
  }

  /// A rank that never joins a collective: the others throw `timeout` once the communicator's
  /// limit has passed, instead of waiting for ever.
  func testACollectiveTimesOutWhenARankDoesNotJoin() throws {
    let limit = 0.5
    for ranks in [2, 3] {
      let absent = ranks - 1
      let seen = try InProcessGroup.run(ranks: ranks, timeout: limit) { c -> (error: Error?, seconds: Double) in
        if c.rank == absent {
          // Alive but elsewhere until each other rank has given up (so it is no "returned" rank).
          for _ in 1..<ranks { _ = try c.receive(tag: 1, timeout: 60) }
          return (nil, 0)
        }
        let start = Clock.now()
        do {
          try c.barrier()
          return (nil, Clock.now() - start)
        } catch {
          let seconds = Clock.now() - start
          try c.send([], to: absent, tag: 1)
          return (error, seconds)
        }
      }
      for rank in 0..<absent {
        guard case .timeout(let call, let seconds, let who)? = seen[rank].error as? CommunicatorError else {
          XCTFail("rank \(rank) of \(ranks): \(String(describing: seen[rank].error))")
          continue
        }
        XCTAssertEqual(call, "barrier")
        XCTAssertEqual(seconds, limit)
        XCTAssertEqual(who, rank)
        // Exact: a wait cannot give up before its deadline.
        XCTAssertGreaterThanOrEqual(seen[rank].seconds, limit)
        // The wait ends at its deadline; the slack is for a loaded machine's scheduling only.
        XCTAssertLessThan(seen[rank].seconds, limit + 5)
      }
    }
  }

  /// A rank that throws, returns early, or calls another collective ends the others' waits at
  /// once (well inside the 60 s limit), and `run` rethrows the first error.
  func testAFailingRankEndsTheOthersWaits() throws {
    let start = Clock.now()
    XCTAssertThrowsError(
      try InProcessGroup.run(ranks: 3) { c in
        if c.rank == 1 { throw RankError(rank: 1) }
        try c.barrier()
      }
    ) { XCTAssertEqual($0 as? RankError, RankError(rank: 1)) }
    XCTAssertThrowsError(
      try InProcessGroup.run(ranks: 2) { c in
        if c.rank == 0 { try c.barrier() }
      }
    ) { XCTAssertTrue("\($0)".contains("rank 1 returned without joining barrier"), "\($0)") }
    XCTAssertThrowsError(
      try InProcessGroup.run(ranks: 2) { c in
        if c.rank == 0 { try c.barrier() } else { _ = try c.sum(1) }
      }
    ) { XCTAssertTrue("\($0)".contains("where another rank called"), "\($0)") }
    // Far below the 60 s a stuck wait would take.
    XCTAssertLessThan(Clock.now() - start, 10)
  }
}

final class InProcessDataParallelTests: XCTestCase {
  private var workers = 0

  /// One worker per rank (as the mpirun tests' --threads 1): the ranks share the process's
  /// statics, and a k-split GEMM's scratch is one of them.
  override func setUp() {
    workers = Parallel.workers
    Parallel.workers = 1
  }

  override func tearDown() { Parallel.workers = workers }

  let imageSize = 12
  let classes = 5

  /// One global batch: random images, labels 1 with probability 0.3; `reversed`, the same
  /// images and labels in the opposite order.
  func globalBatch(_ batch: Int, reversed: Bool) -> (images: [Float], labels: [Float]) {
    var rng = SplitMix64(seed: 2)
    let pixels = imageSize * imageSize * 3
    var images = (0..<batch).map { _ in (0..<pixels).map { _ in rng.normal() } }
    var labels = (0..<batch).map { _ in (0..<classes).map { _ in rng.uniform() < 0.3 ? Float(1) : 0 } }
    if reversed {
      images.reverse()
      labels.reverse()
    }
    return (images.flatMap { $0 }, labels.flatMap { $0 })
  }

  /// What one step leaves: the global loss, every parameter's gradient and every parameter's and
  /// running statistic's value, by name.
  struct StepResult {
    var loss: Double
    var gradients: [String: [Float]]
    var values: [String: [Float]]
  }

  /// The trainer's step on a tiny ResNet-18 (the mpirun tests' model), from the same initial
  /// weights, on this rank's share of the global batch.
  func trainOneStep(batch: Int, on communicator: Communicator, synchronizedBatchNorm: Bool, reversed: Bool = false) throws -> StepResult {
    let model = try ResNet(ResNetConfiguration(depth: .resnet18, stem: .small, width: 0.0625, classes: classes), seed: 1)
    try Replicas.synchronize(model.registry, communicator: communicator)
    var statistics: SynchronizedStatistics?
    if synchronizedBatchNorm {
      let synchronized = SynchronizedStatistics(communicator: communicator)
      for bn in model.batchNorms { bn.reducer = synchronized }
      statistics = synchronized
    }
    // Small buckets, so that several reductions are in flight during backward.
    let reducer = GradientReducer(communicator: communicator, registry: model.registry, bucketBytes: 4096)
    let optimizer = SGD(model.registry, learningRate: 0.2)
    let step = TrainingStep(
      model: model, objective: .attributes, optimizer: optimizer, communicator: communicator, reducer: reducer, statistics: statistics)
    let (images, labels) = globalBatch(batch, reversed: reversed)
    let offset = DistributedSampler.offset(of: batch, rank: communicator.rank, ranks: communicator.size)
    let count = DistributedSampler.share(of: batch, rank: communicator.rank, ranks: communicator.size)
    let pixels = imageSize * imageSize * 3
    let shareImages = Tensor(shape: [count, imageSize, imageSize, 3], values: Array(images[(offset * pixels)..<((offset + count) * pixels)]))
    let shareLabels = Tensor(shape: [count, classes], values: Array(labels[(offset * classes)..<((offset + count) * classes)]))
    let loss = try step(
      TrainingBatch(images: shareImages.data, labels: shareLabels.data, count: count), imageSize: imageSize, globalBatch: batch
    ).loss
    var result = StepResult(loss: loss, gradients: [:], values: [:])
    // SGD's first step sets its momentum buffer to the gradient (torch's rule), which the
    // optimizer has zeroed in the registry by now.
    for (parameter, velocity) in zip(optimizer.parameters, optimizer.state) { result.gradients[parameter.name] = velocity.array }
    for entry in model.registry.entries { result.values[entry.name] = Array(UnsafeBufferPointer(start: entry.value, count: entry.count)) }
    return result
  }

  /// The largest of `relativeError` (max |a - b| / max |b|) over the tensors.
  func largestDifference(_ a: [String: [Float]], _ b: [String: [Float]]) -> Float {
    XCTAssertEqual(Set(a.keys), Set(b.keys))
    return b.keys.map { relativeError(a[$0]!, b[$0]!) }.max()!
  }

  /// Synchronized BatchNorm on 2 and 3 ranks (even and uneven shares) trains one step as one
  /// process does on the whole batch, up to the order of fp32 sums; local BatchNorm does not.
  ///
  /// The bounds. From the same weights, the split changes nothing but the order of sums over the
  /// batch: BatchNorm's fp32 partial sums (32 rows at a time, before fp64), the weight gradients'
  /// fp32 GEMM sums over images and pixels, and the sum of the ranks' parts in rank order. A
  /// reordered fp32 sum of n terms moves by up to 2(n - 1) 2^-24 of the sum of their magnitudes,
  /// so what that does to a tensor depends on how much its sums cancel: a BatchNorm bias's
  /// gradient, Σdy over up to 1,728 rows, comes out hundreds of its own ulps apart. No fixed
  /// figure knows that cancellation; one process on the same batch in reverse order changes
  /// exactly these sums' order and nothing else, so its difference from the forward order is
  /// this model's and batch's rounding noise. The split's difference is the same noise (the
  /// largest of a few thousand per-element differences between two orders, which varies from
  /// one pair of orders to another by well under a factor of 2), so it must stay below 4 times
  /// the reversed batch's. The loss is another matter: its 5 x batch BCE terms are all positive,
  /// so their sum does not cancel, and a reordered sum of at most 60 moves by at most
  /// 2 x 59 x 2^-24 = 7.0e-6 of it, the terms themselves a few ulps.
  func testSynchronizedBatchNormStepMatchesOneProcess() throws {
    for batch in [12, 10] {
      let one = try trainOneStep(batch: batch, on: LocalCommunicator(), synchronizedBatchNorm: false)
      let reversed = try trainOneStep(batch: batch, on: LocalCommunicator(), synchronizedBatchNorm: false, reversed: true)
      let noise = (gradients: largestDifference(reversed.gradients, one.gradients), values: largestDifference(reversed.values, one.values))
      print(String(format: "one process, batch %d in reverse order: gradients %.2e, weights and running statistics %.2e (max relative)",
        batch, noise.gradients, noise.values))
      XCTAssertGreaterThan(noise.gradients, 0, "reversing the batch changed no sum: the bound below would be void")
      for ranks in [2, 3] {
        let synchronized = try InProcessGroup.run(ranks: ranks) {
          try self.trainOneStep(batch: batch, on: $0, synchronizedBatchNorm: true)
        }
        let local = try InProcessGroup.run(ranks: ranks) {
          try self.trainOneStep(batch: batch, on: $0, synchronizedBatchNorm: false)
        }
        // Every rank adds the same reductions in the same order: the replicas stay bit-identical.
        for other in synchronized.dropFirst() {
          XCTAssertEqual(other.loss, synchronized[0].loss)
          XCTAssertEqual(other.values, synchronized[0].values)
        }
        let many = synchronized[0]
        let loss = abs(many.loss - one.loss) / abs(one.loss)
        let gradients = largestDifference(many.gradients, one.gradients)
        let values = largestDifference(many.values, one.values)
        let localValues = largestDifference(local[0].values, one.values)
        print(String(format: "in-process, batch %d, 1 vs %d ranks: loss %.2e, gradients %.2e, weights and running statistics %.2e (max relative); local BN: weights %.2e",
          batch, ranks, loss, gradients, values, localValues))
        let context = "batch \(batch) on \(ranks) ranks"
        XCTAssertLessThan(loss, 1e-5, context)  // 7.0e-6 for the sum's order, the rest for the terms' ulps
        XCTAssertLessThan(gradients, 4 * noise.gradients, context)  // the reordering noise, with its draw-to-draw spread
        XCTAssertLessThan(values, 4 * noise.values, context)  // the same noise, through one SGD step
        // Statistics over a share instead of the batch (a mean over 432-864 rows instead of
        // 1,440-1,728) move normalised values by percents: orders of magnitude above the noise.
        XCTAssertGreaterThan(localValues, 1e-3, context)
      }
    }
  }

  /// Each rank's gradients are known integers: after backward's bucket starts and `finish`, every
  /// rank holds their exact sum in every trainable parameter, and its own values in the frozen
  /// ones (never communicated).
  /// The bfloat16 wire on 2 ranks: each rank's value rounded to bfloat16, the two added in fp32
  /// and the sum rounded once more, on every rank.
  func testTheBFloat16WireRoundsEachShareAndTheSum() throws {
    let values: [[Float]] = [[1.5, -3.1415927, 1e-3, 65504.5, 1.0039063], [1.5078125, 3.1415927, -2e-3, 1.5, 2.0078125]]
    let seen = try InProcessGroup.run(ranks: 2) { c -> [Float] in
      var mine = values[c.rank]
      try mine.withUnsafeMutableBufferPointer { try c.startAllReduceSumBFloat16($0.baseAddress!, count: $0.count).wait() }
      return mine
    }
    let expected = (0..<5).map { BFloat16.rounded(BFloat16.rounded(values[0][$0]) + BFloat16.rounded(values[1][$0])) }
    XCTAssertEqual(seen[0], expected)
    XCTAssertEqual(seen[1], expected)
    XCTAssertEqual(seen[0][1], 0, "x - x is exactly 0 on the wire too")
    // 1.5 and 1.5078125 are bfloat16 values; their fp32 sum 3.0078125 is a tie between the
    // bfloat16 neighbours 3.0 and 3.015625 and goes to the even one.
    XCTAssertEqual(values[0][0] + values[1][0], 3.0078125)
    XCTAssertEqual(seen[0][0], 3.0)
    // 1 + 2^-8 and 2 + 2^-7 are ties themselves: each share rounds to even first.
    XCTAssertEqual(seen[0][4], 3.0)
  }

  func testReducerLeavesTheExactSumOnEveryRank() throws {
    // Both schedules: fifo (a bucket one all-reduce) and priority (a bucket in chunks of 100
    // bytes, at most two in flight: chunks that do not divide the bucket, and a queue).
    for (ranks, schedule) in [(2, CollectiveSchedule.fifo), (3, .fifo), (2, .priority), (3, .priority)] {
      let seen = try InProcessGroup.run(ranks: ranks) { c -> (gradients: [Float], trainable: [Bool], started: Int, buckets: Int, floats: Int) in
        let model = try ResNet(ResNetConfiguration(depth: .resnet18, stem: .small, width: 0.0625, classes: 5), seed: 1)
        let registry = model.registry
        for p in registry.parameters { p.requiresGradient = p.group == .head || p.kind == .normalization || p.stage == "layer4" }
        let reducer = GradientReducer(communicator: c, registry: registry, bucketBytes: 1024, schedule: schedule, chunkBytes: 100)
        registry.zeroGradients()
        reducer.beginStep()
        let g = registry.gradients.data
        // At most 3 x 4095, and every sum at most 6 x 4095: integers below 2^24, exact in fp32.
        for i in 0..<registry.gradients.count { g[i] = Float((c.rank + 1) * (i % 4096)) }
        // As backward reports them: from the last parameter to the first.
        for p in registry.parameters.reversed() { try reducer.gradientsReady(from: p.offset) }
        try reducer.finish()
        var trainable = [Bool](repeating: false, count: registry.gradients.count)
        for p in registry.parameters where p.requiresGradient { trainable.replaceSubrange(p.offset..<(p.offset + p.count), with: repeatElement(true, count: p.count)) }
        return (registry.gradients.array, trainable, reducer.startedDuringBackward, reducer.buckets.count, reducer.reducedFloats)
      }
      let rankSum = ranks * (ranks + 1) / 2
      for (rank, s) in seen.enumerated() {
        let expected = s.trainable.indices.map { Float((s.trainable[$0] ? rankSum : rank + 1) * ($0 % 4096)) }
        XCTAssertEqual(s.gradients, expected, "rank \(rank) of \(ranks), \(schedule)")
        // Counts: 1 KiB buckets split the trainable gradients into several, and the frozen
        // parameters' floats are never sent.
        XCTAssertGreaterThan(s.buckets, 1)
        XCTAssertEqual(s.started, s.buckets, "every bucket starts during backward")
        XCTAssertEqual(s.floats, s.trainable.filter { $0 }.count)
        XCTAssertLessThan(s.floats, s.gradients.count)
      }
    }
  }
}
