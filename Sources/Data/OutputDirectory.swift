// Outputs written whole or not at all: into a temporary sibling, renamed into place at the end.
import Foundation

/// A directory being written. Work goes into `temporary` (a hidden sibling of the destination);
/// `commit()` renames it to the destination, and a directory that is never committed is
/// removed, so a failed or interrupted run leaves no partial output under the final name.
public final class OutputDirectory {
  public let destination: URL
  public let temporary: URL
  private var committed = false

  /// Refuses an existing destination: outputs are never overwritten in place.
  public init(_ destination: URL, option: String) throws {
    self.destination = destination.standardizedFileURL
    let manager = FileManager.default
    if manager.fileExists(atPath: self.destination.path) {
      throw OutputError(
        "\(option) \(self.destination.path) already exists; remove it or choose another directory.")
    }
    let parent = self.destination.deletingLastPathComponent()
    do {
      try manager.createDirectory(at: parent, withIntermediateDirectories: true)
    } catch {
      throw OutputError("cannot create \(parent.path) for \(option) (\(error.localizedDescription)).")
    }
    temporary = parent.appendingPathComponent(
      ".\(self.destination.lastPathComponent).partial-\(ProcessInfo.processInfo.processIdentifier)")
    try? manager.removeItem(at: temporary)
    do {
      try manager.createDirectory(at: temporary, withIntermediateDirectories: false)
    } catch {
      throw OutputError("cannot write in \(parent.path) (\(error.localizedDescription)); check the permissions.")
    }
  }

  deinit {
    if !committed { try? FileManager.default.removeItem(at: temporary) }
  }

  public func file(_ name: String) -> URL { temporary.appendingPathComponent(name) }

  public func write(_ bytes: [UInt8], to name: String) throws {
    try guarded(name) {
      // POSIX calls, so that a failure carries the system's reason (EFBIG, ENOSPC, ...).
      let descriptor = open(file(name).path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
      guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
      defer { close(descriptor) }
      var offset = 0
      while offset < bytes.count {
        let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
        guard written > 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        offset += written
      }
    }
  }

  /// Runs `body`, which writes the file `name`; a failure becomes an error that names the
  /// destination and the system's reason.
  public func guarded<T>(_ name: String, _ body: () throws -> T) throws -> T {
    do {
      return try body()
    } catch let error as OutputError {
      throw error
    } catch {
      throw OutputError("cannot write \(name) of \(destination.path) (\(Self.reason(error))); is the disk full, or a file-size limit (ulimit -f) set? Nothing was left under \(destination.lastPathComponent).")
    }
  }

  /// The system's words for a failed file operation (the POSIX error under Foundation's).
  public static func reason(_ error: Error) -> String {
    let ns = error as NSError
    if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
      return String(cString: strerror(Int32(underlying.code)))
    }
    if let posix = error as? POSIXError { return String(cString: strerror(posix.code.rawValue)) }
    if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
    return error.localizedDescription
  }

  public func commit() throws {
    do {
      try FileManager.default.moveItem(at: temporary, to: destination)
      committed = true
    } catch {
      throw OutputError("cannot rename \(temporary.path) to \(destination.path) (\(error.localizedDescription)).")
    }
  }
}

/// A problem writing an output, with what to do about it.
public struct OutputError: Error, CustomStringConvertible {
  public let description: String
  public init(_ description: String) { self.description = description }
}
