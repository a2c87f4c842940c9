// A process's place in the job: its communicator, its threads and precision, how it reports
// (`Log`: people's lines from rank 0, warnings and errors from every rank with the rank named),
// the test-only injected faults, and how it stops the whole job on an error.
import Data
import Distributed
import Foundation
import Logging
import Support
import Tensors

/// Test-only faults: a rank that exits, or hangs, at the first step, to show that the others
/// notice and stop.
public struct FaultInjection: Sendable {
  public var exitRank: Int?
  public var stallRank: Int?

  public init(exitRank: Int? = nil, stallRank: Int? = nil) {
    self.exitRank = exitRank
    self.stallRank = stallRank
  }
}

public struct Launch {
  public let communicator: Communicator
  public let faults: FaultInjection
  let logger = Log.logger("launch")

  /// Joins the job (or runs alone without a launcher), sets the threads, and checks that every
  /// rank runs the same command.
  public static func start(timeout: Double, threadsPerRank: Int, faults: FaultInjection = FaultInjection()) throws -> Launch {
    let communicator = try MPICommunicator.world(timeout: timeout)
    Log.setRank(communicator.rank, of: communicator.size)
    BLAS.setThreads(threadsPerRank)
    try Replicas.checkConfiguration(CommandLine.arguments.dropFirst().joined(separator: " "), communicator: communicator)
    return Launch(communicator: communicator, faults: faults)
  }

  public var isRoot: Bool { communicator.rank == 0 }

  /// A line for people (printed by rank 0).
  public func say(_ line: String) { logger.info("\(line)") }

  /// A training session in `spec.out` on `dataset`, with `parallel`'s settings and the injected faults.
  public func session(_ dataset: PackedDataset, spec: TrainingSpec, defining: [String: String], parallel: DataParallelSettings) throws
    -> TrainingSession
  {
    try TrainingSession(
      communicator: communicator, dataset: dataset, spec: spec, defining: defining, parallel: parallel,
      beforeFirstStep: { self.injectFaults() })
  }

  /// The injected faults, at the first step.
  public func injectFaults() {
    if faults.exitRank == communicator.rank {
      logger.error("exiting as asked by --debug-exit-rank")
      exit(3)
    }
    if faults.stallRank == communicator.rank {
      logger.error("stalling as asked by --debug-stall-rank")
      while true { sleep(3600) }
    }
  }

  /// Reports a fatal error on this rank and stops the whole job, so no rank waits forever.
  public func fail(_ error: Error) -> Never {
    logger.critical("\(error)")
    if let mpi = communicator as? MPICommunicator, communicator.size > 1, case CommunicatorError.timeout = error {
      mpi.abort(1)
    }
    exit(1)
  }

  /// Sets the threads of this process's GEMMs and loops.
  public static func setThreads(_ threads: Int) {
    BLAS.setThreads(threads)
    Parallel.workers = threads
  }

  /// Threads each rank's GEMMs and loops use.
  public static var threadsPerRank: Int { BLAS.threadsPerRank }

  /// What the process's GEMMs multiply from now on.
  public static var precision: Precision {
    get { BLAS.matmulPrecision }
    set { BLAS.matmulPrecision = newValue }
  }
}
