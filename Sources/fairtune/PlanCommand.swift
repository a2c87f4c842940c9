// `fairtune plan`: the wall time and core-hours of each stage of `fairtune reproduce --preset P`
// on N nodes of C cores, from per-image costs measured here, and the peak memory of a rank (the
// cost model is the library's: Pipeline/ClusterPlan.swift, over the stages reproduce runs).
import ArgumentParser
import Foundation
import Pipeline
import Report
import Support
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
  var preset: Preset = .paper

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

  @Option(help: "The order of the collectives, as the runs' --collectives: priority (the default) or fifo.")
  var collectives: CollectiveSchedule = .priority

  @Option(help: "The gradients' format on the link, as the runs' --gradient-wire: fp32 (the default) or bf16. The plan also gives pretraining's efficiency with the other one.")
  var gradientWire: GradientWire = .fp32

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

  func run() throws {
    let here = threads ?? ProcessInfo.processInfo.activeProcessorCount
    Launch.setThreads(here)
    var plan = ClusterPlan(preset: preset, links: try links())
    (plan.nodes, plan.coresPerNode, plan.ranksPerNode, plan.groupSize, plan.steps, plan.threadsHere) =
      (nodes, coresPerNode, ranksPerNode, groupSize, steps, here)
    let s = preset.settings
    print("plan for reproduce --preset \(preset.rawValue) on \(nodes) node(s) x \(coresPerNode) cores (\(nodes * ranksPerNode) rank(s)); measuring \(s.model) width \(s.width) at \(s.imageSize) px on \(here) thread(s) here")
    (plan.collectives, plan.wire) = (collectives, gradientWire)
    print("links: \(plan.links.source); collectives \(collectives.rawValue), gradient wire \(gradientWire.rawValue)")
    let measured = try plan.measure { print($0) }
    let rows = try printStages(plan, measured)
    // Compression's worth: pretraining's efficiency with the other wire at the same nodes.
    var other = plan
    other.wire = gradientWire == .fp32 ? .bf16 : .fp32
    let mine = try plan.stages(nodes: nodes, links: plan.links, measured).first { $0.stage == .pretrain }
    let theirs = try other.stages(nodes: nodes, links: plan.links, measured).first { $0.stage == .pretrain }
    let theirsEfficiency: Any = theirs.map { $0.efficiency } ?? NSNull()
    if let mine, let theirs {
      print(String(format: "pretraining efficiency: %.2f with the %@ gradient wire, %.2f with the %@ wire", mine.efficiency, gradientWire.rawValue, theirs.efficiency, other.wire.rawValue))
    }
    let limits = try printScaling(plan, measured)
    if json {
      let object: [String: Any] = [
        "preset": preset.rawValue, "nodes": nodes, "cores_per_node": coresPerNode, "ranks": nodes * ranksPerNode, "threads_here": here,
        "links": plan.links.source, "collectives": collectives.rawValue, "gradient_wire": gradientWire.rawValue, "stages": rows,
        "pretrain_efficiency_other_wire": theirsEfficiency, "total_wall_seconds": rows.reduce(0.0) { $0 + ($1["wall_seconds"] as! Double) },
        "peak_resident_bytes": measured.peakResidentBytes, "scaling_limits": limits,
        "seconds_per_image": [
          "pretrain": measured.pretrainSeconds, "evaluation": measured.evaluationSeconds,
          "data": measured.synthesisSeconds + measured.packingSeconds,
        ].merging(Dictionary(uniqueKeysWithValues: measured.strategySeconds.map { ($0.key.rawValue, $0.value) })) { a, _ in a },
      ]
      print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
    }
  }

  /// The table of stages at --nodes; returns its rows for --json.
  private func printStages(_ plan: ClusterPlan, _ measured: ClusterPlan.Measurements) throws -> [[String: Any]] {
    func row(_ cells: [String]) -> String {
      func right(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(1, width - text.count)) + text }
      return cells[0].padding(toLength: 16, withPad: " ", startingAt: 0) + right(cells[1], 10) + right(cells[2], 12) + right(cells[3], 12)
        + (cells[4].isEmpty ? "" : "   " + cells[4])
    }
    let cores = Double(nodes * coresPerNode)
    print("")
    print(row(["stage", "wall", "core-hours", "efficiency", "waits on"]))
    var total = 0.0
    var rows: [[String: Any]] = []
    for cost in try plan.stages(nodes: nodes, links: plan.links, measured) {
      let wall = plan.wallSeconds(cost)
      total += wall
      rows.append(["stage": cost.stage.rawValue, "wall_seconds": wall, "core_hours": wall * cores / 3600, "efficiency": cost.efficiency, "waits_on": cost.waits])
      print(row([cost.stage.rawValue, Trainer.duration(wall), String(format: "%.2f", wall * cores / 3600),
        cost.parallel ? String(format: "%.2f", cost.efficiency) : "-", cost.parallel ? cost.waits : ""]))
    }
    print(row(["total", Trainer.duration(total), String(format: "%.2f", total * cores / 3600), "", ""]))
    print(String(format: "peak resident memory per rank: %.0f MiB (pretraining at %d images per rank, two views each)",
      Double(measured.peakResidentBytes) / 1048576, max(1, preset.settings.pretrainBatch / (nodes * ranksPerNode))))
    return rows
  }

  /// Where each stage stops scaling on the three interconnects (and --svg); returns the --json rows.
  private func printScaling(_ plan: ClusterPlan, _ measured: ClusterPlan.Measurements) throws -> [[String: Any]] {
    var limits: [[String: Any]] = []
    var panels: [ScalingFigure.Panel] = []
    print("")
    print("where each stage's efficiency first falls below 0.8 (1 to 512 nodes of \(coresPerNode) cores):")
    for (name, lines) in try plan.scaling(measured) {
      var said: [String] = []
      for line in lines {
        let stage = line.stage.rawValue
        if let i = line.firstBelow(0.8) {
          let nodes = ClusterPlan.nodeCounts[i]
          said.append("\(stage) at \(nodes) nodes (\(String(format: "%.2f", line.efficiency[i])); waits on \(line.waits[i]))")
          limits.append(["interconnect": name, "stage": stage, "nodes": nodes, "efficiency": line.efficiency[i], "waits_on": line.waits[i]])
        } else {
          said.append("\(stage) not below 0.8 up to 512 nodes")
          limits.append(["interconnect": name, "stage": stage, "nodes": NSNull(), "efficiency": line.efficiency.last!, "waits_on": line.waits.last!])
        }
      }
      print("  \(name): " + said.joined(separator: "; "))
      panels.append(ScalingFigure.Panel(title: name, lines: lines.map {
        ScalingFigure.Line(stage: $0.stage == .seeds ? "fine-tuning (seeds)" : $0.stage.rawValue, efficiency: $0.efficiency, bottleneck: $0.waits)
      }))
    }
    if let svg {
      let figure = ScalingFigure.svg(panels, nodes: ClusterPlan.nodeCounts, threshold: 0.8,
        title: "reproduce --preset \(preset.rawValue): predicted efficiency, nodes of \(coresPerNode) cores, \(ranksPerNode) rank(s) each")
      try AtomicFile.write(Array(figure.utf8), to: svg)
      print("wrote \(svg)")
    }
    return limits
  }
}
