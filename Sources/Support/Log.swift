// fairtune's output through swift-log: what people read (progress, results) goes to stdout from
// rank 0 as plain lines; warnings and errors go to stderr from any rank, prefixed with the rank
// on multi-rank runs so that a line says where it came from.
import Foundation
import Logging

#if canImport(Glibc)
  import Glibc
#else
  import Darwin
#endif

public enum Log {
  /// The process's place in the job, as the handler prefixes it.
  private nonisolated(unsafe) static var place = (rank: 0, size: 1)
  private static let lock = NSLock()
  private nonisolated(unsafe) static var bootstrapped = false

  /// Installs fairtune's handler (once per process; later calls only update the rank).
  public static func bootstrap(rank: Int = 0, size: Int = 1) {
    lock.lock()
    defer { lock.unlock() }
    place = (rank, size)
    guard !bootstrapped else { return }
    bootstrapped = true
    LoggingSystem.bootstrap { label in RankLogHandler(label: label) }
  }

  /// Tells the handler which rank of how many this process is (after joining the job).
  public static func setRank(_ rank: Int, of size: Int) {
    lock.lock()
    place = (rank, size)
    lock.unlock()
  }

  static var currentPlace: (rank: Int, size: Int) {
    lock.lock()
    defer { lock.unlock() }
    return place
  }

  /// A logger for one part of fairtune.
  public static func logger(_ label: String) -> Logger { Logger(label: "fairtune." + label) }

  /// A logger that drops everything (a sweep's trials, tests).
  public static let silent = Logger(label: "fairtune.silent") { _ in SwiftLogNoOpLogHandler() }

  /// The line a warning or error is written as: "fairtune: [rank N: ][warning: ]message".
  public static func line(_ level: Logger.Level, _ message: String, rank: Int, size: Int) -> String {
    "fairtune: " + (size > 1 ? "rank \(rank): " : "") + (level == .warning ? "warning: " : "") + message
  }
}

/// Writes info and notice lines to stdout on rank 0 (other ranks would repeat them), and
/// warnings and errors to stderr on every rank, as `Log.line` formats them; debug and trace are
/// dropped unless the level is lowered.
public struct RankLogHandler: LogHandler {
  public let label: String
  public var metadata: Logger.Metadata = [:]
  public var logLevel: Logger.Level = .info

  public init(label: String) { self.label = label }

  public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { metadata[key] }
    set { metadata[key] = newValue }
  }

  public func log(event: LogEvent) {
    let (rank, size) = Log.currentPlace
    let text = "\(event.message)"
    if event.level >= .warning {
      FileHandle.standardError.write(Data((Log.line(event.level, text, rank: rank, size: size) + "\n").utf8))
    } else if rank == 0 {
      print(text)
    }
  }
}
