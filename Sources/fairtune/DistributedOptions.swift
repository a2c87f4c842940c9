// Options of every command that runs data-parallel, and the start-up they share.
import ArgumentParser
import Data
import Distributed
import Foundation
import Support
import Training

struct DistributedOptions: ParsableArguments {
  @Option(help: "BatchNorm statistics: sync (over all ranks of the group; the default) or local (per rank, like plain DDP).")
  var bn: BatchNormMode = .sync

  @Option(help: "Gradient all-reduce bucket size in MB (PyTorch DDP's default is 25).")
  var bucketMb: Double = 25

  @Option(help: ArgumentHelp(
    "The order of a step's collectives on the link: priority (the default) or fifo.",
    discussion: paragraphs("""
      priority: BatchNorm's sums go on a communicator of their own and the gradient buckets in \
      chunks of 512 KB of fp32 values, two at a time, started after each sum, so that a sum \
      never waits behind more than two chunks of gradient bytes. fifo: one communicator, each bucket one all-reduce started when it fills \
      (PyTorch DDP's order), and a sum waits behind every bucket already on the link. The \
      trained weights are the same bits on 2 ranks; recorded in run.json and bench --json.
      """)))
  var collectives: CollectiveSchedule = .priority

  @Option(help: ArgumentHelp(
    "The gradients' format on the link: fp32 (exact, the default) or bf16 (half the bytes).",
    discussion: paragraphs("""
      bf16: each rank's gradients are rounded to bfloat16, every hop of the all-reduce adds in \
      fp32 and rounds the sum to bfloat16, and the result comes back as fp32; weights, \
      optimizer state and BatchNorm's sums stay fp32. For links too slow for the gradients' \
      bytes (docs/scaling.md); recorded in run.json and bench --json.
      """)))
  var gradientWire: GradientWire = .fp32

  @Option(help: ArgumentHelp(
    "Seconds a collective may wait for the other ranks before this rank stops the job (also FAIRTUNE_COMM_TIMEOUT).",
    discussion: "When a rank dies or hangs, the others give up after this long, say so, and exit non-zero."))
  var commTimeout: Double?

  @Option(help: "Threads per rank for GEMMs and loops (default: cores on this node / ranks on this node).")
  var threads: Int?

  /// Test-only fault injection: alter this rank's replica after the broadcast, make it hang,
  /// or make it die, to show that start-up checks and timeouts catch each.
  @Option(help: .hidden)
  var debugPerturbRank: Int?

  @Option(help: .hidden)
  var debugStallRank: Int?

  /// Tests: the priority schedule's chunk, small enough to split a tiny model's buckets.
  @Option(help: .hidden)
  var debugChunkBytes: Int?

  @Option(help: .hidden)
  var debugExitRank: Int?

  func validate() throws {
    guard bucketMb > 0, bucketMb.isFinite else {
      throw ValidationError("--bucket-mb must be positive (got \(bucketMb)).")
    }
    if let t = commTimeout, !(t > 0) {
      throw ValidationError("--comm-timeout must be a positive number of seconds (got \(t)).")
    }
    if let t = threads, t <= 0 {
      throw ValidationError("--threads must be positive (got \(t)).")
    }
  }

  var timeout: Double {
    if let commTimeout { return commTimeout }
    if let env = ProcessInfo.processInfo.environment["FAIRTUNE_COMM_TIMEOUT"], let t = Double(env), t > 0 { return t }
    return 300
  }

  var bucketBytes: Int { max(1, Int(bucketMb * 1_048_576)) }

  /// How runs spread over the ranks, as these options say.
  var parallel: DataParallelSettings {
    DataParallelSettings(
      synchronizedBatchNorm: bn == .sync, bucketBytes: bucketBytes, perturbRank: debugPerturbRank, collectives: collectives,
      chunkBytes: max(4, debugChunkBytes ?? GradientReducer.defaultChunkBytes), wire: gradientWire)
  }

  /// The threads each rank uses: the node's cores shared among the node's ranks.
  var threadsPerRank: Int {
    if let threads { return threads }
    let localRanks = Int(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? "") ?? 1
    return max(1, ProcessInfo.processInfo.activeProcessorCount / max(localRanks, 1))
  }
}

extension DistributedOptions {
  /// Joins the job with these options (see `Launch.start`).
  func launch() throws -> Launch {
    try Launch.start(timeout: timeout, threadsPerRank: threadsPerRank, faults: FaultInjection(exitRank: debugExitRank, stallRank: debugStallRank))
  }
}
