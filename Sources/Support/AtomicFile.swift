// The one way fairtune replaces a file: write a temporary file in the same folder, fsync it,
// rename it over the target, fsync the folder. Until the rename the old file is untouched, and the
// rename is atomic, so a crash or a kill at any moment leaves either the old file or the new one.
import Foundation

#if canImport(Glibc)
  import Glibc
#else
  import Darwin
#endif

/// A file that could not be written, naming it and the cause.
public struct AtomicFileError: Error, CustomStringConvertible, Sendable {
  public let path: String
  public let reason: String

  public init(path: String, reason: String) {
    self.path = path
    self.reason = reason
  }

  public var description: String { "cannot write \(path): \(reason)" }
}

public enum AtomicFile {
  /// Replaces (or creates) `path` with `bytes`.
  public static func write(_ bytes: some ContiguousBytes, to path: String) throws {
    let staged = try stage(bytes, for: path)
    try commit([staged])
  }

  /// Replaces `path` with a copy of `source`.
  public static func copy(_ source: String, to path: String) throws {
    let data: Data
    do {
      data = try Data(contentsOf: URL(fileURLWithPath: source))
    } catch {
      throw AtomicFileError(path: path, reason: "cannot read \(source) (\(error.localizedDescription))")
    }
    try write(data, to: path)
  }

  /// Writes several files as a set: every new file is complete and fsynced before the first
  /// rename, and if writing any of them fails none is replaced.
  public static func write(_ files: [(path: String, bytes: Data)]) throws {
    var staged: [Staged] = []
    do {
      for file in files { staged.append(try stage(file.bytes, for: file.path)) }
    } catch {
      for file in staged { unlink(file.temporary) }
      throw error
    }
    try commit(staged)
  }

  /// The temporary name of `path` while it is written: hidden, in the same folder (rename is
  /// atomic only within a file system), and unique to the process.
  public static func temporaryName(for path: String) -> String {
    let url = URL(fileURLWithPath: path)
    return url.deletingLastPathComponent().path + "/.\(url.lastPathComponent).partial-\(getpid())"
  }

  struct Staged {
    var temporary: String
    var path: String
  }

  private static func errorText() -> String { String(cString: strerror(errno)) }

  /// The new contents in the temporary file, fsynced.
  static func stage(_ bytes: some ContiguousBytes, for path: String) throws -> Staged {
    let temporary = temporaryName(for: path)
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw AtomicFileError(path: path, reason: errorText() + "; check that its folder exists and is writable") }
    var failure: String?
    bytes.withUnsafeBytes { buffer in
      var offset = 0
      while offset < buffer.count {
        let n = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 {
          failure = errorText()
          return
        }
        offset += n
      }
    }
    if failure == nil && fsync(fd) != 0 { failure = errorText() }
    close(fd)
    if let failure {
      unlink(temporary)
      throw AtomicFileError(path: path, reason: failure)
    }
    return Staged(temporary: temporary, path: path)
  }

  /// Renames each staged file over its target, then fsyncs the folders so the renames last.
  static func commit(_ staged: [Staged]) throws {
    var folders = Set<String>()
    for (index, file) in staged.enumerated() {
      guard rename(file.temporary, file.path) == 0 else {
        let reason = errorText()
        for later in staged[index...] { unlink(later.temporary) }
        throw AtomicFileError(path: file.path, reason: reason)
      }
      folders.insert(URL(fileURLWithPath: file.path).deletingLastPathComponent().path)
    }
    for folder in folders {
      let fd = open(folder, O_RDONLY | O_CLOEXEC)
      if fd >= 0 {
        fsync(fd)
        close(fd)
      }
    }
  }
}
