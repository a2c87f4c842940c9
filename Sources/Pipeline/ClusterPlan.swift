// `fairtune plan`'s cost model: the wall time, core-hours and efficiency of every stage of
// reproduce (`ReproduceStage.allCases`, the list reproduce runs) on N nodes of C cores, from steps
// measured here and replayed by the scaling model with the links' costs.
import Data
import Experiment
import Foundation
import Support
import Training

public struct ClusterPlan {
  public let preset: Preset
  public let settings: PresetSettings
  public var nodes = 1
  public var coresPerNode = 2
  public var ranksPerNode = 1
  /// Ranks per sweep trial, as reproduce --group-size.
  public var groupSize = 1
  /// Timed steps per measurement.
  public var steps = 3
  /// Threads the measurements run on here.
  public var threadsHere = 1
  public var links: CollectiveProfile
  /// The order of the collectives and the gradients' format on the link (`--collectives`,
  /// `--gradient-wire`), as the runs would use them.
  public var collectives: CollectiveSchedule = .priority
  public var wire: GradientWire = .fp32

  public init(preset: Preset, links: CollectiveProfile) {
    self.preset = preset
    self.settings = preset.settings
    self.links = links
  }

  /// The interconnects of the scaling figure.
  public static let interconnects: [(name: String, profile: CollectiveProfile)] = [
    ("1 Gb/s Ethernet, 50 us", .nominal(latency: 50e-6, bandwidth: 1e9 / 8)),
    ("10 Gb/s Ethernet, 30 us", .nominal(latency: 30e-6, bandwidth: 10e9 / 8)),
    ("100 Gb/s, 5 us", .nominal(latency: 5e-6, bandwidth: 100e9 / 8)),
  ]

  /// Node counts of the scaling figure.
  public static let nodeCounts = (0...9).map { 1 << $0 }

  var ranks: Int { nodes * ranksPerNode }
  var threadsPerRank: Double { Double(coresPerNode) / Double(ranksPerNode) }

  /// One stage's work: seconds on `threadsHere` threads here, whether it runs data-parallel on
  /// every rank, its efficiency there, and what holds it back.
  public struct StageCost {
    public let stage: ReproduceStage
    public let seconds: Double
    public let parallel: Bool
    public let efficiency: Double
    public let waits: String
  }

  /// Per-image costs measured here, and the traced steps the scaling model replays (each traced
  /// once per per-rank batch).
  public final class Measurements {
    public internal(set) var pretrainSeconds = 0.0
    public internal(set) var strategySeconds: [Strategy: Double] = [:]
    public internal(set) var evaluationSeconds = 0.0
    /// Seconds per image of making synthetic faces, and of packing them.
    public internal(set) var synthesisSeconds = 0.0
    public internal(set) var packingSeconds = 0.0
    public internal(set) var peakResidentBytes = 0
    var traces: [String: (trace: StepTrace, batch: Int)] = [:]
  }

  /// Measures the steps at --nodes' per-rank batches, the evaluation pass and the data stages;
  /// `say` gets a line per measurement.
  public func measure(say: (String) -> Void) throws -> Measurements {
    let m = Measurements()
    let s = settings
    let pretrainBatch = max(1, s.pretrainBatch / ranks)
    let finetuneBatch = max(1, s.batch / ranks)
    // Pretraining first: its peak resident size is the rank's peak.
    let pretrain = try traced(nil, perRank: pretrainBatch, steps: steps, in: m)
    m.pretrainSeconds = pretrain.trace.seconds / Double(pretrainBatch)
    m.peakResidentBytes = ResourceUsage.peakResidentBytes()
    say(String(format: "  pretraining step: %.2f ms per image at %d images per rank (x2 views); peak resident memory %.0f MiB",
      m.pretrainSeconds * 1000, pretrainBatch, Double(m.peakResidentBytes) / 1048576))
    for strategy in Strategy.allCases {
      m.strategySeconds[strategy] = try traced(strategy, perRank: finetuneBatch, steps: steps, in: m).trace.seconds / Double(finetuneBatch)
      say(String(format: "  %@ step: %.3f ms per image at %d images per rank", strategy.rawValue, m.strategySeconds[strategy]! * 1000, finetuneBatch))
    }
    m.evaluationSeconds = try StepSimulation.forwardSeconds(s.modelSpec, batch: 256, steps: steps) / 256
    (m.synthesisSeconds, m.packingSeconds) = try Self.dataSecondsPerImage(synthSize: s.synthSize, imageSize: s.imageSize)
    say(String(format: "  evaluation: %.3f ms per image; synthetic data %.2f ms and packing %.2f ms per image", m.evaluationSeconds * 1000,
      m.synthesisSeconds * 1000, m.packingSeconds * 1000))
    return m
  }

  /// The traced step of `strategy` (nil: SimCLR pretraining) at `perRank` images a rank, as rank
  /// 0 of the ranks its global batch spreads over; batches above 64 a rank scale the 64-image trace.
  func traced(_ strategy: Strategy?, perRank: Int, steps: Int? = nil, in m: Measurements) throws -> (trace: StepTrace, batch: Int) {
    let key = "\(strategy?.rawValue ?? "pretrain") \(perRank)"
    if let known = m.traces[key] { return known }
    if perRank > 64 && steps == nil { return try traced(strategy, perRank: 64, in: m) }
    let global = strategy == nil ? settings.pretrainBatch : settings.batch
    var bench = StepBenchmark(model: settings.modelSpec)
    (bench.objective, bench.strategy, bench.batch) = (strategy == nil ? .simclr : .attributes, strategy, global)
    (bench.steps, bench.warmup, bench.learningRate) = (steps ?? min(self.steps, 2), 1, 1e-4)
    let trace = try bench.traceStep(ranks: max(1, min(global / perRank, global)))
    m.traces[key] = (trace, perRank)
    return (trace, perRank)
  }

  /// A data-parallel step's efficiency on `ranks` ranks: compute over the predicted step, with
  /// the trace scaled to a rank of `threadsPerRank` cores at `batch / ranks` images. More ranks
  /// than images leave the extra ranks idle.
  func efficiency(_ traced: (trace: StepTrace, batch: Int), batch: Int, ranks: Int, links: CollectiveProfile)
    -> (efficiency: Double, prediction: StepPrediction)
  {
    let used = min(ranks, batch)
    let perRank = Double(batch) / Double(used)
    let scaled = traced.trace.scalingCompute(by: Double(threadsHere) / threadsPerRank * perRank / Double(traced.batch))
    let prediction = StepSimulation.predict(scaled, ranks: used, profile: links, schedule: collectives, wire: wire)
    return (scaled.seconds / prediction.seconds * Double(used) / Double(ranks), prediction)
  }

  /// What holds a step's efficiency down: its largest wait, or compute when there is little to wait on.
  static func waits(_ result: (efficiency: Double, prediction: StepPrediction)) -> String {
    result.efficiency < 0.95 && result.prediction.largestWait.seconds > 0 ? result.prediction.largestWait.name : "compute"
  }

  /// Every stage of reproduce at `nodeCount` nodes on `links`.
  public func stages(nodes nodeCount: Int, links: CollectiveProfile, _ m: Measurements) throws -> [StageCost] {
    let s = settings
    let r = nodeCount * ranksPerNode
    func step(_ strategy: Strategy?) throws -> (efficiency: Double, prediction: StepPrediction) {
      let global = strategy == nil ? s.pretrainBatch : s.batch
      return efficiency(try traced(strategy, perRank: max(1, global / min(r, global)), in: m), batch: global, ranks: r, links: links)
    }
    let pretrain = try step(nil)
    var perStrategy: [Strategy: (efficiency: Double, prediction: StepPrediction)] = [:]
    for strategy in Strategy.allCases { perStrategy[strategy] = try step(strategy) }
    let all = Double(s.train + s.val + s.test)
    let meanEpochs = Double(1 + s.maxEpochs) / 2
    let validationPass = Double(s.val + min(s.thresholdImages, s.train)) * m.evaluationSeconds
    func work(_ strategy: Strategy, epochs: Double) -> Double {
      epochs * (Double(s.train) * m.strategySeconds[strategy]! + validationPass) + all * m.evaluationSeconds
    }
    /// Fine-tuning runs on every rank: each strategy's work at its own efficiency.
    func dataParallel(_ stage: ReproduceStage, _ runs: [(Strategy, Double)]) -> StageCost {
      let seconds = runs.reduce(0.0) { $0 + $1.1 }
      let stretched = runs.reduce(0.0) { $0 + $1.1 / perStrategy[$1.0]!.efficiency }
      let worst = runs.max { perStrategy[$0.0]!.efficiency > perStrategy[$1.0]!.efficiency }
      return StageCost(
        stage: stage, seconds: seconds, parallel: true, efficiency: seconds > 0 ? seconds / stretched : 1,
        waits: worst.map { "\(Self.waits(perStrategy[$0.0]!)) (\($0.0.rawValue))" } ?? "compute")
    }
    func oneNode(_ stage: ReproduceStage, _ seconds: Double) -> StageCost {
      StageCost(stage: stage, seconds: seconds, parallel: false, efficiency: 1, waits: "-")
    }
    return try ReproduceStage.allCases.map { stage in
      switch stage {
      // The paper preset reads CelebA (--celeba): nothing to make.
      case .data: return oneNode(stage, preset == .paper ? 0 : all * m.synthesisSeconds)
      case .pack: return oneNode(stage, all * m.packingSeconds)
      case .pretrain:
        return StageCost(
          stage: stage, seconds: Double(s.pretrainEpochs * s.train) * m.pretrainSeconds, parallel: true, efficiency: pretrain.efficiency,
          waits: Self.waits(pretrain))
      case .sweep: return try sweepCost(ranks: r, links: links, m, work: Strategy.allCases.reduce(0.0) { $0 + work($1, epochs: meanEpochs) })
      // Each selected model's features of every image, then a solve on rank 0 (cheap beside them).
      case .convergedHeads: return dataParallel(stage, Strategy.allCases.map { _ in (.frozen, all * m.evaluationSeconds) })
      case .seeds: return dataParallel(stage, Strategy.allCases.map { ($0, Double(s.seeds - 1) * work($0, epochs: meanEpochs)) })
      case .balanced: return dataParallel(stage, [(.bnRecal, Double(s.seeds) * work(.bnRecal, epochs: meanEpochs))])
      case .probe: return dataParallel(stage, [(.frozen, work(.frozen, epochs: meanEpochs))])
      case .backbones:
        // N - 1 more pretrainings and each strategy's selected run on each.
        let more = Double(max(s.backbones - 1, 0))
        let runs = dataParallel(stage, Strategy.allCases.map { ($0, more * work($0, epochs: meanEpochs)) })
        let pretraining = more * Double(s.pretrainEpochs * s.train) * m.pretrainSeconds
        let seconds = pretraining + runs.seconds
        let stretched = pretraining / pretrain.efficiency + runs.seconds / runs.efficiency
        return StageCost(
          stage: stage, seconds: seconds, parallel: true, efficiency: seconds > 0 ? seconds / stretched : 1,
          waits: pretraining > runs.seconds ? Self.waits(pretrain) : runs.waits)
      case .epochTimes:
        let steps = Double(min(s.stepsPerEpoch, PresetSettings.timedSteps) * s.batch)
        return dataParallel(stage, Strategy.allCases.map { ($0, steps * m.strategySeconds[$0]!) })
      case .bnStatistics: return oneNode(stage, 2048 * m.evaluationSeconds * 2)
      case .report: return oneNode(stage, 10)
      }
    }
  }

  /// The sweep's trials on groups of `groupSize` ranks (rank 0 coordinates): the groups' own
  /// steps at the strategies' efficiency on `groupSize` ranks, and the idle groups of the last wave.
  func sweepCost(ranks r: Int, links: CollectiveProfile, _ m: Measurements, work: Double) throws -> StageCost {
    let s = settings
    let trialCount = s.trials * Strategy.allCases.count
    var groupEfficiency = 1.0
    if groupSize > 1 {
      let perRank = max(1, s.batch / min(groupSize, s.batch))
      let each = try Strategy.allCases.map {
        efficiency(try traced($0, perRank: perRank, in: m), batch: s.batch, ranks: groupSize, links: links).efficiency
      }
      groupEfficiency = each.reduce(0, +) / Double(each.count)
    }
    let e = StepSimulation.sweepEfficiency(trials: trialCount, ranks: r, groupSize: groupSize, stepEfficiency: groupEfficiency)
    return StageCost(
      stage: .sweep, seconds: Double(s.trials) * work, parallel: true, efficiency: e,
      waits: e < 0.8 && r > 1 ? "idle groups (\(trialCount) trials on \(max(1, (r - 1) / groupSize)) groups)" : "compute")
  }

  /// The wall seconds of a stage on the cluster: a data-parallel stage over every core at its
  /// efficiency, another on one node's cores.
  public func wallSeconds(_ cost: StageCost) -> Double {
    let here = Double(threadsHere)
    return cost.parallel ? cost.seconds * here / (Double(nodes * coresPerNode) * cost.efficiency) : cost.seconds * here / Double(coresPerNode)
  }

  /// Where the data-parallel stages first fall below `threshold`, on each interconnect, from 1 to
  /// 512 nodes: one line per stage per interconnect.
  public func scaling(_ m: Measurements, threshold: Double = 0.8) throws -> [(interconnect: String, lines: [ScalingLine])] {
    try Self.interconnects.map { name, links in
      let table = try Self.nodeCounts.map { try stages(nodes: $0, links: links, m) }
      let lines = [ReproduceStage.pretrain, .sweep, .seeds].map { stage in
        let series = table.map { $0.first { $0.stage == stage }! }
        return ScalingLine(stage: stage, efficiency: series.map(\.efficiency), waits: series.map(\.waits))
      }
      return (name, lines)
    }
  }

  /// Seconds per image of `fairtune synth` and of `fairtune pack` (the same library calls), from
  /// 200 images.
  static func dataSecondsPerImage(synthSize: Int, imageSize: Int) throws -> (synthesis: Double, packing: Double) {
    let directory = URL(fileURLWithPath: NSTemporaryDirectory() + "fairtune-plan-\(getpid())")
    defer { try? FileManager.default.removeItem(at: directory) }
    let start = Date()
    let plan = SynthesisPlan(train: 160, validation: 20, test: 20, imageSize: synthSize, seed: 1)
    let raw = try OutputDirectory(directory.appendingPathComponent("raw"), option: "plan")
    try Synthesizer.write(plan, labels: try Synthesizer.labels(plan, from: nil), into: raw) { _ in }
    try raw.commit()
    let made = Date()
    let packed = try OutputDirectory(directory.appendingPathComponent("packed"), option: "plan")
    _ = try Packer.pack(celebA: raw.destination, imageSize: imageSize, into: packed, skipBadImages: false)
    try packed.commit()
    return (made.timeIntervalSince(start) / 200, Date().timeIntervalSince(made) / 200)
  }
}

/// A stage's efficiency at each node count of `ClusterPlan.nodeCounts`, and what it waits on.
public struct ScalingLine {
  public let stage: ReproduceStage
  public let efficiency: [Double]
  public let waits: [String]

  /// The first node count's index where the efficiency falls below `threshold`.
  public func firstBelow(_ threshold: Double) -> Int? { efficiency.firstIndex { $0 < threshold } }
}
