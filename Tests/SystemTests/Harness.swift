// The harness of the system tests: runs the fairtune binary (FAIRTUNE_BINARY, or the release
// build) directly, under mpirun, in network namespaces or through Slurm, and captures its output.
import Foundation
import Tensors
import XCTest

struct ProcessResult {
  let status: Int32
  let output: String
  let seconds: Double
}

enum Harness {
  /// The fairtune executable next to the test bundle (or FAIRTUNE_BINARY).
  static var binary: String {
    if let path = ProcessInfo.processInfo.environment["FAIRTUNE_BINARY"] { return path }
    let products = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    var dir = products
    while dir.path != "/" {
      let candidate = dir.appendingPathComponent("fairtune").path
      if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
      dir = dir.deletingLastPathComponent()
    }
    return products.appendingPathComponent("fairtune").path
  }

  static var mpirun: String? {
    for dir in ["/usr/bin", "/usr/local/bin"] where FileManager.default.isExecutableFile(atPath: dir + "/mpirun") {
      return dir + "/mpirun"
    }
    return nil
  }

  /// Runs a command with a time limit; output is stdout and stderr together.
  static func run(_ executable: String, _ arguments: [String], limit: Double = 300) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    var environment = ProcessInfo.processInfo.environment
    environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
    environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    // scripts/sanitize.sh: the ranks' own sanitizer options (see there).
    if let options = environment["FAIRTUNE_RANK_ASAN_OPTIONS"] { environment["ASAN_OPTIONS"] = options }
    process.environment = environment
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    let start = Clock.now()
    try process.run()
    // The reader thread hands the output over through a semaphore (a happens-before edge).
    final class Output: @unchecked Sendable { var data = Data() }
    let output = Output()
    let done = DispatchSemaphore(value: 0)
    let reader = Thread {
      output.data = pipe.fileHandleForReading.readDataToEndOfFile()
      done.signal()
    }
    reader.start()
    while process.isRunning && Clock.now() - start < limit { usleep(20_000) }
    if process.isRunning {
      process.terminate()
      kill(process.processIdentifier, SIGKILL)
    }
    process.waitUntilExit()
    done.wait()
    return ProcessResult(status: process.terminationStatus, output: String(decoding: output.data, as: UTF8.self), seconds: Clock.now() - start)
  }

  static func mpi(_ ranks: Int, _ arguments: [String], limit: Double = 300) throws -> ProcessResult {
    guard let mpirun else { throw XCTSkip("mpirun is not installed") }
    return try run(mpirun, ["--oversubscribe", "-np", "\(ranks)", binary] + arguments, limit: limit)
  }

  /// Starts fairtune on `ranks` ranks under mpirun in the background, its output discarded.
  static func background(_ ranks: Int, _ arguments: [String]) throws -> Process {
    guard let mpirun else { throw XCTSkip("mpirun is not installed") }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: mpirun)
    process.arguments = ["--oversubscribe", "-np", "\(ranks)", binary] + arguments
    var environment = ProcessInfo.processInfo.environment
    environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
    environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    // scripts/sanitize.sh: the ranks' own sanitizer options (see there).
    if let options = environment["FAIRTUNE_RANK_ASAN_OPTIONS"] { environment["ASAN_OPTIONS"] = options }
    process.environment = environment
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    return process
  }

  /// A checkpoint's tensors by name, through `fairtune export` (so tests need no module beyond
  /// Tensors).
  static func tensors(ofCheckpoint path: String) throws -> [String: [Float]] {
    let out = path + ".safetensors"
    let result = try run(binary, ["export", path, "--safetensors", out])
    XCTAssertEqual(result.status, 0, result.output)
    let file = try SafeTensors(contentsOf: out)
    return Dictionary(uniqueKeysWithValues: try file.names.map { ($0, try file.floats($0)) })
  }

  static func temporaryFile(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fairtune-mpi-\(getpid())")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent(name).path
  }
}
