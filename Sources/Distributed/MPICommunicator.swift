// MPICommunicator: the Communicator over OpenMPI (the only code that imports CMPI).
import CMPI
import Tensors

#if canImport(Glibc)
  import Glibc
#endif

public final class MPICommunicator: Communicator {
  public let rank: Int
  public let size: Int
  /// Seconds a collective may go without completing before the rank gives up.
  public let timeout: Double
  let comm: MPI_Comm

  nonisolated(unsafe) private static var initialized = false

  /// Whether this process was started by a launcher (mpirun, srun with PMIx, ...).
  public static var launchedByMPI: Bool {
    let names: [String] = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"]
    return names.contains { getenv($0) != nil }
  }

  /// The world: MPI when launched by mpirun/srun, otherwise a single local rank (no MPI at all,
  /// so a plain `fairtune` run needs no launcher).
  public static func world(timeout: Double) throws -> Communicator {
    guard launchedByMPI else { return LocalCommunicator() }
    if !initialized {
      // libnbc's default nonblocking all-reduce for large buffers is several times slower than
      // its ring (measured here: about 1.2 GB/s against 3 GB/s on shared memory); a user's own
      // OMPI_MCA_ setting wins.
      setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1", 0)
      var provided: Int32 = 0
      // Every MPI call comes from the main thread (gradient buckets are progressed by polling
      // between layers), so FUNNELED is all the overlap design needs.
      try check("MPI_Init_thread", MPI_Init_thread(nil, nil, Int32(MPI_THREAD_FUNNELED), &provided))
      guard provided >= Int32(MPI_THREAD_FUNNELED) else {
        throw CommunicatorError.mismatch("MPI provides thread level \(provided), fairtune needs MPI_THREAD_FUNNELED")
      }
      initialized = true
      atexit { MPICommunicator.finalize() }
    }
    return try MPICommunicator(comm: fairtune_mpi_comm_world(), timeout: timeout)
  }

  init(comm: MPI_Comm, timeout: Double) throws {
    self.comm = comm
    self.timeout = timeout
    try Self.check("MPI_Comm_set_errhandler", MPI_Comm_set_errhandler(comm, fairtune_mpi_errors_return()))
    var r: Int32 = 0
    var s: Int32 = 0
    try Self.check("MPI_Comm_rank", MPI_Comm_rank(comm, &r))
    try Self.check("MPI_Comm_size", MPI_Comm_size(comm, &s))
    rank = Int(r)
    size = Int(s)
  }

  public static func finalize() {
    guard initialized else { return }
    initialized = false
    var finalized: Int32 = 0
    MPI_Finalized(&finalized)
    if finalized == 0 { MPI_Finalize() }
  }

  /// Ends every rank of the job: used when this rank cannot go on (a timeout, a fatal error),
  /// so that no other rank waits for it forever.
  public func abort(_ code: Int32) -> Never {
    MPI_Abort(comm, code)
    exit(code)
  }

  static func check(_ call: String, _ code: Int32) throws {
    guard code != MPI_SUCCESS else { return }
    var buffer = [CChar](repeating: 0, count: Int(fairtune_mpi_max_error_string()) + 1)
    var length: Int32 = 0
    MPI_Error_string(code, &buffer, &length)
    let message = String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    throw CommunicatorError.mpi(call: call, code: code, message: message)
  }

  /// A started nonblocking operation, completed by polling with a deadline.
  final class Request: PendingReduction {
    var request: MPI_Request?
    let call: String
    let owner: MPICommunicator
    var done = false

    init(_ call: String, owner: MPICommunicator) {
      self.call = call
      self.owner = owner
    }

    func test() throws -> Bool {
      if done { return true }
      var flag: Int32 = 0
      try MPICommunicator.check(call, MPI_Test(&request, &flag, fairtune_mpi_status_ignore()))
      done = flag != 0
      return done
    }

    func wait() throws {
      let deadline = Clock.now() + owner.timeout
      var polls = 0
      while try !test() {
        polls += 1
        // After a short spin, give the core away between polls: with every core busy (ranks
        // >= cores), spinning ranks starve the kernel threads that deliver TCP traffic.
        if polls > 200 { sched_yield() }
        if polls % 1024 == 0, Clock.now() > deadline {
          throw CommunicatorError.timeout(call: call, seconds: owner.timeout, rank: owner.rank)
        }
      }
    }
  }

  private func start(_ call: String, _ body: (UnsafeMutablePointer<MPI_Request?>) -> Int32) throws -> Request {
    let r = Request(call, owner: self)
    try Self.check(call, body(&r.request))
    return r
  }

  public func barrier() throws {
    try start("MPI_Ibarrier") { MPI_Ibarrier(comm, $0) }.wait()
  }

  public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws {
    guard size > 1, bytes.count > 0 else { return }
    // Counts are Int32: large buffers go in pieces.
    let piece = 1 << 30
    var offset = 0
    while offset < bytes.count {
      let n = min(piece, bytes.count - offset)
      try start("MPI_Ibcast") {
        MPI_Ibcast(bytes.baseAddress! + offset, Int32(n), fairtune_mpi_byte(), Int32(root), comm, $0)
      }.wait()
      offset += n
    }
  }

  public func allReduceSum(_ values: UnsafeMutablePointer<Float>, count: Int) throws {
    guard size > 1, count > 0 else { return }
    try startAllReduceSum(values, count: count).wait()
  }

  public func allReduceSum(_ values: UnsafeMutablePointer<Double>, count: Int) throws {
    guard size > 1, count > 0 else { return }
    try start("MPI_Iallreduce") {
      MPI_Iallreduce(fairtune_mpi_in_place(), values, Int32(count), fairtune_mpi_double(), fairtune_mpi_sum(), comm, $0)
    }.wait()
  }

  /// A blocking MPI_Allreduce, without the timeout: the benchmark's reference for what the
  /// gradient reduction costs when nothing of it is hidden.
  public func blockingAllReduceSum(_ values: UnsafeMutablePointer<Float>, count: Int) throws {
    try Self.check("MPI_Allreduce", MPI_Allreduce(fairtune_mpi_in_place(), values, Int32(count), fairtune_mpi_float(), fairtune_mpi_sum(), comm))
  }

  public func startAllReduceSum(_ values: UnsafeMutablePointer<Float>, count: Int) throws -> PendingReduction {
    precondition(count < Int(Int32.max), "all-reduce of \(count) floats: split it into buckets")
    return try start("MPI_Iallreduce") {
      MPI_Iallreduce(fairtune_mpi_in_place(), values, Int32(count), fairtune_mpi_float(), fairtune_mpi_sum(), comm, $0)
    }
  }

  /// bfloat16 on the wire: the values rounded into a 16-bit staging buffer, summed by a
  /// user-defined operation that adds in fp32 at every hop and rounds the sum to bfloat16, and
  /// widened back into `values` when the reduction completes.
  public func startAllReduceSumBFloat16(_ values: UnsafeMutablePointer<Float>, count: Int) throws -> PendingReduction {
    precondition(count < Int(Int32.max), "all-reduce of \(count) values: split it into buckets")
    let staging = UnsafeMutablePointer<UInt16>.allocate(capacity: max(count, 1))
    for i in 0..<count { staging[i] = UInt16(truncatingIfNeeded: BFloat16.rounded(values[i]).bitPattern >> 16) }
    let request: Request
    do {
      request = try start("MPI_Iallreduce") {
        MPI_Iallreduce(fairtune_mpi_in_place(), staging, Int32(count), fairtune_mpi_uint16(), fairtune_mpi_bf16_sum(), comm, $0)
      }
    } catch {
      staging.deallocate()
      throw error
    }
    return CompletedAfter(request) {
      for i in 0..<count { values[i] = Float(bitPattern: UInt32(staging[i]) << 16) }
      staging.deallocate()
    }
  }

  public func allGather(_ send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer) throws {
    precondition(receive.count == send.count * size, "allGather: receive must hold size * send bytes")
    try start("MPI_Iallgather") {
      MPI_Iallgather(send.baseAddress, Int32(send.count), fairtune_mpi_byte(), receive.baseAddress, Int32(send.count), fairtune_mpi_byte(), comm, $0)
    }.wait()
  }

  public func allGatherVariable(
    _ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>, counts: [Int]
  ) throws {
    precondition(counts.count == size && counts[rank] == count)
    var receiveCounts = counts.map { Int32($0) }
    var displacements = [Int32](repeating: 0, count: size)
    for r in 1..<max(size, 1) { displacements[r] = displacements[r - 1] + receiveCounts[r - 1] }
    try start("MPI_Iallgatherv") {
      MPI_Iallgatherv(send, Int32(count), fairtune_mpi_float(), receive, &receiveCounts, &displacements, fairtune_mpi_float(), comm, $0)
    }.wait()
  }

  public func split(color: Int, key: Int) throws -> Communicator? {
    var newComm: MPI_Comm?
    try Self.check("MPI_Comm_split", MPI_Comm_split(comm, color < 0 ? fairtune_mpi_undefined() : Int32(color), Int32(key), &newComm))
    guard color >= 0, let newComm else { return nil }
    return try MPICommunicator(comm: newComm, timeout: timeout)
  }

  public func send(_ bytes: [UInt8], to rank: Int, tag: Int) throws {
    var copy = bytes
    try copy.withUnsafeMutableBytes { buffer in
      try start("MPI_Isend") {
        MPI_Isend(buffer.baseAddress, Int32(buffer.count), fairtune_mpi_byte(), Int32(rank), Int32(tag), comm, $0)
      }.wait()
    }
  }

  public func receive(tag: Int?, timeout: Double) throws -> (source: Int, tag: Int, bytes: [UInt8])? {
    let deadline = Clock.now() + timeout
    var status = MPI_Status()
    var flag: Int32 = 0
    var polls = 0
    while true {
      try Self.check("MPI_Iprobe", MPI_Iprobe(fairtune_mpi_any_source(), tag.map(Int32.init) ?? fairtune_mpi_any_tag(), comm, &flag, &status))
      if flag != 0 { break }
      if Clock.now() > deadline { return nil }
      polls += 1
      if polls > 200 { usleep(1000) }
    }
    var count: Int32 = 0
    try Self.check("MPI_Get_count", MPI_Get_count(&status, fairtune_mpi_byte(), &count))
    var bytes = [UInt8](repeating: 0, count: Int(count))
    let source = status.MPI_SOURCE
    let messageTag = status.MPI_TAG
    try bytes.withUnsafeMutableBytes { buffer in
      try Self.check("MPI_Recv", MPI_Recv(buffer.baseAddress, count, fairtune_mpi_byte(), source, messageTag, comm, fairtune_mpi_status_ignore()))
    }
    return (Int(source), Int(messageTag), bytes)
  }
}
