// A logger whose lines a test can read back.
import Foundation
import Logging

/// The lines logged through `logger`, with their levels.
public final class CapturedLog: @unchecked Sendable {
  private let lock = NSLock()
  private var entries: [(level: Logger.Level, message: String)] = []

  public init() {}

  public var lines: [(level: Logger.Level, message: String)] {
    lock.lock()
    defer { lock.unlock() }
    return entries
  }

  public var logger: Logger {
    Logger(label: "test") { _ in Handler(log: self) }
  }

  fileprivate func append(_ level: Logger.Level, _ message: String) {
    lock.lock()
    entries.append((level, message))
    lock.unlock()
  }

  struct Handler: LogHandler {
    let log: CapturedLog
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
      get { metadata[key] }
      set { metadata[key] = newValue }
    }

    func log(event: LogEvent) { log.append(event.level, "\(event.message)") }
  }
}
