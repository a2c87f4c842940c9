// `fairtune bench --comm` and `bench --predict-ranks`: the collective costs of a cluster's links,
// measured at the sizes the trainer issues them, and one step predicted on N ranks from a trace
// of the step run here (Training/ScalingModel.swift, Training/StepBenchmark.swift).
import ArgumentParser
import Foundation
import Support
import Training

extension Bench {
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

  /// Writes a profile as bench --comm does.
  static func write(_ profile: CollectiveProfile, to path: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try AtomicFile.write(Array(try encoder.encode(profile)), to: path)
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
    Launch.setThreads(threads)
    let (chosen, notice) = precision.resolved
    Launch.precision = chosen
    if let notice { print(notice) }
    print("\(modelOptions.model) width \(modelOptions.width) stem \(modelOptions.stem), \(modelOptions.imageSize)x\(modelOptions.imageSize), \(job.description), global batch \(batch), bn \(distributed.bn.rawValue), collectives \(distributed.collectives.rawValue), gradient wire \(distributed.gradientWire.rawValue), \(threads) thread(s) a rank")
    print("links: \(profile.source)")
    let trace = try job.traceStep(ranks: n)
    let single = n == 1 ? trace : try job.traceStep(ranks: 1)
    let prediction = StepSimulation.predict(trace, ranks: n, profile: profile, schedule: distributed.collectives, wire: distributed.gradientWire)
    let efficiency = single.seconds / (Double(n) * prediction.seconds)
    let imagesPerSecond = Double(batch) / prediction.seconds
    let counts = Dictionary(grouping: trace.events.filter { $0.kind != .wait }, by: \.source).mapValues(\.count)
    print(String(format: "predicted on %d ranks: step %.1f ms, %.1f img/s, efficiency %.2f (one rank, the whole batch: %.1f ms)",
      n, prediction.seconds * 1000, imagesPerSecond, efficiency, single.seconds * 1000))
    print(String(format: "  compute %.1f ms (%d images a rank), exposed gradient all-reduce %.1f ms, BatchNorm sync %.1f ms, SimCLR all-gather %.1f ms, other %.1f ms",
      prediction.compute * 1000, trace.imagesPerRank(globalBatch: batch), prediction.gradient * 1000, prediction.batchNorm * 1000,
      prediction.negatives * 1000, prediction.other * 1000))
    print("  collectives a step: " + counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ") + "; the largest part: \(prediction.bottleneck)")
    if json {
      let object: [String: Any] = [
        "model": modelOptions.model, "width": modelOptions.width, "image_size": modelOptions.imageSize, "batch": batch, "objective": objective.rawValue,
        "strategy": strategy?.rawValue ?? "full", "ranks": n, "threads": threads, "links": profile.source,
        "collectives": distributed.collectives.rawValue, "gradient_wire": distributed.gradientWire.rawValue,
        "predicted_step_seconds": prediction.seconds, "predicted_images_per_second": imagesPerSecond, "efficiency": efficiency,
        "single_rank_step_seconds": single.seconds, "compute_seconds": prediction.compute, "exposed_allreduce_seconds": prediction.gradient,
        "batchnorm_sync_seconds": prediction.batchNorm, "allgather_seconds": prediction.negatives, "other_seconds": prediction.other,
        "bottleneck": prediction.bottleneck, "largest_wait": prediction.largestWait.name,
      ]
      print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
    }
  }
}
