// Outputs written whole or not at all: into a temporary sibling, published into place at the
// end by Support's atomic writer (every file fsynced, one rename, the parent fsynced).
import Foundation
import Support

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
        path: self.destination.path, message: "\(option) \(self.destination.path) already exists; remove it or choose another directory.")
    }
    let parent = self.destination.deletingLastPathComponent()
    do {
      try manager.createDirectory(at: parent, withIntermediateDirectories: true)
    } catch {
      throw OutputError(path: parent.path, message: "cannot create \(parent.path) for \(option) (\(error.localizedDescription)).")
    }
    temporary = parent.appendingPathComponent(
      ".\(self.destination.lastPathComponent).partial-\(ProcessInfo.processInfo.processIdentifier)")
    try? manager.removeItem(at: temporary)
    do {
      try manager.createDirectory(at: temporary, withIntermediateDirectories: false)
    } catch {
      throw OutputError(path: parent.path, message: "cannot write in \(parent.path) (\(error.localizedDescription)); check the permissions.")
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
      throw OutputError(
        path: destination.path,
        message: "cannot write \(name) of \(destination.path) (\(Self.reason(error))); is the disk full, or a file-size limit (ulimit -f) set? Nothing was left under \(destination.lastPathComponent).")
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
    try AtomicFile.publishFolder(temporary.path, as: destination.path)
    committed = true
  }
}
