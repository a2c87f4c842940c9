// Options of every command that runs data-parallel, and the start-up they share.
import ArgumentParser
import Data
import Distributed
import Foundation
import NN
import Support
import Tensors
import Training

struct DistributedOptions: ParsableArguments {
  @Option(help: "BatchNorm statistics: sync (over all ranks of the group; the default) or local (per rank, like plain DDP).")
  var bn: String = "sync"

  @Option(help: "Gradient all-reduce bucket size in MB (PyTorch DDP's default is 25).")
  var bucketMb: Double = 25

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

  @Option(help: .hidden)
  var debugExitRank: Int?

  func validate() throws {
    guard bn == "sync" || bn == "local" else {
      throw ValidationError("--bn '\(bn)' is not a mode: use sync or local.")
    }
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
    DataParallelSettings(synchronizedBatchNorm: bn == "sync", bucketBytes: bucketBytes, perturbRank: debugPerturbRank)
  }

  /// The threads each rank uses: the node's cores shared among the node's ranks.
  var threadsPerRank: Int {
    if let threads { return threads }
    let localRanks = Int(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? "") ?? 1
    return max(1, ProcessInfo.processInfo.activeProcessorCount / max(localRanks, 1))
  }
}

/// A process's place in the job: its communicator and how it reports (`Log`: people's lines
/// from rank 0, warnings and errors from every rank with the rank named).
struct Launch {
  let communicator: Communicator
  let logger = Log.logger("launch")

  /// Joins the job (or runs alone without a launcher), sets the threads, and checks that every
  /// rank runs the same command.
  static func start(_ options: DistributedOptions) throws -> Launch {
    let communicator = try MPICommunicator.world(timeout: options.timeout)
    Log.setRank(communicator.rank, of: communicator.size)
    BLAS.setThreads(options.threadsPerRank)
    try Replicas.checkConfiguration(CommandLine.arguments.dropFirst().joined(separator: " "), communicator: communicator)
    return Launch(communicator: communicator)
  }

  var isRoot: Bool { communicator.rank == 0 }

  /// A line for people (printed by rank 0).
  func say(_ line: String) { logger.info("\(line)") }

  /// A training session in `spec.out` on `dataset`, with `options`' data-parallel settings and
  /// injected faults.
  func session(_ dataset: PackedDataset, spec: TrainingSpec, defining: [String: String], options: DistributedOptions) throws -> TrainingSession {
    try TrainingSession(
      communicator: communicator, dataset: dataset, spec: spec, defining: defining, parallel: options.parallel,
      beforeFirstStep: { self.injectFaults(options) })
  }

  /// The injected faults of `--debug-stall-rank` and `--debug-exit-rank`, at the first step.
  func injectFaults(_ options: DistributedOptions) {
    if options.debugExitRank == communicator.rank {
      logger.error("exiting as asked by --debug-exit-rank")
      exit(3)
    }
    if options.debugStallRank == communicator.rank {
      logger.error("stalling as asked by --debug-stall-rank")
      while true { sleep(3600) }
    }
  }

  /// Reports a fatal error on this rank and stops the whole job, so no rank waits forever.
  func fail(_ error: Error) -> Never {
    logger.critical("\(error)")
    if let mpi = communicator as? MPICommunicator, communicator.size > 1, case CommunicatorError.timeout = error {
      mpi.abort(1)
    }
    exit(1)
  }
}
