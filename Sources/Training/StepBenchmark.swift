// What `fairtune bench` measures, as a job: the trainer's data-parallel step on one fixed random
// global batch (images per second, GFLOP/s against the sgemm ceiling, the share of each layer
// type, the MPI figures), the step traced as rank 0 of N ranks, and the collectives that step
// issues timed on real links (the scaling model's profile).
import Data
import Distributed
import Experiment
import Foundation
import NN
import Support
import Tensors

/// What a benchmarked step trains for.
public enum ObjectiveKind: String, CaseIterable, Sendable {
  /// A fine-tuning step: 40-way (or --classes) binary cross-entropy.
  case attributes
  /// A pretraining step: two views, the projection head, NT-Xent over the global batch.
  case simclr

  public var objective: Objective { self == .simclr ? .simclr(temperature: 0.1) : .attributes }
}

/// The convolution methods a model may be told to use (`--conv`), and the optimizers and
/// schedules a run may train with (`--optimizer`, `--schedule`), under the names the command line uses.
public typealias ConvolutionMethod = ConvolutionAlgorithm
public typealias OptimizerChoice = OptimizerKind
public typealias ScheduleChoice = ScheduleKind

public struct StepBenchmark {
  public var model: ModelSpec
  /// Outputs of the head (fine-tuning steps).
  public var classes = 40
  /// The global batch, split over the ranks.
  public var batch = 64
  public var steps = 10
  public var warmup = 2
  public var convolution = ConvolutionMethod.winograd
  public var learningRate: Float = 0.01
  public var objective = ObjectiveKind.attributes
  /// A fine-tuning strategy's step (its frozen parts get no gradients); nil: everything trains.
  public var strategy: Strategy?
  public var parallel = DataParallelSettings()

  public init(model: ModelSpec) {
    self.model = model
  }

  /// What the step is, for the first result line.
  public var description: String {
    objective == .simclr ? "SimCLR pretraining" : strategy.map { "\($0.rawValue) fine-tuning" } ?? "full fine-tuning"
  }

  /// The model the step trains: with the projection head for SimCLR, with the strategy's frozen
  /// parts frozen.
  public func makeModel() throws -> ResNet {
    let simclr = objective == .simclr
    var configuration = model.configuration(classes: simclr ? nil : classes)
    if simclr { configuration.projection = ProjectionSize(hidden: try ResNet(configuration).featureDimension, output: 128) }
    let network = try ResNet(configuration, seed: 1)
    network.setConvolutionAlgorithm(convolution)
    strategy?.apply(to: network)
    return network
  }

  /// The timed steps on `communicator`'s ranks; `beforeTiming` runs after the replicas are made
  /// alike and before the first step (the command line's injected faults). With
  /// `gradientDump`, the first step's summed gradients are written there (rank 0); with
  /// `keepWeights`, the measurement holds a copy of the final weights (for `bench --dump`).
  public func measure(
    on communicator: Communicator, beforeTiming: () -> Void = {}, gradientDump: String? = nil, keepWeights: Bool = false
  ) throws -> StepMeasurement {
    guard batch >= communicator.size else {
      throw CommunicatorError.mismatch("--batch \(batch) is smaller than the \(communicator.size) ranks: every rank needs at least one image")
    }
    let network = try makeModel()
    try Replicas.synchronize(network.registry, communicator: communicator, perturbRank: parallel.perturbRank)
    let step = try TrainingStep.dataParallel(
      network, objective: objective.objective, optimizer: SGD(network.registry, learningRate: learningRate, momentum: 0.9),
      communicator: communicator, settings: parallel)
    step.gradientDump = gradientDump
    let (images, labels, share) = randomShare(rank: communicator.rank, ranks: communicator.size, outputs: network.outputDimension)
    var losses: [Double] = []
    func once() throws {
      losses.append(try step(share, imageSize: model.imageSize, globalBatch: batch).loss)
    }
    let sgemm = BLAS.measureGFLOPs()
    beforeTiming()
    for _ in 0..<warmup { try once() }
    Profiler.reset()
    Profiler.enabled = true
    var times: [Double] = []
    var exposed: [Double] = []
    var synchronized: [Double] = []
    for _ in 0..<steps {
      try communicator.barrier()
      let start = Clock.now()
      try once()
      times.append(Clock.now() - start)
      exposed.append(step.reducer.exposedSeconds)
      synchronized.append(step.statistics?.seconds ?? 0)
    }
    Profiler.enabled = false
    withExtendedLifetime((images, labels)) {}
    let total = times.reduce(0, +)
    let stepSeconds = median(times)
    let flops = network.lastFLOPs
    var measurement = StepMeasurement(
      parameters: network.registry.parameterCount, imagesPerRank: share.count, stepSeconds: stepSeconds, steps: steps, losses: losses,
      gflops: try communicator.sum(flops.training) / stepSeconds / 1e9, sgemmGFLOPs: sgemm,
      gflopPerImage: flops.training / Double(share.count) / 1e9,
      timeShares: LayerType.allCases.map { ($0.rawValue, Profiler.seconds[$0, default: 0] / total) },
      convolutions: Self.convolutionRows(steps: steps, total: total), peakResidentBytes: ResourceUsage.peakResidentBytes(),
      weights: keepWeights ? network.registry.entries.map { ($0.name, $0.shape, $0.torchOrdered()) } : [])
    if communicator.size > 1 {
      let plain = try Self.plainAllReduceSeconds(communicator, floats: step.reducer.reducedFloats)
      measurement.communication = StepMeasurement.Communication(
        buckets: step.reducer.buckets.count, batchNormCalls: step.statistics?.calls ?? 0, exposedSeconds: median(exposed),
        batchNormSeconds: median(synchronized), plainAllReduceSeconds: plain, gradientBytes: Double(step.reducer.reducedFloats * 4))
    }
    return measurement
  }

  /// One global batch of random images and labels, the same on every rank, and this rank's share
  /// of it (for SimCLR, the first views of the share, then the second views).
  func randomShare(rank: Int, ranks: Int, outputs: Int) -> (Tensor, Tensor, TrainingBatch) {
    let offset = DistributedSampler.offset(of: batch, rank: rank, ranks: ranks)
    let count = DistributedSampler.share(of: batch, rank: rank, ranks: ranks)
    let mine = offset..<(offset + count)
    let size = model.imageSize
    let pixels = size * size * 3
    let views = objective == .simclr ? 2 : 1
    let images = Tensor(shape: [views * count, size, size, 3])
    let labels = Tensor(shape: [count, outputs])
    var rng = SplitMix64(seed: 2)
    for v in 0..<views {
      for n in 0..<batch {
        for i in 0..<pixels {
          let value = rng.normal()
          if mine.contains(n) { images.data[(v * count + n - offset) * pixels + i] = value }
        }
      }
    }
    for n in 0..<batch {
      for k in 0..<outputs {
        let t: Float = rng.uniform() < 0.3 ? 1 : 0
        if mine.contains(n) { labels.data[(n - offset) * outputs + k] = t }
      }
    }
    let share = TrainingBatch(
      images: images.data, labels: objective == .simclr ? nil : labels.data, count: count, globalCount: batch)
    return (images, labels, share)
  }

  /// Per convolution shape, costliest first: its label, layers of that shape, and milliseconds
  /// per step of forward, weight gradient and input gradient, with its share of the step.
  static func convolutionRows(steps: Int, total: Double) -> [StepMeasurement.ConvolutionRow] {
    Profiler.convolutions.sorted { $0.value[0...2].reduce(0, +) > $1.value[0...2].reduce(0, +) }.map { key, t in
      let n = Double(steps)
      return StepMeasurement.ConvolutionRow(
        shape: key, layers: Int(t[3] / n), forward: t[0] / n, weightGradient: t[1] / n, inputGradient: t[2] / n,
        share: (t[0] + t[1] + t[2]) / total)
    }
  }

  /// Median time of a blocking all-reduce of `floats` floats: what the gradient reduction would
  /// cost if nothing of it were hidden.
  static func plainAllReduceSeconds(_ communicator: Communicator, floats: Int) throws -> Double {
    guard floats > 0 else { return 0 }
    let buffer = Tensor(shape: [floats])
    var times: [Double] = []
    for _ in 0..<5 {
      try communicator.barrier()
      let start = Clock.now()
      if let mpi = communicator as? MPICommunicator {
        try mpi.blockingAllReduceSum(buffer.data, count: floats)
      } else {
        try communicator.allReduceSum(buffer.data, count: floats)
      }
      times.append(Clock.now() - start)
    }
    return median(times)
  }

  /// The median-length step as rank 0 of `ranks` ranks runs it (its share of the global batch),
  /// every collective recorded.
  public func traceStep(ranks: Int) throws -> StepTrace {
    try StepSimulation.traceStep(
      try makeModel(), objective: objective.objective, globalBatch: batch, ranks: ranks, imageSize: model.imageSize, steps: steps,
      warmup: warmup, synchronizedBatchNorm: parallel.synchronizedBatchNorm, bucketBytes: parallel.bucketBytes, learningRate: learningRate)
  }
}

extension StepBenchmark {
  /// The collectives a run of this model issues, with their sizes in bytes and what issues them:
  /// recorded from a traced step of both models a run of this size trains (SimCLR pretraining
  /// and fine-tuning, whatever `objective` says, so that one profile serves every stage) and the
  /// replica broadcast that starts a run, on `ranks` ranks; then sizes between, so that the fit
  /// sees the whole range. One entry per collective and size, the first use named.
  public func issuedCollectives(ranks: Int) throws -> [(collective: Collective, bytes: Int, use: String)] {
    var issued: [(collective: Collective, bytes: Int, use: String)] = []
    for kind in [ObjectiveKind.simclr, .attributes] {
      var traced = self
      (traced.objective, traced.strategy, traced.steps, traced.warmup) = (kind, nil, 1, 0)
      let start = TracingCommunicator(size: ranks, source: "start")
      try Replicas.synchronize(try traced.makeModel().registry, communicator: start)
      let step = try traced.traceStep(ranks: ranks)
      for event in start.take().events + step.events {
        let use = [
          "gradient": "gradient bucket", "batchnorm": "BatchNorm sums", "start": "replica broadcast and check",
          "step": kind == .simclr ? "SimCLR negatives and the loss" : "the loss",
        ][event.source] ?? event.source
        switch event.kind {
        case .allReduce, .startAllReduce: issued.append((.allReduce, event.bytes, use))
        case .allGather: issued.append((.allGather, event.bytes, use))
        case .broadcast: issued.append((.broadcast, event.bytes, use))
        case .wait, .barrier: break
        }
      }
    }
    for bytes in [64, 1024, 16384, 262_144, 4_194_304] {
      issued.append((.allReduce, bytes, "fill"))
      issued.append((.allGather, max(bytes, 4 * ranks), "fill"))
      issued.append((.broadcast, bytes, "fill"))
    }
    var seen = Set<String>()
    return issued.filter { seen.insert("\($0.collective.rawValue) \($0.bytes)").inserted }
      .sorted { ($0.collective.rawValue, $0.bytes) < ($1.collective.rawValue, $1.bytes) }
  }

  /// Times every collective of `issuedCollectives` on `communicator`'s ranks (the slowest rank's
  /// median of at least 3 and up to 50 calls or 0.3 s) and fits the profile.
  public func measureCollectives(on communicator: Communicator, say: (String) -> Void) throws -> CollectiveProfile {
    let ranks = communicator.size
    guard ranks > 1 else {
      throw CommunicatorError.mismatch("bench --comm times collectives between ranks: run it under mpirun with 2 or more ranks, one per host to be modelled")
    }
    let issued = try issuedCollectives(ranks: ranks)
    let largest = issued.map(\.bytes).max() ?? 0
    let buffer = Tensor(shape: [max(1, largest / 4 + ranks)])
    let receive = Tensor(shape: [max(1, largest / 4 + ranks)])
    say("timing \(issued.count) collectives on \(ranks) ranks (the sizes \(model.model) width \(model.width) issues at batch \(batch))")
    var points: [CollectiveProfile.Point] = []
    for (collective, bytes, use) in issued {
      func once() throws {
        switch collective {
        case .allReduce:
          try communicator.allReduceSum(buffer.data, count: max(1, bytes / 4))
        case .allGather:
          let each = max(1, bytes / 4 / ranks)
          try communicator.allGatherVariable(buffer.data, count: each, into: receive.data, counts: Array(repeating: each, count: ranks))
        case .broadcast:
          try communicator.broadcast(UnsafeMutableRawBufferPointer(start: buffer.data, count: bytes), root: 0)
        }
      }
      try communicator.barrier()
      try once()
      var times: [Double] = []
      var more = 1
      while more != 0 {
        try communicator.barrier()
        let start = Clock.now()
        try once()
        times.append(Clock.now() - start)
        more = (times.count < 3 || (times.count < 50 && times.reduce(0, +) < 0.3)) ? 1 : 0
        try communicator.broadcast(&more)
      }
      // A collective is over when it is over everywhere: the slowest rank's median.
      var mine = median(times)
      var all = [Double](repeating: 0, count: ranks)
      try withUnsafeBytes(of: &mine) { send in try all.withUnsafeMutableBytes { try communicator.allGather(send, into: $0) } }
      points.append(CollectiveProfile.Point(collective: collective, bytes: bytes, ranks: ranks, seconds: all.max()!, use: use))
    }
    return CollectiveProfile.fit(points, source: "bench --comm on \(ranks) ranks (\(model.model) width \(model.width), batch \(batch))")
  }
}

/// What one benchmark measured.
public struct StepMeasurement {
  public struct ConvolutionRow {
    public let shape: String
    public let layers: Int
    public let forward: Double
    public let weightGradient: Double
    public let inputGradient: Double
    public let share: Double
  }

  /// The data-parallel figures, when there were several ranks.
  public struct Communication {
    public let buckets: Int
    public let batchNormCalls: Int
    public let exposedSeconds: Double
    public let batchNormSeconds: Double
    public let plainAllReduceSeconds: Double
    public let gradientBytes: Double
  }

  public let parameters: Int
  public let imagesPerRank: Int
  /// The median timed step.
  public let stepSeconds: Double
  public let steps: Int
  /// Every step's loss, warm-up included.
  public let losses: [Double]
  /// FLOPs of the whole global batch over the median step.
  public let gflops: Double
  public let sgemmGFLOPs: Double
  public let gflopPerImage: Double
  /// The share of step time of each layer type.
  public let timeShares: [(name: String, share: Double)]
  public let convolutions: [ConvolutionRow]
  public let peakResidentBytes: Int
  /// Every parameter and buffer after the last step (torchvision's order) when asked for, for --dump.
  public let weights: [(name: String, shape: [Int], values: [Float])]
  public var communication: Communication?

  public var computeSeconds: Double { stepSeconds - (communication.map { $0.exposedSeconds + $0.batchNormSeconds } ?? 0) }

  /// Every step's loss and the final weights as safetensors (`bench --dump`), for comparing runs
  /// over different rank counts.
  public func write(to path: String, metadata: [String: String]) throws {
    var tensors: [(name: String, dtype: SafeTensors.DType, shape: [Int], bytes: Data)] = [
      ("losses", .f64, [losses.count], losses.withUnsafeBufferPointer { Data(buffer: $0) })
    ]
    for (name, shape, values) in weights { tensors.append((name, .f32, shape, SafeTensors.bytes(of: values))) }
    try SafeTensors.write(tensors, metadata: metadata, to: path)
  }
}

public enum ResourceUsage {
  /// The peak resident set size of this process (bytes).
  public static func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return usage.ru_maxrss * 1024
  }
}
