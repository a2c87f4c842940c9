// Writing a set of output files so that an error leaves no partial output behind.
import Foundation
import Support

public enum OutputFiles {
  /// Writes every file under `directory` (created if needed) as one set (`AtomicFile`): every
  /// new file is complete before the first is renamed into place, and if any write fails no
  /// file is replaced.
  public static func write(_ files: [(name: String, contents: Data)], into directory: URL) throws {
    let manager = FileManager.default
    do {
      try manager.createDirectory(at: directory, withIntermediateDirectories: true)
    } catch {
      throw OutputError(
        path: directory.path, reason: "\(error.localizedDescription); check that the parent directory is writable.")
    }
    try AtomicFile.write(files.map { (directory.appendingPathComponent($0.name).path, $0.contents) })
  }
}
