// `fairtune plan`: the wall time and core-hours of each stage of `fairtune reproduce --preset P`
// on N nodes of C cores, from per-image costs measured here, and the peak memory of a rank.
import ArgumentParser
import CelebAFormat
import Data
import Distributed
import Experiment
import Foundation
import NN
import Report
import Support
import Tensors
import Training

struct PlanCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "plan",
    abstract: "Estimate the wall time, core-hours and memory of `fairtune reproduce --preset P` on a cluster.",
    discussion: paragraphs("""
      The estimate is made from measurements taken now, on this machine, with the preset's model
      and image size (a few steps each, on random images): the seconds per image of a SimCLR
      pretraining step (two views, projection head, at the per-rank batch the cluster would
      use), of a fine-tuning step of each strategy (frozen weights get no gradients, as in
      training) and of an evaluation forward pass; and the seconds per image of making and
      packing synthetic data. Each stage's work is counted from the preset: pretraining epochs x
      train images; per strategy, trials x the mean drawn epochs x train images, a validation
      pass per epoch (validation images and the train images that set the thresholds) and an
      evaluation of every split per trial; the seed re-runs and the random-backbone probe
      likewise. Data loading runs beside the compute and is not counted; the estimate assumes
      the cluster's cores are as fast as these.

      Communication comes from the scaling model (docs/scaling.md). Each measured step is run as
      rank 0 of the cluster's ranks would run it, recording every collective it issues and when;
      the step is then replayed with the links' costs (--comm-profile, measured by bench --comm,
      or a link of --latency-us and --bandwidth-gbps; default 10 Gb/s Ethernet, 30 us): gradient
      buckets overlapping the rest of backward, synchronized BatchNorm's sums on the critical
      path and behind the bytes already on the link, SimCLR's all-gather. A stage's efficiency is
      its step's compute over the predicted step; the sweep's is how busy its groups are (rank 0
      coordinates, the others run one trial per group of --group-size ranks; a last wave of
      trials leaves groups idle). Work measured on T threads here takes T / (N x C x e) of its
      time on N nodes of C cores at efficiency e.

      --svg FILE draws each stage's efficiency against the node count (1 to 512) on three
      interconnects (1 Gb/s Ethernet at 50 us, 10 Gb/s Ethernet at 30 us, 100 Gb/s at 5 us),
      marking where each first falls below 0.8; at other node counts than --nodes the step's
      compute is taken as proportional to the per-rank batch.

      Peak memory: the resident size of this process after a pretraining step at the per-rank
      batch (the largest of the stages), i.e. what one rank needs.
      """))

  @Option(help: "tiny, small or paper.")
  var preset: ReproduceCommand.Preset = .paper

  @Option(help: "Nodes of the cluster.")
  var nodes: Int = 1

  @Option(help: "Cores per node.")
  var coresPerNode: Int = 2

  @Option(help: "MPI ranks per node (each uses cores-per-node / ranks-per-node threads).")
  var ranksPerNode: Int = 1

  @Option(help: "The links' collective costs, measured by bench --comm (instead of --latency-us and --bandwidth-gbps).")
  var commProfile: String?

  @Option(help: "Latency of a message between nodes in microseconds (default 30, 10 Gb/s Ethernet's order).")
  var latencyUs: Double?

  @Option(help: "Bandwidth of a node's link in Gb/s (default 10).")
  var bandwidthGbps: Double?

  @Option(help: "Ranks per sweep trial, as reproduce --group-size.")
  var groupSize: Int = 1

  @Option(help: "Also draw efficiency against node count (1 to 512) on three interconnects to this SVG file.")
  var svg: String?

  @Option(help: "Timed steps per measurement (after one warm-up step).")
  var steps: Int = 3

  @Option(help: "Threads used for the measurements here (default: all cores).")
  var threads: Int?

  @Flag(help: "End with one line of JSON.")
  var json = false

  func validate() throws {
    guard nodes > 0 else { throw ValidationError("--nodes must be positive (got \(nodes)).") }
    guard coresPerNode > 0 else { throw ValidationError("--cores-per-node must be positive (got \(coresPerNode)).") }
    guard ranksPerNode > 0, ranksPerNode <= coresPerNode else {
      throw ValidationError("--ranks-per-node must be between 1 and --cores-per-node (got \(ranksPerNode)).")
    }
    if commProfile != nil && (latencyUs != nil || bandwidthGbps != nil) {
      throw ValidationError("--comm-profile and --latency-us/--bandwidth-gbps both describe the links: give one of them.")
    }
    if let l = latencyUs, !(l >= 0 && l.isFinite) { throw ValidationError("--latency-us must be zero or more (got \(l)).") }
    if let b = bandwidthGbps, !(b > 0 && b.isFinite) { throw ValidationError("--bandwidth-gbps must be positive (got \(b)).") }
    guard groupSize >= 1 else { throw ValidationError("--group-size must be at least 1 (got \(groupSize)).") }
    guard steps > 0 else { throw ValidationError("--steps must be positive (got \(steps)).") }
    if let t = threads, t <= 0 { throw ValidationError("--threads must be positive (got \(t)).") }
  }

  /// The links as given: a measured profile, or a nominal link (10 Gb/s, 30 us by default).
  func links() throws -> CollectiveProfile {
    if let commProfile { return try Bench.readProfile(commProfile) }
    return .nominal(latency: (latencyUs ?? 30) * 1e-6, bandwidth: (bandwidthGbps ?? 10) * 1e9 / 8)
  }

  /// The interconnects of --svg.
  static let interconnects: [(name: String, profile: CollectiveProfile)] = [
    ("1 Gb/s Ethernet, 50 us", .nominal(latency: 50e-6, bandwidth: 1e9 / 8)),
    ("10 Gb/s Ethernet, 30 us", .nominal(latency: 30e-6, bandwidth: 10e9 / 8)),
    ("100 Gb/s, 5 us", .nominal(latency: 5e-6, bandwidth: 100e9 / 8)),
  ]

  /// A data-parallel step's efficiency on `ranks` ranks: compute over the predicted step, with
  /// `trace` (traced at `tracedBatch` images a rank, on `here` threads) scaled to a rank of
  /// `threadsPerRank` cores at `batch / ranks` images. More ranks than images leave the extra
  /// ranks idle.
  func efficiency(_ trace: StepTrace, tracedBatch: Int, batch: Int, ranks: Int, profile: CollectiveProfile, here: Int, threadsPerRank: Double)
    -> (efficiency: Double, prediction: StepPrediction)
  {
    let used = min(ranks, batch)
    let perRank = Double(batch) / Double(used)
    let scaled = trace.scalingCompute(by: Double(here) / threadsPerRank * perRank / Double(tracedBatch))
    let prediction = StepSimulation.predict(scaled, ranks: used, profile: profile)
    return (scaled.seconds / prediction.seconds * Double(used) / Double(ranks), prediction)
  }

  /// What holds a step's efficiency down: its largest wait, or compute when there is little to wait on.
  static func waits(_ result: (efficiency: Double, prediction: StepPrediction)) -> String {
    result.efficiency < 0.95 && result.prediction.largestWait.seconds > 0 ? result.prediction.largestWait.name : "compute"
  }

  func run() throws {
    let s = ReproduceCommand.settings(preset)
    let here = threads ?? ProcessInfo.processInfo.activeProcessorCount
    BLAS.setThreads(here)
    Parallel.workers = here
    let profile = try links()
    let ranks = nodes * ranksPerNode
    let threadsPerRank = Double(coresPerNode) / Double(ranksPerNode)
    let options = s.modelSpec
    let pretrainBatch = max(1, s.pretrainBatch / ranks)
    let finetuneBatch = max(1, s.batch / ranks)
    print("plan for reproduce --preset \(preset.rawValue) on \(nodes) node(s) x \(coresPerNode) cores (\(ranks) rank(s)); measuring \(s.model) width \(s.width) at \(s.imageSize) px on \(here) thread(s) here")
    print("links: \(profile.source)")

    // Pretraining first: its peak resident size is the rank's peak.
    var configuration = options.configuration(classes: nil)
    let features = try ResNet(configuration).featureDimension
    configuration.projection = ProjectionSize(hidden: features, output: 128)
    let pretrainTrace = try Self.trace(configuration, strategy: nil, batch: pretrainBatch, globalBatch: s.pretrainBatch, ranks: min(ranks, s.pretrainBatch), views: 2, steps: steps, size: s.imageSize)
    let pretrainCost = pretrainTrace.seconds / Double(pretrainBatch)
    let peak = Self.peakResidentBytes()
    print(String(format: "  pretraining step: %.2f ms per image at %d images per rank (x2 views); peak resident memory %.0f MiB", pretrainCost * 1000, pretrainBatch, Double(peak) / 1048576))
    var strategyCost: [Strategy: Double] = [:]
    var strategyTrace: [Strategy: StepTrace] = [:]
    for strategy in Strategy.allCases {
      let trace = try Self.trace(options.configuration(classes: 40), strategy: strategy, batch: finetuneBatch, globalBatch: s.batch, ranks: min(ranks, s.batch), views: 1, steps: steps, size: s.imageSize)
      strategyTrace[strategy] = trace
      strategyCost[strategy] = trace.seconds / Double(finetuneBatch)
      print(String(format: "  %@ step: %.3f ms per image at %d images per rank", strategy.rawValue, strategyCost[strategy]! * 1000, finetuneBatch))
    }
    let evalCost = try Self.trace(options.configuration(classes: 40), strategy: nil, batch: 256, globalBatch: 256, ranks: 1, views: 1, steps: steps, forwardOnly: true, size: s.imageSize).seconds / 256
    let dataCost = try Self.dataSecondsPerImage(synthSize: s.synthSize, imageSize: s.imageSize)
    print(String(format: "  evaluation: %.3f ms per image; synthetic data + packing: %.2f ms per image", evalCost * 1000, dataCost * 1000))

    // Work per stage, in seconds on `here` threads.
    let all = Double(s.train + s.val + s.test)
    let train = Double(s.train)
    let meanEpochs = Double(1 + s.maxEpochs) / 2
    let validationPass = Double(s.val + min(s.thresholdImages, s.train)) * evalCost
    func work(_ strategy: Strategy, epochs: Double) -> Double {
      epochs * (train * strategyCost[strategy]! + validationPass) + all * evalCost
    }
    // Steps at other per-rank batches, for other node counts than --nodes: traced at up to 64
    // images a rank (larger batches scale the 64-image trace), each once.
    var traces: [String: (trace: StepTrace, batch: Int)] = [
      "pretrain \(pretrainBatch)": (pretrainTrace, pretrainBatch)
    ]
    for (strategy, trace) in strategyTrace { traces["\(strategy.rawValue) \(finetuneBatch)"] = (trace, finetuneBatch) }
    func traced(_ strategy: Strategy?, perRank: Int) throws -> (trace: StepTrace, batch: Int) {
      let key = "\(strategy?.rawValue ?? "pretrain") \(perRank)"
      if let known = traces[key] { return known }
      if perRank > 64 { return try traced(strategy, perRank: 64) }
      let global = strategy == nil ? s.pretrainBatch : s.batch
      let configuration = strategy == nil ? configuration : options.configuration(classes: 40)
      let trace = try Self.trace(
        configuration, strategy: strategy, batch: perRank, globalBatch: global, ranks: max(1, global / perRank), views: strategy == nil ? 2 : 1,
        steps: min(steps, 2), size: s.imageSize)
      traces[key] = (trace, perRank)
      return (trace, perRank)
    }
    /// The efficiencies of one node count on `links`.
    struct Scaling {
      var pretrain: (efficiency: Double, prediction: StepPrediction)
      var strategies: [Strategy: (efficiency: Double, prediction: StepPrediction)]
    }
    func scaling(nodes n: Int, links: CollectiveProfile) throws -> Scaling {
      let r = n * ranksPerNode
      func step(_ strategy: Strategy?, ranks: Int) throws -> (efficiency: Double, prediction: StepPrediction) {
        let global = strategy == nil ? s.pretrainBatch : s.batch
        let (trace, batch) = try traced(strategy, perRank: max(1, global / min(ranks, global)))
        return efficiency(trace, tracedBatch: batch, batch: global, ranks: ranks, profile: links, here: here, threadsPerRank: threadsPerRank)
      }
      return Scaling(
        pretrain: try step(nil, ranks: r),
        strategies: Dictionary(uniqueKeysWithValues: try Strategy.allCases.map { ($0, try step($0, ranks: r)) }))
    }
    let trialCount = s.trials * Strategy.allCases.count
    /// Work and efficiency of every stage at `n` nodes on `links`: (name, seconds here, parallel, efficiency, waits on).
    func stages(nodes n: Int, links: CollectiveProfile) throws -> [(name: String, seconds: Double, parallel: Bool, efficiency: Double, waits: String)] {
      let sc = try scaling(nodes: n, links: links)
      let r = n * ranksPerNode
      // Fine-tuning stages on every rank: each strategy's work at its own efficiency.
      func dataParallel(_ runs: [(Strategy, Double)]) -> (Double, Double, String) {
        let seconds = runs.reduce(0.0) { $0 + $1.1 }
        let stretched = runs.reduce(0.0) { $0 + $1.1 / sc.strategies[$1.0]!.efficiency }
        let worst = runs.max { sc.strategies[$0.0]!.efficiency > sc.strategies[$1.0]!.efficiency }
        return (seconds, seconds > 0 ? seconds / stretched : 1, worst.map { "\(Self.waits(sc.strategies[$0.0]!)) (\($0.0.rawValue))" } ?? "compute")
      }
      let finetune = Strategy.allCases.map { ($0, work($0, epochs: meanEpochs)) }
      let finetuneSeconds = finetune.reduce(0.0) { $0 + $1.1 }
      // The sweep's trials on groups: the groups' own steps at the strategies' efficiency on groupSize ranks.
      var groupEfficiency = 1.0
      if groupSize > 1 {
        let perRank = max(1, s.batch / min(groupSize, s.batch))
        let mean = try Strategy.allCases.map { st -> Double in
          let (trace, batch) = try traced(st, perRank: perRank)
          return efficiency(trace, tracedBatch: batch, batch: s.batch, ranks: groupSize, profile: links, here: here, threadsPerRank: threadsPerRank).efficiency
        }
        groupEfficiency = mean.reduce(0, +) / Double(mean.count)
      }
      let sweepE = StepSimulation.sweepEfficiency(trials: trialCount, ranks: r, groupSize: groupSize, stepEfficiency: groupEfficiency)
      let seeds = dataParallel(finetune.map { ($0.0, Double(s.seeds - 1) * $0.1) })
      let balanced = dataParallel([(.bnRecal, Double(s.seeds) * work(.bnRecal, epochs: meanEpochs))])
      let probe = dataParallel([(.frozen, work(.frozen, epochs: meanEpochs))])
      var rows: [(name: String, seconds: Double, parallel: Bool, efficiency: Double, waits: String)] = [
        ("data + pack", all * dataCost, false, 1, "-"),
        ("pretrain", Double(s.pretrainEpochs) * train * pretrainCost, true, sc.pretrain.efficiency, Self.waits(sc.pretrain)),
        ("sweep", Double(s.trials) * finetuneSeconds, true, sweepE,
          sweepE < 0.8 && r > 1 ? "idle groups (\(trialCount) trials on \(max(1, (r - 1) / groupSize)) groups)" : "compute"),
        ("seeds", seeds.0, true, seeds.1, seeds.2),
        ("balanced", balanced.0, true, balanced.1, balanced.2),
        ("probe", probe.0, true, probe.1, probe.2),
        ("bn-statistics", 2048 * evalCost * 2, false, 1, "-"),
        ("report", 10, false, 1, "-"),
      ]
      if preset == .paper { rows[0].name = "pack (CelebA)" }
      return rows
    }

    let cores = Double(nodes * coresPerNode)
    print("")
    func row(_ cells: [String]) -> String {
      func right(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(1, width - text.count)) + text }
      return cells[0].padding(toLength: 16, withPad: " ", startingAt: 0) + right(cells[1], 10) + right(cells[2], 12) + right(cells[3], 12)
        + (cells[4].isEmpty ? "" : "   " + cells[4])
    }
    print(row(["stage", "wall", "core-hours", "efficiency", "waits on"]))
    var totalWall = 0.0
    var rows: [[String: Any]] = []
    for stage in try stages(nodes: nodes, links: profile) {
      // Stages that do not run data-parallel use one node's cores at most.
      let wall = stage.parallel ? stage.seconds * Double(here) / (cores * stage.efficiency) : stage.seconds * Double(here) / Double(coresPerNode)
      let coreHours = wall * cores / 3600
      totalWall += wall
      rows.append(["stage": stage.name, "wall_seconds": wall, "core_hours": coreHours, "efficiency": stage.efficiency, "waits_on": stage.waits])
      print(row([stage.name, Trainer.duration(wall), String(format: "%.2f", coreHours), stage.parallel ? String(format: "%.2f", stage.efficiency) : "-", stage.parallel ? stage.waits : ""]))
    }
    print(row(["total", Trainer.duration(totalWall), String(format: "%.2f", totalWall * cores / 3600), "", ""]))
    print(String(format: "peak resident memory per rank: %.0f MiB (pretraining at %d images per rank, two views each)", Double(peak) / 1048576, pretrainBatch))

    // Where each stage stops scaling, on the three interconnects.
    let nodeCounts = (0...9).map { 1 << $0 }
    var limits: [[String: Any]] = []
    var panels: [ScalingFigure.Panel] = []
    print("")
    print("where each stage's efficiency first falls below 0.8 (1 to 512 nodes of \(coresPerNode) cores):")
    for (name, links) in Self.interconnects {
      let table = try nodeCounts.map { try stages(nodes: $0, links: links) }
      var lines: [ScalingFigure.Line] = []
      var said: [String] = []
      for stage in ["pretrain", "sweep", "seeds"] {
        let series = table.map { $0.first { $0.name == stage }! }
        let line = ScalingFigure.Line(stage: stage == "seeds" ? "fine-tuning (seeds)" : stage, efficiency: series.map(\.efficiency), bottleneck: series.map(\.waits))
        lines.append(line)
        if let i = line.firstBelow(0.8) {
          said.append("\(stage) at \(nodeCounts[i]) nodes (\(String(format: "%.2f", series[i].efficiency)); waits on \(series[i].waits))")
          limits.append(["interconnect": name, "stage": stage, "nodes": nodeCounts[i], "efficiency": series[i].efficiency, "waits_on": series[i].waits])
        } else {
          said.append("\(stage) not below 0.8 up to 512 nodes")
          limits.append(["interconnect": name, "stage": stage, "nodes": NSNull(), "efficiency": series.last!.efficiency, "waits_on": series.last!.waits])
        }
      }
      print("  \(name): " + said.joined(separator: "; "))
      panels.append(ScalingFigure.Panel(title: name, lines: lines))
    }
    if let svg {
      let figure = ScalingFigure.svg(panels, nodes: nodeCounts, threshold: 0.8,
        title: "reproduce --preset \(preset.rawValue): predicted efficiency, nodes of \(coresPerNode) cores, \(ranksPerNode) rank(s) each")
      try AtomicFile.write(Array(figure.utf8), to: svg)
      print("wrote \(svg)")
    }
    if json {
      let object: [String: Any] = [
        "preset": preset.rawValue, "nodes": nodes, "cores_per_node": coresPerNode, "ranks": ranks, "threads_here": here,
        "links": profile.source, "stages": rows, "total_wall_seconds": totalWall, "peak_resident_bytes": peak, "scaling_limits": limits,
        "seconds_per_image": ["pretrain": pretrainCost, "evaluation": evalCost, "data": dataCost]
          .merging(Dictionary(uniqueKeysWithValues: strategyCost.map { ($0.key.rawValue, $0.value) })) { a, _ in a },
      ]
      print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
    }
  }

  /// The peak resident set size of this process (bytes).
  static func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return usage.ru_maxrss * 1024
  }

  /// The median-length traced training step (the trainer's `TrainingStep`: forward, the loss,
  /// backward, SGD; NT-Xent over both views for `views` 2, attribute BCE otherwise) of
  /// `configuration` with `strategy` applied (nil: everything trains), as rank 0 of `ranks`
  /// ranks runs it on `batch` images of a global `globalBatch`, with synchronized BatchNorm; or
  /// of a forward pass in evaluation mode.
  static func trace(
    _ configuration: ResNetConfiguration, strategy: Strategy?, batch: Int, globalBatch: Int, ranks: Int, views: Int, steps: Int,
    forwardOnly: Bool = false, size: Int
  ) throws -> StepTrace {
    let model = try ResNet(configuration, seed: 1)
    if let strategy { strategy.apply(to: model) }
    guard forwardOnly else {
      return try StepSimulation.traceStep(
        model, objective: views == 2 ? .simclr(temperature: 0.1) : .attributes, globalBatch: globalBatch, ranks: max(1, ranks), imageSize: size,
        steps: steps)
    }
    model.setBatchNormTraining(false)
    let images = Tensor(shape: [batch, size, size, 3])
    var rng = SplitMix64(seed: 3)
    for i in 0..<images.count { images.data[i] = rng.normal() }
    let input = FeatureMap(data: images.data, batch: batch, height: size, width: size, channels: 3)
    var times: [Double] = []
    for step in 0...steps {
      let start = Clock.now()
      _ = model.forward(input)
      if step > 0 { times.append(Clock.now() - start) }
    }
    return StepTrace(events: [], seconds: times.sorted()[times.count / 2], ranks: 1)
  }

  /// Seconds per image of `fairtune synth` and `fairtune pack` (the same library calls), from
  /// 200 images.
  static func dataSecondsPerImage(synthSize: Int, imageSize: Int) throws -> Double {
    let directory = URL(fileURLWithPath: NSTemporaryDirectory() + "fairtune-plan-\(getpid())")
    defer { try? FileManager.default.removeItem(at: directory) }
    let start = Clock.now()
    let plan = SynthesisPlan(train: 160, validation: 20, test: 20, imageSize: synthSize, seed: 1)
    let raw = try OutputDirectory(directory.appendingPathComponent("raw"), option: "plan")
    try Synthesizer.write(plan, labels: try Synthesizer.labels(plan, from: nil), into: raw) { _ in }
    try raw.commit()
    let packed = try OutputDirectory(directory.appendingPathComponent("packed"), option: "plan")
    _ = try Packer.pack(celebA: raw.destination, imageSize: imageSize, into: packed, skipBadImages: false)
    try packed.commit()
    return (Clock.now() - start) / 200
  }
}
