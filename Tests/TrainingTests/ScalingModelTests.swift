// The scaling model: the collective cost formulas, the fit against a known truth, the step replay
// on a trace whose answer is worked out by hand, and the trace of the trainer's real step.
import Distributed
import Experiment
import NN
import Support
import Tensors
import XCTest

@testable import Training

final class ScalingModelTests: XCTestCase {
  func testCostFormulasFollowTheAlgorithms() {
    let cost = LinkCost(alpha: 1e-4, beta: 1e-9)
    // Hand-worked values in Double, a few terms below 0.2 s: rounding is ~1e-17, far inside
    // 1e-12 (1e-9 for the ring's 14 steps).
    // Two ranks: one exchange of the buffer either way.
    XCTAssertEqual(Collective.allReduce.seconds(bytes: 1_000_000, ranks: 2, cost: cost), 1e-4 + 1e-3, accuracy: 1e-12)
    // Small messages on 8 ranks: recursive doubling, 3 rounds.
    XCTAssertEqual(Collective.allReduce.seconds(bytes: 8, ranks: 8, cost: cost), 3 * (1e-4 + 8e-9), accuracy: 1e-12)
    // Large messages on 8 ranks: the ring, 14 steps of an eighth of the buffer.
    XCTAssertEqual(Collective.allReduce.seconds(bytes: 100_000_000, ranks: 8, cost: cost), 14e-4 + 1.75e-1, accuracy: 1e-9)
    // The ring's bytes term stays below twice the buffer however many ranks: 2(p - 1)/p x 1e8
    // bytes at 1e-9 s per byte is below 0.2 s exactly.
    XCTAssertLessThan(Collective.allReduce.seconds(bytes: 100_000_000, ranks: 512, cost: LinkCost(alpha: 0, beta: 1e-9)), 0.2)
    XCTAssertEqual(Collective.allGather.seconds(bytes: 4096, ranks: 4, cost: cost), 2e-4 + 0.75 * 4096e-9, accuracy: 1e-12)
    XCTAssertEqual(Collective.allReduce.seconds(bytes: 1 << 20, ranks: 1, cost: cost), 0)
  }

  func testTheFitRecoversKnownCostsFromNoisyTimings() {
    let truth: [Collective: LinkCost] = [
      .allReduce: LinkCost(alpha: 80e-6, beta: 8e-8), .allGather: LinkCost(alpha: 50e-6, beta: 1e-8), .broadcast: LinkCost(alpha: 30e-6, beta: 2e-8),
    ]
    var rng = SplitMix64(seed: 11)
    var points: [CollectiveProfile.Point] = []
    for collective in Collective.allCases {
      for ranks in [2, 3, 4] {
        for bytes in [16, 512, 4096, 65536, 1 << 20, 8 << 20] {
          // 5% multiplicative noise.
          let t = collective.seconds(bytes: bytes, ranks: ranks, cost: truth[collective]!) * (1 + 0.05 * Double(rng.normal()))
          points.append(.init(collective: collective, bytes: bytes, ranks: ranks, seconds: t))
        }
      }
    }
    let profile = CollectiveProfile.fit(points, source: "simulated")
    // 5% noise on each of 18 timings per collective: alpha, beta and the extrapolation come out
    // within a few percent (1.0-2.8% with this seed); 0.1 is some 5 standard errors.
    for collective in Collective.allCases {
      let fitted = profile.costs[collective]!, real = truth[collective]!
      XCTAssertEqual(fitted.alpha / real.alpha, 1, accuracy: 0.1, "\(collective) alpha")
      XCTAssertEqual(fitted.beta / real.beta, 1, accuracy: 0.1, "\(collective) beta")
      // Extrapolation to a rank count that was not measured.
      let predicted = profile.seconds(collective, bytes: 1 << 20, ranks: 64)
      let exact = collective.seconds(bytes: 1 << 20, ranks: 64, cost: real)
      XCTAssertEqual(predicted / exact, 1, accuracy: 0.1, "\(collective) at 64 ranks")
    }
  }

  func testTheFitStaysNonNegative() {
    // Timings that fall with size: a line through them would have a negative slope.
    let points = [16, 1024, 65536].enumerated().map { i, bytes in
      CollectiveProfile.Point(collective: .allReduce, bytes: bytes, ranks: 2, seconds: 1e-3 / Double(i + 1))
    }
    let cost = CollectiveProfile.fit(points, source: "odd").costs[.allReduce]!
    // Exact: the constraint itself, and a fit that is not all zero.
    XCTAssertGreaterThanOrEqual(cost.alpha, 0)
    XCTAssertGreaterThanOrEqual(cost.beta, 0)
    XCTAssertGreaterThan(cost.alpha + cost.beta, 0)
  }

  /// The priority schedule and the bfloat16 wire in the replay, on `bucketThenSum`.
  func testTheReplayFollowsTheScheduleAndTheWire() {
    let trace = Self.bucketThenSum
    let profile = CollectiveProfile.nominal(latency: 0, bandwidth: 1e8)
    // Priority: the sum goes at 6 ms (0.01 ms) and pushes the bucket back to 14.01 ms; compute
    // to 9.01 ms, the wait for the bucket 5 ms, then 1 ms: 15.01 ms.
    let priority = StepSimulation.predict(trace, ranks: 2, profile: profile, schedule: .priority)
    XCTAssertEqual(priority.seconds, 0.01501, accuracy: 1e-9)
    XCTAssertEqual(priority.batchNorm, 0.00001, accuracy: 1e-9)
    XCTAssertEqual(priority.gradient, 0.005, accuracy: 1e-9)
    // The bfloat16 wire, fifo: the bucket's half a megabyte holds the link 4..9 ms; the sum waits
    // to 9.01 ms, 3 ms of compute to 12.01 ms, the bucket is through, 1 ms more.
    let halved = StepSimulation.predict(trace, ranks: 2, profile: profile, wire: .bf16)
    XCTAssertEqual(halved.seconds, 0.01301, accuracy: 1e-9)
    XCTAssertEqual(halved.batchNorm, 0.00301, accuracy: 1e-9)
    // Both: the sum at once, the bucket 4..9.01 ms, done before the wait at 9.01 ms: 10.01 ms.
    let both = StepSimulation.predict(trace, ranks: 2, profile: profile, schedule: .priority, wire: .bf16)
    XCTAssertEqual(both.seconds, 0.01001, accuracy: 1e-9)
    XCTAssertEqual(both.gradient, 0, accuracy: 1e-12)
  }

  /// 10 ms of compute; a 1 MB bucket starts at 4 ms, a BatchNorm sum is issued at 6 ms, the
  /// bucket is waited for at 9 ms.
  static let bucketThenSum: StepTrace = {
    typealias E = TracingCommunicator.Event
    return StepTrace(
      events: [
        E(kind: .startAllReduce, bytes: 1_000_000, at: 0.004, source: "gradient", id: 0),
        E(kind: .allReduce, bytes: 1000, at: 0.006, source: "batchnorm"),
        E(kind: .wait, bytes: 0, at: 0.009, source: "gradient", id: 0),
      ],
      seconds: 0.010, ranks: 2)
  }()

  func testTheReplayQueuesCollectivesOnTheLink() {
    let trace = Self.bucketThenSum
    // 100 MB/s, no latency: the bucket holds the link from 4 to 14 ms; the sum goes after it
    // (14.01 ms), 8.01 ms of waiting; 3 ms of compute later the bucket is long done; 1 ms more.
    let profile = CollectiveProfile.nominal(latency: 0, bandwidth: 1e8)
    let p = StepSimulation.predict(trace, ranks: 2, profile: profile)
    // Hand-worked times in Double, sums of a few terms below 0.2 s: exact to ~1e-17.
    XCTAssertEqual(p.seconds, 0.01801, accuracy: 1e-9)
    XCTAssertEqual(p.batchNorm, 0.00801, accuracy: 1e-9)
    XCTAssertEqual(p.gradient, 0, accuracy: 1e-12)
    XCTAssertEqual(p.bottleneck, "compute")
    // On a 10x slower link the bucket is not through when the step waits for it.
    let slow = StepSimulation.predict(trace, ranks: 2, profile: .nominal(latency: 0, bandwidth: 1e7))
    // Bucket 4..104 ms, the sum 104..104.1, then 3 ms of compute to 107.1; the bucket is done.
    XCTAssertEqual(slow.seconds, 0.1081, accuracy: 1e-9)
    XCTAssertEqual(slow.bottleneck, "BatchNorm sync")
    // Without the BatchNorm sum, the wait is for the bucket.
    var alone = trace
    alone.events.remove(at: 1)
    let exposed = StepSimulation.predict(alone, ranks: 2, profile: .nominal(latency: 0, bandwidth: 1e7))
    XCTAssertEqual(exposed.gradient, 0.104 - 0.009, accuracy: 1e-9)
    XCTAssertEqual(exposed.seconds, 0.105, accuracy: 1e-9)
    // One rank communicates nothing: the step is its compute.
    XCTAssertEqual(StepSimulation.predict(trace, ranks: 1, profile: profile).seconds, 0.010, accuracy: 1e-12)
  }

  /// The trainer's own step, traced as rank 0 of 3: every collective it issues is there, at the
  /// sizes the model implies.
  func testTheTraceHoldsTheCollectivesOfEachStep() throws {
    for (name, strategy, simclr) in [("full", Strategy?.none, false), ("bn-stats", .bnStats, false), ("frozen", .frozen, false), ("simclr", nil, true)] {
      var configuration = ResNetConfiguration(depth: .resnet18, stem: .small, width: 0.0625, classes: simclr ? nil : 40)
      if simclr { configuration.projection = ProjectionSize(hidden: try ResNet(configuration).featureDimension, output: 16) }
      let model = try ResNet(configuration, seed: 3)
      strategy?.apply(to: model)
      let tracer = TracingCommunicator(size: 3)
      let statistics = SynchronizedStatistics(communicator: tracer.labelled("batchnorm"))
      for bn in model.batchNorms { bn.reducer = statistics }
      let reducer = GradientReducer(communicator: tracer.labelled("gradient"), registry: model.registry, bucketBytes: 1 << 16)
      let step = TrainingStep(
        model: model, objective: simclr ? .simclr(temperature: 0.1) : .attributes,
        optimizer: SGD(model.registry, learningRate: 0.01), communicator: tracer, reducer: reducer, statistics: statistics)
      let share = 2, size = 16
      let images = Tensor(shape: [(simclr ? 2 : 1) * share, size, size, 3])
      let labels = Tensor(shape: [share, 40])
      var rng = SplitMix64(seed: 4)
      for i in 0..<images.count { images.data[i] = rng.normal() }
      tracer.mark()
      _ = try step(TrainingBatch(images: images.data, labels: simclr ? nil : labels.data, count: share, globalCount: 3 * share), imageSize: size, globalBatch: 3 * share)
      let (events, seconds) = tracer.take()
      // Any positive time: the step was timed.
      XCTAssertGreaterThan(seconds, 0)
      XCTAssertEqual(events.map(\.at), events.map(\.at).sorted(), name)
      let batchNorms = model.batchNorms.count
      let bnEvents = events.filter { $0.source == "batchnorm" }
      let starts = events.filter { $0.kind == .startAllReduce }
      let trainable = model.registry.parameters { $0.requiresGradient }.reduce(0) { $0 + $1.count }
      XCTAssertEqual(starts.count, reducer.buckets.count, name)
      XCTAssertEqual(starts.reduce(0) { $0 + $1.bytes }, 4 * trainable, name)
      XCTAssertEqual(events.filter { $0.kind == .wait }.count, starts.count, name)
      switch name {
      case "full", "simclr":
        // A sum in forward and one in backward per BatchNorm, each [Σ (C), Σ² (C), count] in Double.
        XCTAssertEqual(bnEvents.count, 2 * batchNorms, name)
        XCTAssertEqual(bnEvents.reduce(0) { $0 + $1.bytes }, 2 * model.batchNorms.reduce(0) { $0 + 8 * (2 * $1.channels + 1) }, name)
      case "bn-stats":
        // Statistics move in forward; nothing goes backward through a frozen backbone.
        XCTAssertEqual(bnEvents.count, batchNorms, name)
      default:
        XCTAssertEqual(bnEvents.count, 0, name)
      }
      let gathers = events.filter { $0.kind == .allGather }
      if simclr {
        // Two views of every image of the global batch, 16 floats each.
        XCTAssertEqual(gathers.map(\.bytes), [2 * 3 * share * 16 * 4])
      } else {
        XCTAssertTrue(gathers.isEmpty, name)
      }
    }
  }
}

final class SweepScalingTests: XCTestCase {
  /// Hand-worked fractions in Double: exact to ~1e-16, so 1e-12.
  func testTheSweepIsAsBusyAsItsGroups() {
    // One rank runs the trials itself.
    XCTAssertEqual(StepSimulation.sweepEfficiency(trials: 10, ranks: 1, groupSize: 1, stepEfficiency: 1), 1)
    // Two ranks: the coordinator and one worker.
    XCTAssertEqual(StepSimulation.sweepEfficiency(trials: 10, ranks: 2, groupSize: 1, stepEfficiency: 1), 0.5, accuracy: 1e-12)
    // 9 ranks, 8 workers, 16 trials: two full waves.
    XCTAssertEqual(StepSimulation.sweepEfficiency(trials: 16, ranks: 9, groupSize: 1, stepEfficiency: 1), 8.0 / 9, accuracy: 1e-12)
    // 17 trials: a third wave with one trial busy of 8.
    XCTAssertEqual(StepSimulation.sweepEfficiency(trials: 17, ranks: 9, groupSize: 1, stepEfficiency: 1), 17.0 / 24 * 8 / 9, accuracy: 1e-12)
    // More workers than trials: the rest wait.
    XCTAssertEqual(StepSimulation.sweepEfficiency(trials: 4, ranks: 65, groupSize: 1, stepEfficiency: 1), 4.0 / 65, accuracy: 1e-12)
    // Groups of 4 with their own step efficiency; a rank left over from the groups is idle.
    XCTAssertEqual(StepSimulation.sweepEfficiency(trials: 2, ranks: 10, groupSize: 4, stepEfficiency: 0.9), 8.0 / 10 * 0.9, accuracy: 1e-12)
  }
}
