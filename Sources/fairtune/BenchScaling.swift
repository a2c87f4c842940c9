// `fairtune bench --comm` and `bench --predict-ranks`: the collective costs of a cluster's links,
// measured at the sizes the trainer issues them, and one step predicted on N ranks from a trace
// of the step run here (Training/ScalingModel.swift).
import ArgumentParser
import Data
import Distributed
import Foundation
import NN
import Support
import Tensors
import Training

extension Bench {
  /// The collectives a run of this model issues, with their sizes in bytes: (collective, bytes, use).
  func issuedCollectives(ranks: Int) throws -> [(Collective, Int, String)] {
    var issued: [(Collective, Int, String)] = []
    // Both models a run of this size trains: the SimCLR model (pretraining) and the classifier
    // (fine-tuning), whatever --objective says, so that one profile serves every stage.
    for objectiveIsSimCLR in [true, false] {
      var configuration = modelOptions.configuration(classes: objectiveIsSimCLR ? nil : classes)
      if objectiveIsSimCLR {
        configuration.projection = ProjectionSize(hidden: try ResNet(configuration).featureDimension, output: 128)
      }
      let model = try ResNet(configuration, seed: 1)
      let reducer = GradientReducer(communicator: LocalCommunicator(), registry: model.registry, bucketBytes: distributed.bucketBytes)
      for bucket in reducer.buckets { issued.append((.allReduce, bucket.range.count * 4, "gradient bucket")) }
      for bn in model.batchNorms { issued.append((.allReduce, (2 * bn.channels + 1) * 8, "BatchNorm sums")) }
      issued.append((.broadcast, model.registry.values.count * 4, "parameter broadcast"))
      if model.registry.state.count > 0 { issued.append((.broadcast, model.registry.state.count * 4, "BatchNorm state broadcast")) }
      if objectiveIsSimCLR {
        // Every rank's two views' embeddings (128 floats each), and the gradient parts of all of them.
        let embeddings = 2 * batch * 128 * 4
        issued.append((.allGather, embeddings, "SimCLR embeddings"))
        issued.append((.allReduce, embeddings, "SimCLR gradient parts"))
      }
    }
    issued.append((.allReduce, 16, "loss"))
    // Sizes between, so that the fit sees the whole range.
    for bytes in [64, 1024, 16384, 262_144, 4_194_304] {
      issued.append((.allReduce, bytes, "fill"))
      issued.append((.allGather, max(bytes, 4 * ranks), "fill"))
      issued.append((.broadcast, bytes, "fill"))
    }
    // One timing per collective and size: the first use named.
    var seen = Set<String>()
    return issued.filter { seen.insert("\($0.0.rawValue) \($0.1)").inserted }.sorted { ($0.0.rawValue, $0.1) < ($1.0.rawValue, $1.1) }
  }

  /// Times every collective of `issuedCollectives` on the job's ranks, fits the profile, prints
  /// it and writes it to --out.
  func measureCollectives(_ launch: Launch) throws {
    let comm = launch.communicator
    guard comm.size > 1 else {
      throw CommunicatorError.mismatch("bench --comm times collectives between ranks: run it under mpirun with 2 or more ranks, one per host to be modelled")
    }
    let issued = try issuedCollectives(ranks: comm.size)
    let largest = issued.map(\.1).max() ?? 0
    let buffer = Tensor(shape: [max(1, largest / 4 + comm.size)])
    let receive = Tensor(shape: [max(1, largest / 4 + comm.size)])
    let doubles = UnsafeMutablePointer<Double>.allocate(capacity: max(1, largest / 8 + 1))
    defer { doubles.deallocate() }
    doubles.initialize(repeating: 0, count: max(1, largest / 8 + 1))
    launch.say("timing \(issued.count) collectives on \(comm.size) ranks (the sizes \(modelOptions.model) width \(modelOptions.width) issues at batch \(batch))")
    var points: [CollectiveProfile.Point] = []
    for (collective, bytes, use) in issued {
      func once() throws {
        switch collective {
        case .allReduce where use == "BatchNorm sums" || use == "loss":
          try comm.allReduceSum(doubles, count: bytes / 8)
        case .allReduce:
          try comm.allReduceSum(buffer.data, count: bytes / 4)
        case .allGather:
          let each = bytes / 4 / comm.size
          try comm.allGatherVariable(buffer.data, count: each, into: receive.data, counts: Array(repeating: each, count: comm.size))
        case .broadcast:
          try comm.broadcast(UnsafeMutableRawBufferPointer(start: buffer.data, count: bytes), root: 0)
        }
      }
      // One untimed call, then at least 3 timed ones and up to 50 or 0.3 s; every rank agrees
      // on the count through rank 0's broadcast.
      try comm.barrier()
      try once()
      var times: [Double] = []
      var more = 1
      while more != 0 {
        try comm.barrier()
        let start = Clock.now()
        try once()
        times.append(Clock.now() - start)
        more = (times.count < 3 || (times.count < 50 && times.reduce(0, +) < 0.3)) ? 1 : 0
        try comm.broadcast(&more)
      }
      // The slowest rank's median: a collective is over when it is over everywhere.
      var mine = median(times)
      var all = [Double](repeating: 0, count: comm.size)
      try withUnsafeBytes(of: &mine) { send in try all.withUnsafeMutableBytes { try comm.allGather(send, into: $0) } }
      points.append(CollectiveProfile.Point(collective: collective, bytes: bytes, ranks: comm.size, seconds: all.max()!, use: use))
    }
    let source = "bench --comm on \(comm.size) ranks (\(modelOptions.model) width \(modelOptions.width), batch \(batch))"
    let profile = CollectiveProfile.fit(points, source: source)
    if launch.isRoot {
      print(Self.describe(profile))
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
      try AtomicFile.write(Array(try encoder.encode(profile)), to: out!)
      print("wrote \(out!)")
    }
  }

  /// The fit and every point against it.
  static func describe(_ profile: CollectiveProfile) -> String {
    var lines = ["collective profile: \(profile.source)", "  fitted t = alpha x latency terms + beta x byte terms (the model scales them with the rank count; the measured/fitted ratio at each size corrects it)"]
    for collective in Collective.allCases {
      guard let cost = profile.costs[collective] else { continue }
      var line = String(format: "  %-9@ alpha %8.1f us, beta %.3g ns/byte (%.3g Gb/s)", collective.rawValue as NSString,
        cost.alpha * 1e6, cost.beta * 1e9, cost.beta > 0 ? 8e-9 / cost.beta : .infinity)
      // What the largest message actually got: the link's rate once any burst is spent.
      if let largest = profile.points.filter({ $0.collective == collective && $0.seconds > 0 }).max(by: { $0.bytes < $1.bytes }) {
        let terms = collective.terms(bytes: largest.bytes, ranks: largest.ranks).map(\.bytes).min() ?? Double(largest.bytes)
        line += String(format: "; largest, %d bytes in %.1f ms: %.3g Gb/s effective", largest.bytes, largest.seconds * 1000, 8 * terms / largest.seconds / 1e9)
      }
      lines.append(line)
    }
    if !profile.points.isEmpty {
      lines.append("  collective  ranks        bytes   measured ms   alpha-beta ms   use")
      for p in profile.points {
        let fitted = profile.costs[p.collective].map { p.collective.seconds(bytes: p.bytes, ranks: p.ranks, cost: $0) } ?? 0
        lines.append(String(format: "  %-10@ %5d %12d %13.3f %15.3f   %@", p.collective.rawValue as NSString, p.ranks, p.bytes,
          p.seconds * 1000, fitted * 1000, (p.use ?? "") as NSString))
      }
    }
    return lines.joined(separator: "\n")
  }

  /// Reads a profile written by bench --comm, or says what is wrong with the file.
  static func readProfile(_ path: String) throws -> CollectiveProfile {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw ValidationError("--comm-profile \(path): no such file (write one with fairtune bench --comm --out \(path) under mpirun).")
    }
    do {
      let profile = try JSONDecoder().decode(CollectiveProfile.self, from: data)
      guard !profile.costs.isEmpty, profile.costs.values.allSatisfy({ $0.alpha >= 0 && $0.beta >= 0 && $0.alpha.isFinite && $0.beta.isFinite }) else {
        throw ValidationError("--comm-profile \(path) has no usable costs (negative, infinite or none): measure it again with bench --comm.")
      }
      return profile
    } catch let error as ValidationError {
      throw error
    } catch {
      throw ValidationError("--comm-profile \(path) is not a collective profile (\(error)): write one with fairtune bench --comm.")
    }
  }

  /// Median-length traced step of `model` as rank 0 of `ranks` ranks (its share of --batch),
  /// after the warm-up steps.
  func traceStep(ranks: Int) throws -> StepTrace {
    try StepSimulation.traceStep(
      try makeModel(), objective: simclr ? .simclr(temperature: 0.1) : .attributes, globalBatch: batch, ranks: ranks,
      imageSize: modelOptions.imageSize, steps: steps, warmup: warmup, synchronizedBatchNorm: distributed.bn == "sync",
      bucketBytes: distributed.bucketBytes, learningRate: learningRate)
  }

  /// bench --predict-ranks: the step on N ranks, predicted.
  func predict() throws {
    let n = predictRanks!
    let profile: CollectiveProfile
    if let commProfile {
      profile = try Self.readProfile(commProfile)
    } else {
      profile = .nominal(latency: latencyUs! * 1e-6, bandwidth: bandwidthGbps! * 1e9 / 8)
    }
    let threads = distributed.threads ?? ProcessInfo.processInfo.activeProcessorCount
    BLAS.setThreads(threads)
    let (chosen, notice) = PrecisionChoice.resolve(precision)!
    BLAS.matmulPrecision = chosen
    if let notice { print(notice) }
    let what = simclr ? "SimCLR pretraining" : strategy.map { "\($0) fine-tuning" } ?? "full fine-tuning"
    print("\(modelOptions.model) width \(modelOptions.width) stem \(modelOptions.stem), \(modelOptions.imageSize)x\(modelOptions.imageSize), \(what), global batch \(batch), bn \(distributed.bn), \(threads) thread(s) a rank")
    print("links: \(profile.source)")
    let trace = try traceStep(ranks: n)
    let single = n == 1 ? trace : try traceStep(ranks: 1)
    let prediction = StepSimulation.predict(trace, ranks: n, profile: profile)
    let efficiency = single.seconds / (Double(n) * prediction.seconds)
    let imagesPerSecond = Double(batch) / prediction.seconds
    let counts = Dictionary(grouping: trace.events.filter { $0.kind != .wait }, by: \.source).mapValues(\.count)
    print(String(format: "predicted on %d ranks: step %.1f ms, %.1f img/s, efficiency %.2f (one rank, the whole batch: %.1f ms)",
      n, prediction.seconds * 1000, imagesPerSecond, efficiency, single.seconds * 1000))
    print(String(format: "  compute %.1f ms (%d images a rank), exposed gradient all-reduce %.1f ms, BatchNorm sync %.1f ms, SimCLR all-gather %.1f ms, other %.1f ms",
      prediction.compute * 1000, DistributedSampler.share(of: batch, rank: 0, ranks: n), prediction.gradient * 1000, prediction.batchNorm * 1000,
      prediction.negatives * 1000, prediction.other * 1000))
    print("  collectives a step: " + counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ") + "; the largest part: \(prediction.bottleneck)")
    if json {
      let object: [String: Any] = [
        "model": modelOptions.model, "width": modelOptions.width, "image_size": modelOptions.imageSize, "batch": batch, "objective": objective,
        "strategy": strategy ?? "full", "ranks": n, "threads": threads, "links": profile.source,
        "predicted_step_seconds": prediction.seconds, "predicted_images_per_second": imagesPerSecond, "efficiency": efficiency,
        "single_rank_step_seconds": single.seconds, "compute_seconds": prediction.compute, "exposed_allreduce_seconds": prediction.gradient,
        "batchnorm_sync_seconds": prediction.batchNorm, "allgather_seconds": prediction.negatives, "other_seconds": prediction.other,
        "bottleneck": prediction.bottleneck, "largest_wait": prediction.largestWait.name,
      ]
      print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
    }
  }
}
