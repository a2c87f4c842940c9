// Writing a set of output files so that an error leaves no partial output behind.
import Foundation

/// A failure to write the outputs, naming the path and the cause.
public struct OutputError: Error, CustomStringConvertible {
  public let path: String
  public let reason: String

  public var description: String { "cannot write \(path): \(reason)" }
}

public enum OutputFiles {
  /// Writes every file under `directory` (created if needed): first each under a hidden
  /// temporary name, then all renamed into place. If any write fails, the temporary files are
  /// removed and no file is replaced.
  public static func write(_ files: [(name: String, contents: Data)], into directory: URL) throws {
    let manager = FileManager.default
    do {
      try manager.createDirectory(at: directory, withIntermediateDirectories: true)
    } catch {
      throw OutputError(
        path: directory.path, reason: "\(error.localizedDescription); check that the parent directory is writable.")
    }
    let token = UUID().uuidString
    var written: [(temporary: URL, final: URL)] = []
    do {
      for file in files {
        let final = directory.appendingPathComponent(file.name)
        let temporary = directory.appendingPathComponent(".\(file.name).\(token).partial")
        do {
          try file.contents.write(to: temporary)
        } catch {
          throw OutputError(path: final.path, reason: error.localizedDescription)
        }
        written.append((temporary, final))
      }
      for file in written {
        guard rename(file.temporary.path, file.final.path) == 0 else {
          throw OutputError(path: file.final.path, reason: String(cString: strerror(errno)))
        }
      }
    } catch {
      for file in written { try? manager.removeItem(at: file.temporary) }
      throw error
    }
  }
}
