// `fairtune bench`: training-step throughput, achieved GFLOP/s against the sgemm ceiling, where
// the time goes, and (under mpirun) how much communication costs and how much of it is hidden.
import ArgumentParser
import CelebAFormat
import Data
import Distributed
import Experiment
import Foundation
import NN
import Support
import Tensors
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
  var conv: String = "winograd"

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
  var objective: String = "attributes"

  @Option(help: "Time this fine-tuning strategy's step (\(Strategy.allCases.map(\.rawValue).joined(separator: ", "))); default: everything trains.")
  var strategy: String?

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
  var precision: String = "fp32"

  func validate() throws {
    guard batch > 0 else { throw ValidationError("--batch must be positive (got \(batch)).") }
    guard steps > 0 else { throw ValidationError("--steps must be positive (got \(steps)).") }
    guard warmup >= 0 else { throw ValidationError("--warmup cannot be negative (got \(warmup)).") }
    guard classes > 0 else { throw ValidationError("--classes must be positive (got \(classes)).") }
    guard ConvolutionAlgorithm(rawValue: conv) != nil else {
      throw ValidationError("--conv '\(conv)' is not an algorithm: use winograd or gemm.")
    }
    guard PrecisionChoice.resolve(precision) != nil else {
      throw ValidationError("--precision '\(precision)' is not a precision: use \(PrecisionChoice.names).")
    }
    guard objective == "attributes" || objective == "simclr" else {
      throw ValidationError("--objective '\(objective)' is not an objective: use attributes or simclr.")
    }
    if let strategy {
      guard Strategy(rawValue: strategy) != nil else {
        throw ValidationError("--strategy '\(strategy)' is not a strategy: use one of \(Strategy.allCases.map(\.rawValue).joined(separator: ", ")).")
      }
      if objective == "simclr" { throw ValidationError("--strategy is a fine-tuning strategy: it does not go with --objective simclr.") }
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

  var simclr: Bool { objective == "simclr" }

  /// The model the step trains: with the projection head for SimCLR, with the strategy's frozen
  /// parts frozen.
  func makeModel() throws -> ResNet {
    var configuration = modelOptions.configuration(classes: simclr ? nil : classes)
    if simclr {
      configuration.projection = ProjectionSize(hidden: try ResNet(configuration).featureDimension, output: 128)
    }
    let model = try ResNet(configuration, seed: 1)
    model.setConvolutionAlgorithm(ConvolutionAlgorithm(rawValue: conv)!)
    if let strategy { Strategy(rawValue: strategy)!.apply(to: model) }
    return model
  }

  func run() throws {
    if predictRanks != nil {
      try predict()
      return
    }
    let launch: Launch
    do {
      launch = try Launch.start(distributed)
    } catch {
      throw ValidationError("\(error)")
    }
    do {
      if comm {
        try measureCollectives(launch)
      } else {
        try measure(launch)
      }
    } catch {
      launch.fail(error)
    }
  }

  private func measure(_ launch: Launch) throws {
    let comm = launch.communicator
    guard batch >= comm.size else {
      throw CommunicatorError.mismatch("--batch \(batch) is smaller than the \(comm.size) ranks: every rank needs at least one image")
    }
    let (chosen, notice) = PrecisionChoice.resolve(precision)!
    BLAS.matmulPrecision = chosen
    if let notice { launch.say(notice) }
    let size = modelOptions.imageSize
    let model = try makeModel()
    try Replicas.synchronize(model.registry, communicator: comm, perturbRank: distributed.debugPerturbRank)

    // One global batch, the same on every rank; each rank trains on its share (for SimCLR, the
    // first views of the batch, then the second views).
    let local = DataParallelShare(batch: batch, rank: comm.rank, ranks: comm.size)
    let pixels = size * size * 3
    let views = simclr ? 2 : 1
    let images = Tensor(shape: [views * local.count, size, size, 3])
    let targets = Tensor(shape: [local.count, classes])
    var rng = SplitMix64(seed: 2)
    for v in 0..<views {
      for n in 0..<batch {
        for i in 0..<pixels {
          let value = rng.normal()
          if local.range.contains(n) { images.data[(v * local.count + n - local.offset) * pixels + i] = value }
        }
      }
    }
    for n in 0..<batch {
      for k in 0..<classes {
        let t: Float = rng.uniform() < 0.3 ? 1 : 0
        if local.range.contains(n) { targets.data[(n - local.offset) * classes + k] = t }
      }
    }
    // The trainer's own step, on this fixed batch.
    let trainingStep = TrainingStep.dataParallel(
      model, objective: simclr ? .simclr(temperature: 0.1) : .attributes, optimizer: SGD(model.registry, learningRate: learningRate, momentum: 0.9),
      communicator: comm, settings: distributed.parallel)
    let (reducer, statistics) = (trainingStep.reducer, trainingStep.statistics)
    trainingStep.gradientDump = dumpGradients
    let share = TrainingBatch(images: images.data, labels: simclr ? nil : targets.data, count: local.count, globalCount: batch)

    var losses: [Double] = []
    func step() throws {
      losses.append(try trainingStep(share, imageSize: size, globalBatch: batch).loss)
    }

    let sgemm = BLAS.measureGFLOPs()
    launch.injectFaults(distributed)
    for _ in 0..<warmup { try step() }
    Profiler.reset()
    Profiler.enabled = true
    var times: [Double] = []
    var exposed: [Double] = []
    var syncBN: [Double] = []
    for _ in 0..<steps {
      try comm.barrier()
      let start = Clock.now()
      try step()
      times.append(Clock.now() - start)
      exposed.append(reducer.exposedSeconds)
      syncBN.append(statistics?.seconds ?? 0)
    }
    Profiler.enabled = false
    let stepTime = median(times)
    let flops = model.lastFLOPs
    let imagesPerSecond = Double(batch) / stepTime
    // FLOPs of the whole global batch: every rank does its share.
    let gflops = try comm.sum(flops.training) / stepTime / 1e9
    let total = times.reduce(0, +)
    let c = modelOptions
    launch.say("\(c.model) width \(c.width) stem \(c.stem), \(size)x\(size), batch \(batch), \(comm.size) rank(s) x \(BLAS.threadsPerRank) threads, \(conv) convolutions, \(model.registry.parameterCount) parameters\(simclr ? ", SimCLR pretraining step" : strategy.map { ", \($0) fine-tuning step" } ?? "")")
    launch.say(String(format: "step %.1f ms (median of %d), %.1f img/s, loss %.4f", stepTime * 1000, steps, imagesPerSecond, losses.last ?? .nan))
    launch.say(String(format: "%.3f GFLOP per image (training), %.1f GFLOP/s achieved, sgemm ceiling %.1f GFLOP/s (%.0f%%)",
      flops.training / Double(local.count) / 1e9, gflops, sgemm, 100 * gflops / sgemm))
    let profiled = Profiler.seconds.values.reduce(0, +)
    for type in LayerType.allCases {
      let s = Profiler.seconds[type, default: 0]
      launch.say(String(format: "  %-12@ %6.1f%%", type.rawValue as NSString, 100 * s / total))
    }
    launch.say(String(format: "  %-12@ %6.1f%%", "other" as NSString, 100 * (total - profiled) / total))
    if layers { printConvolutions(launch, steps: steps, total: total) }
    let peak = PlanCommand.peakResidentBytes()
    launch.say(String(format: "peak resident memory: %.0f MiB per rank (batch %d per rank)", Double(peak) / 1048576, local.count))

    var object: [String: Any] = [
      "model": c.model, "width": c.width, "stem": c.stem, "image_size": size, "batch": batch,
      "threads": BLAS.threadsPerRank, "ranks": comm.size, "objective": objective, "strategy": strategy ?? "full", "steps": steps, "conv": conv, "precision": BLAS.matmulPrecision.rawValue, "step_seconds": stepTime,
      "images_per_second": imagesPerSecond, "gflops": gflops, "sgemm_gflops": sgemm,
      "gflop_per_image": flops.training / Double(local.count) / 1e9,
      "parameters": model.registry.parameterCount, "loss": losses.last ?? .nan, "peak_resident_bytes": peak,
    ]
    var shares: [String: Double] = [:]
    for type in LayerType.allCases { shares[type.rawValue] = Profiler.seconds[type, default: 0] / total }
    object["time_share"] = shares

    if comm.size > 1 {
      let plain = try plainAllReduceSeconds(comm, floats: reducer.reducedFloats)
      let bytes = Double(reducer.reducedFloats * 4)
      let exposedTime = median(exposed)
      let syncTime = median(syncBN)
      let hidden = plain > 0 ? max(0, 1 - exposedTime / plain) : 1
      let calls = reducer.buckets.count + (statistics?.calls ?? 0)
      launch.say("MPI: \(comm.size) ranks, bn \(distributed.bn), \(reducer.buckets.count) gradient buckets (\(distributed.bucketMb) MB)")
      launch.say(String(format: "  compute %.1f ms, exposed all-reduce %.1f ms, sync BN %.1f ms (%d all-reduces), per step",
        (stepTime - exposedTime - syncTime) * 1000, exposedTime * 1000, syncTime * 1000, statistics?.calls ?? 0))
      launch.say(String(format: "  gradient all-reduce: %.1f MB, plain MPI_Allreduce %.1f ms (%.2f GB/s), %.0f%% hidden behind backward",
        bytes / 1e6, plain * 1000, bytes / plain / 1e9, 100 * hidden))
      launch.say("  all-reduce calls per step: \(calls) (\(reducer.buckets.count) gradient, \(statistics?.calls ?? 0) BatchNorm)")
      object["mpi"] = [
        "ranks": comm.size, "bn": distributed.bn, "buckets": reducer.buckets.count,
        "exposed_allreduce_seconds": exposedTime, "sync_bn_seconds": syncTime,
        "compute_seconds": stepTime - exposedTime - syncTime, "plain_allreduce_seconds": plain,
        "allreduce_gb_per_second": bytes / plain / 1e9, "hidden_fraction": hidden,
        "allreduce_calls_per_step": calls, "batchnorm_allreduce_calls": statistics?.calls ?? 0,
      ] as [String: Any]
    }
    if json, launch.isRoot {
      let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
      print(String(decoding: data, as: UTF8.self))
    }
    if let dump, launch.isRoot {
      var tensors: [(name: String, dtype: SafeTensors.DType, shape: [Int], bytes: Data)] = [
        ("losses", .f64, [losses.count], losses.withUnsafeBufferPointer { Data(buffer: $0) })
      ]
      for entry in model.registry.entries {
        tensors.append((entry.name, .f32, entry.shape, SafeTensors.bytes(of: entry.torchOrdered())))
      }
      try SafeTensors.write(tensors, metadata: ["ranks": "\(comm.size)", "bn": distributed.bn], to: dump)
    }
  }

  /// One line per convolution shape, costliest first: layers of that shape, milliseconds per
  /// step of forward, weight gradient and input gradient, and the share of the step.
  private func printConvolutions(_ launch: Launch, steps: Int, total: Double) {
    launch.say("  convolutions (ms per step: forward, weight gradient, input gradient; share of step)")
    let rows = Profiler.convolutions.sorted { $0.value[0...2].reduce(0, +) > $1.value[0...2].reduce(0, +) }
    for (key, t) in rows {
      let n = Double(steps)
      let padded = key.padding(toLength: max(44, key.count), withPad: " ", startingAt: 0)
      launch.say(String(format: "    %@ x%-2d %7.2f %7.2f %7.2f %6.1f%%", padded as NSString, Int(t[3] / n),
        1000 * t[0] / n, 1000 * t[1] / n, 1000 * t[2] / n, 100 * (t[0] + t[1] + t[2]) / total))
    }
  }

  /// Median time of a blocking all-reduce of `floats` floats: what the gradient reduction would
  /// cost if nothing of it were hidden.
  private func plainAllReduceSeconds(_ comm: Communicator, floats: Int) throws -> Double {
    guard floats > 0 else { return 0 }
    let buffer = Tensor(shape: [floats])
    var times: [Double] = []
    for _ in 0..<5 {
      try comm.barrier()
      let start = Clock.now()
      if let mpi = comm as? MPICommunicator {
        try mpi.blockingAllReduceSum(buffer.data, count: floats)
      } else {
        try comm.allReduceSum(buffer.data, count: floats)
      }
      times.append(Clock.now() - start)
    }
    return median(times)
  }
}

/// This rank's part of a global batch.
struct DataParallelShare {
  let offset: Int
  let count: Int

  init(batch: Int, rank: Int, ranks: Int) {
    offset = DistributedSampler.offset(of: batch, rank: rank, ranks: ranks)
    count = DistributedSampler.share(of: batch, rank: rank, ranks: ranks)
  }

  var range: Range<Int> { offset..<(offset + count) }
}
