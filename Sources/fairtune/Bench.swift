// `fairtune bench`: training-step throughput, achieved GFLOP/s against the sgemm ceiling, where
// the time goes, and (under mpirun) how much communication costs and how much of it is hidden.
import ArgumentParser
import Experiment
import Foundation
import Training

struct Bench: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Time the training step (forward, 40-way BCE, backward, SGD) on random data.",
    discussion: paragraphs("""
      Prints images per second (from the median step), the achieved GFLOP/s (convolution and
      linear FLOPs of forward, dW and dX), the sgemm GFLOP/s of a 1024^3 product measured in the
      same run (the ceiling), and the share of step time per layer type. With --json the last
      line is one JSON object with images_per_second, gflops, sgemm_gflops and more.

      Under `mpirun -np N`, --batch is the global batch split over the ranks, and an MPI section
      follows: step time split into compute, exposed gradient all-reduce and synchronized
      BatchNorm; all-reduce calls per step; the all-reduce bandwidth against a plain
      MPI_Allreduce of the same bytes; and the fraction of the gradient all-reduce hidden behind
      backward. --dump FILE writes the loss of every step and the final weights (safetensors),
      for comparing runs over different rank counts; --dump-gradients FILE writes the first
      step's gradients, which every rank count computes from the same weights.

      --objective simclr times a pretraining step instead (two views, the projection head,
      NT-Xent over the global batch with its all-gather); --strategy times a fine-tuning
      strategy's step (its frozen parts get no gradients and are not communicated).

      The scaling model (docs/scaling.md):
        --comm --out PROFILE.json, under mpirun across the hosts to be modelled, times the
          collectives the trainer issues for this model, at the sizes it issues them (the
          gradient buckets, synchronized BatchNorm's sums, SimCLR's all-gather of the
          embeddings and the all-reduce of their gradients, the parameter broadcast), fits
          t = alpha x latency terms + beta x byte terms per collective, prints the fit and
          writes the profile.
        --predict-ranks N, in one process, runs the step as rank 0 of N ranks would (its share
          of --batch, the global batch) while recording every collective it issues and when,
          then replays the step with the costs of --comm-profile PROFILE.json (or of a link of
          --latency-us and --bandwidth-gbps) and prints the predicted step time, images per
          second, the efficiency against one rank doing the whole batch, and what the step
          waits on.
      """))

  @OptionGroup var modelOptions: ModelOptions
  @OptionGroup var distributed: DistributedOptions

  @Option(help: "Images per step (the global batch, split over the ranks).")
  var batch: Int = 64

  @Option(help: "Timed steps (after the warm-up steps).")
  var steps: Int = 10

  @Option(help: "Untimed warm-up steps (the first one sizes every buffer).")
  var warmup: Int = 2

  @Option(help: "Outputs of the head (40 for the CelebA attributes).")
  var classes: Int = 40

  @Option(help: "Convolution algorithm: winograd (for 3x3 stride-1, GEMM elsewhere) or gemm (im2col + sgemm everywhere).")
  var conv: ConvolutionMethod = .winograd

  @Option(help: "SGD learning rate (the benchmark trains on one fixed random batch).")
  var learningRate: Float = 0.01

  @Option(help: "Write every step's loss and the final weights to this safetensors file (rank 0).")
  var dump: String?

  @Option(help: "Write the first step's gradients (summed over the ranks, from the initial weights) and its loss to this safetensors file (rank 0).")
  var dumpGradients: String?

  @Flag(help: "Also print the time per step of every convolution shape: forward, weight gradient, input gradient.")
  var layers = false

  @Flag(help: "End with one line of JSON.")
  var json = false

  @Option(help: "attributes (a fine-tuning step: 40-way BCE) or simclr (a pretraining step: two views, a projection head of 128, NT-Xent over the global batch).")
  var objective: ObjectiveKind = .attributes

  @Option(help: "Time this fine-tuning strategy's step (\(Strategy.allCases.map(\.rawValue).joined(separator: ", "))); default: everything trains.")
  var strategy: Strategy?

  @Flag(help: "Time the collectives the trainer issues for this model (under mpirun) and fit the latency-bandwidth model; with --out.")
  var comm = false

  @Option(help: "Where --comm writes the collective profile (JSON).")
  var out: String?

  @Option(help: "Predict the step on this many ranks (one process; with --comm-profile or --latency-us and --bandwidth-gbps).")
  var predictRanks: Int?

  @Option(help: "A profile written by bench --comm: the collective costs --predict-ranks uses.")
  var commProfile: String?

  @Option(help: "Instead of a profile: the latency of a message in microseconds (with --bandwidth-gbps).")
  var latencyUs: Double?

  @Option(help: "Instead of a profile: the link bandwidth in Gb/s (with --latency-us).")
  var bandwidthGbps: Double?

  @Option(help: "fp32, bf16 (fp32 where the CPU or this build has no bfloat16 kernels, said at the start) or bf16-emulated (bfloat16's numerics, slower than fp32).")
  var precision: PrecisionRequest = .fp32

  func validate() throws {
    guard batch > 0 else { throw ValidationError("--batch must be positive (got \(batch)).") }
    guard steps > 0 else { throw ValidationError("--steps must be positive (got \(steps)).") }
    guard warmup >= 0 else { throw ValidationError("--warmup cannot be negative (got \(warmup)).") }
    guard classes > 0 else { throw ValidationError("--classes must be positive (got \(classes)).") }
    if strategy != nil && objective == .simclr {
      throw ValidationError("--strategy is a fine-tuning strategy: it does not go with --objective simclr.")
    }
    if comm {
      guard out != nil else { throw ValidationError("--comm needs --out PROFILE.json: where to write the fitted profile.") }
      if predictRanks != nil { throw ValidationError("--comm measures a profile and --predict-ranks uses one: run them separately.") }
    } else if out != nil {
      throw ValidationError("--out goes with --comm (the profile it writes).")
    }
    if let n = predictRanks {
      guard n >= 1 else { throw ValidationError("--predict-ranks must be at least 1 (got \(n)).") }
      guard batch >= n else { throw ValidationError("--batch \(batch) is smaller than --predict-ranks \(n): every rank needs at least one image.") }
      if commProfile != nil && (latencyUs != nil || bandwidthGbps != nil) {
        throw ValidationError("--comm-profile and --latency-us/--bandwidth-gbps both describe the links: give one of them.")
      }
      if commProfile == nil && (latencyUs == nil || bandwidthGbps == nil) {
        throw ValidationError("--predict-ranks needs the links' costs: --comm-profile PROFILE.json (from bench --comm), or both --latency-us and --bandwidth-gbps.")
      }
    } else if commProfile != nil || latencyUs != nil || bandwidthGbps != nil {
      throw ValidationError("--comm-profile, --latency-us and --bandwidth-gbps go with --predict-ranks.")
    }
    if let l = latencyUs, !(l >= 0 && l.isFinite) { throw ValidationError("--latency-us must be zero or more (got \(l)).") }
    if let b = bandwidthGbps, !(b > 0 && b.isFinite) { throw ValidationError("--bandwidth-gbps must be positive (got \(b)).") }
  }

  /// The step these options describe.
  var job: StepBenchmark {
    var job = StepBenchmark(model: modelOptions.spec)
    (job.classes, job.batch, job.steps, job.warmup) = (classes, batch, steps, warmup)
    (job.convolution, job.learningRate, job.objective, job.strategy) = (conv, learningRate, objective, strategy)
    job.parallel = distributed.parallel
    return job
  }

  func run() throws {
    if predictRanks != nil {
      try predict()
      return
    }
    let launch: Launch
    do {
      launch = try distributed.launch()
    } catch {
      throw ValidationError("\(error)")
    }
    do {
      if comm {
        let profile = try job.measureCollectives(on: launch.communicator, say: launch.say)
        if launch.isRoot {
          print(Self.describe(profile))
          try Self.write(profile, to: out!)
          print("wrote \(out!)")
        }
      } else {
        try measure(launch)
      }
    } catch {
      launch.fail(error)
    }
  }

  private func measure(_ launch: Launch) throws {
    let (chosen, notice) = precision.resolved
    Launch.precision = chosen
    if let notice { launch.say(notice) }
    let result = try job.measure(on: launch.communicator, beforeTiming: { launch.injectFaults() }, gradientDump: dumpGradients, keepWeights: dump != nil && launch.isRoot)
    let ranks = launch.communicator.size
    for line in describe(result, ranks: ranks) { launch.say(line) }
    guard launch.isRoot else { return }
    if json { print(String(decoding: try JSONSerialization.data(withJSONObject: object(result, ranks: ranks), options: [.sortedKeys]), as: UTF8.self)) }
    if let dump { try result.write(to: dump, metadata: ["ranks": "\(ranks)", "bn": distributed.bn.rawValue]) }
  }

  /// The result lines: the step, the time per layer type (and per convolution shape with
  /// --layers), memory, and the MPI figures.
  private func describe(_ r: StepMeasurement, ranks: Int) -> [String] {
    let c = modelOptions
    var lines = [
      "\(c.model) width \(c.width) stem \(c.stem), \(c.imageSize)x\(c.imageSize), batch \(batch), \(ranks) rank(s) x \(Launch.threadsPerRank) threads, \(conv.rawValue) convolutions, \(r.parameters) parameters, \(job.description) step",
      String(format: "step %.1f ms (median of %d), %.1f img/s, loss %.4f", r.stepSeconds * 1000, steps, Double(batch) / r.stepSeconds, r.losses.last ?? .nan),
      String(format: "%.3f GFLOP per image (training), %.1f GFLOP/s achieved, sgemm ceiling %.1f GFLOP/s (%.0f%%)",
        r.gflopPerImage, r.gflops, r.sgemmGFLOPs, 100 * r.gflops / r.sgemmGFLOPs),
    ]
    for (name, share) in r.timeShares { lines.append(String(format: "  %-12@ %6.1f%%", name as NSString, 100 * share)) }
    lines.append(String(format: "  %-12@ %6.1f%%", "other" as NSString, 100 * (1 - r.timeShares.map(\.share).reduce(0, +))))
    if layers {
      lines.append("  convolutions (ms per step: forward, weight gradient, input gradient; share of step)")
      for row in r.convolutions {
        let padded = row.shape.padding(toLength: max(44, row.shape.count), withPad: " ", startingAt: 0)
        lines.append(String(format: "    %@ x%-2d %7.2f %7.2f %7.2f %6.1f%%", padded as NSString, row.layers,
          1000 * row.forward, 1000 * row.weightGradient, 1000 * row.inputGradient, 100 * row.share))
      }
    }
    lines.append(String(format: "peak resident memory: %.0f MiB per rank (batch %d per rank)", Double(r.peakResidentBytes) / 1048576, r.imagesPerRank))
    if let m = r.communication {
      let hidden = m.plainAllReduceSeconds > 0 ? max(0, 1 - m.exposedSeconds / m.plainAllReduceSeconds) : 1
      lines += [
        "MPI: \(ranks) ranks, bn \(distributed.bn.rawValue), \(m.buckets) gradient buckets (\(distributed.bucketMb) MB), collectives \(distributed.collectives.rawValue), gradient wire \(distributed.gradientWire.rawValue)",
        String(format: "  compute %.1f ms, exposed all-reduce %.1f ms, sync BN %.1f ms (%d all-reduces), per step",
          r.computeSeconds * 1000, m.exposedSeconds * 1000, m.batchNormSeconds * 1000, m.batchNormCalls),
        String(format: "  gradient all-reduce: %.1f MB, plain MPI_Allreduce %.1f ms (%.2f GB/s), %.0f%% hidden behind backward",
          m.gradientBytes / 1e6, m.plainAllReduceSeconds * 1000, m.gradientBytes / m.plainAllReduceSeconds / 1e9, 100 * hidden),
        "  all-reduce calls per step: \(m.buckets + m.batchNormCalls) (\(m.buckets) gradient, \(m.batchNormCalls) BatchNorm)",
      ]
    }
    return lines
  }

  /// The --json object.
  private func object(_ r: StepMeasurement, ranks: Int) -> [String: Any] {
    let c = modelOptions
    var object: [String: Any] = [
      "model": c.model, "width": c.width, "stem": c.stem, "image_size": c.imageSize, "batch": batch, "threads": Launch.threadsPerRank,
      "ranks": ranks, "objective": objective.rawValue, "strategy": strategy?.rawValue ?? "full", "steps": steps, "conv": conv.rawValue,
      "precision": Launch.precision.rawValue, "step_seconds": r.stepSeconds, "images_per_second": Double(batch) / r.stepSeconds, "gflops": r.gflops,
      "sgemm_gflops": r.sgemmGFLOPs, "gflop_per_image": r.gflopPerImage, "parameters": r.parameters, "loss": r.losses.last ?? .nan,
      "peak_resident_bytes": r.peakResidentBytes,
      "time_share": Dictionary(uniqueKeysWithValues: r.timeShares.map { ($0.name, $0.share) }),
    ]
    if let m = r.communication {
      object["mpi"] = [
        "ranks": ranks, "bn": distributed.bn.rawValue, "collectives": distributed.collectives.rawValue, "gradient_wire": distributed.gradientWire.rawValue, "buckets": m.buckets, "exposed_allreduce_seconds": m.exposedSeconds,
        "sync_bn_seconds": m.batchNormSeconds, "compute_seconds": r.computeSeconds, "plain_allreduce_seconds": m.plainAllReduceSeconds,
        "allreduce_gb_per_second": m.gradientBytes / m.plainAllReduceSeconds / 1e9,
        "hidden_fraction": m.plainAllReduceSeconds > 0 ? max(0, 1 - m.exposedSeconds / m.plainAllReduceSeconds) : 1,
        "allreduce_calls_per_step": m.buckets + m.batchNormCalls, "batchnorm_allreduce_calls": m.batchNormCalls,
      ] as [String: Any]
    }
    return object
  }
}
