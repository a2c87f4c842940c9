// The one way fairtune publishes a file or a folder: write a temporary one in the same folder,
// fsync it (every file of a folder, and the folder), rename it into place, fsync the parent. Until
// the rename the old file (or no folder) is there, and the rename is atomic, so a crash or a kill
// at any moment leaves either the old file or the new one, and a folder whole or not at all.
import Foundation

#if canImport(Glibc)
  import Glibc
#else
  import Darwin
#endif

/// An output that could not be written, naming it and the cause (and what to do about it).
public struct OutputError: Error, CustomStringConvertible, Sendable {
  public let path: String
  public let reason: String
  public let description: String

  public init(path: String, reason: String) {
    self.path = path
    self.reason = reason
    description = "cannot write \(path): \(reason)"
  }

  /// An error about `path` in words of its own (an option that names an existing folder, say).
  public init(path: String, message: String) {
    self.path = path
    reason = message
    description = message
  }
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
      throw OutputError(path: path, reason: "cannot read \(source) (\(error.localizedDescription))")
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

  /// Publishes the folder written at `temporary` (a sibling of `destination`, so on the same file
  /// system) as `destination`, which must not exist: every file and folder in it fsynced, one
  /// rename, the parent fsynced.
  public static func publishFolder(_ temporary: String, as destination: String) throws {
    var entries: [String] = []
    if let walk = FileManager.default.enumerator(atPath: temporary) {
      while let relative = walk.nextObject() as? String { entries.append(temporary + "/" + relative) }
    }
    for entry in entries + [temporary] {
      let fd = open(entry, O_RDONLY | O_CLOEXEC)
      guard fd >= 0 else { throw OutputError(path: destination, reason: "cannot open \(entry) to sync it: \(errorText())") }
      let synced = fsync(fd) == 0
      let reason = errorText()
      close(fd)
      guard synced else { throw OutputError(path: destination, reason: "cannot sync \(entry): \(reason)") }
    }
    guard rename(temporary, destination) == 0 else { throw OutputError(path: destination, reason: errorText()) }
    syncFolder(URL(fileURLWithPath: destination).deletingLastPathComponent().path)
  }

  private static func syncFolder(_ folder: String) {
    let fd = open(folder, O_RDONLY | O_CLOEXEC)
    if fd >= 0 {
      fsync(fd)
      close(fd)
    }
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
    guard fd >= 0 else { throw OutputError(path: path, reason: errorText() + "; check that its folder exists and is writable") }
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
      throw OutputError(path: path, reason: failure)
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
        throw OutputError(path: file.path, reason: reason)
      }
      folders.insert(URL(fileURLWithPath: file.path).deletingLastPathComponent().path)
    }
    for folder in folders { syncFolder(folder) }
  }
}
