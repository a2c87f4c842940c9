// A run directory: the options that define it, metrics.jsonl, checkpoints/ and final.ckpt; how a
// re-run finds where to resume, and refuses a directory made with different options.
import Foundation
import Support

public enum RunError: Error, CustomStringConvertible {
  case differentOptions(run: String, option: String, old: String, new: String)
  case unwritable(path: String, reason: String)
  case unreadable(path: String, reason: String)

  public var description: String {
    switch self {
    case .differentOptions(let run, let option, let old, let new):
      return "\(run) was made with \(option) \(old), this command has \(new): use another --out, or the same options to resume it"
    case .unwritable(let path, let reason):
      return "\(path): cannot write: \(reason)"
    case .unreadable(let path, let reason):
      return "\(path): cannot read: \(reason)"
    }
  }
}

public final class RunDirectory {
  public let path: String
  public var checkpoints: String { path + "/checkpoints" }
  public var finalCheckpoint: String { path + "/final.ckpt" }
  public var metricsFile: String { path + "/metrics.jsonl" }
  public var optionsFile: String { path + "/options.json" }

  /// Creates the directory (and checkpoints/) when missing, then checks that `options` (the
  /// options that define the run: everything but threads, output and the like) match those it
  /// was made with.
  public init(path: String, options: [String: String]) throws {
    self.path = path
    let fm = FileManager.default
    do {
      try fm.createDirectory(atPath: path + "/checkpoints", withIntermediateDirectories: true)
    } catch {
      throw RunError.unwritable(path: path, reason: error.localizedDescription)
    }
    if let data = fm.contents(atPath: optionsFile) {
      guard let old = (try? JSONSerialization.jsonObject(with: data)) as? [String: String] else {
        throw RunError.unreadable(path: optionsFile, reason: "not a JSON object of strings; remove it or use another --out")
      }
      for key in Set(old.keys).union(options.keys).sorted() where old[key] != options[key] {
        throw RunError.differentOptions(run: path, option: "--" + key, old: old[key] ?? "(unset)", new: options[key] ?? "(unset)")
      }
    } else {
      try writeAtomically(try JSONSerialization.data(withJSONObject: options, options: [.prettyPrinted, .sortedKeys]), to: optionsFile)
    }
  }

  public var isFinished: Bool { FileManager.default.fileExists(atPath: finalCheckpoint) }

  /// Checkpoint files, newest (highest step) first.
  public func checkpointFiles() -> [String] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: checkpoints)) ?? []
    return names.filter { $0.hasPrefix("step-") && $0.hasSuffix(".ckpt") }.sorted(by: >).map { checkpoints + "/" + $0 }
  }

  public static func checkpointName(step: Int) -> String { String(format: "step-%09d.ckpt", step) }

  /// The newest checkpoint that reads back whole; damaged ones are reported through `warn`
  /// and skipped.
  public func newestGoodCheckpoint(warn: (String) -> Void) -> (path: String, checkpoint: Checkpoint)? {
    for file in checkpointFiles() {
      do {
        return (file, try Checkpoint.read(file))
      } catch {
        warn("skipping \(error)")
      }
    }
    return nil
  }

  /// Removes all but the newest `keep` checkpoints.
  public func prune(keep: Int) {
    for old in checkpointFiles().dropFirst(max(keep, 1)) { try? FileManager.default.removeItem(atPath: old) }
  }

  public func writeAtomically(_ data: Data, to file: String) throws {
    do {
      try AtomicFile.write(data, to: file)
    } catch let error as OutputError {
      throw RunError.unwritable(path: file, reason: error.reason)
    }
  }
}

/// Appends one JSON object per line to metrics.jsonl, flushed as written.
public final class MetricsLog {
  private let handle: FileHandle

  public init(path: String) throws {
    if !FileManager.default.fileExists(atPath: path) {
      guard FileManager.default.createFile(atPath: path, contents: nil) else {
        throw RunError.unwritable(path: path, reason: "cannot create the file")
      }
    }
    guard let handle = FileHandle(forWritingAtPath: path) else {
      throw RunError.unwritable(path: path, reason: "cannot open it for writing")
    }
    handle.seekToEndOfFile()
    self.handle = handle
  }

  public func append(_ record: [String: Any]) {
    guard let data = try? JSONSerialization.data(withJSONObject: record, options: [.sortedKeys]) else { return }
    handle.write(data + Data("\n".utf8))
  }

  deinit { try? handle.close() }
}

/// Buffers for checkpoint snapshots, reused from one checkpoint to the next: a fresh allocation
/// of the model's size costs a page fault per 4 KiB on the training thread, more than the copy.
/// The writer hands a store back (under the lock) once it has laid out its tensors; while a
/// write is still using it, the next snapshot gets new buffers.
public final class SnapshotPool: @unchecked Sendable {
  public final class Store: @unchecked Sendable {
    public let buffers: [UnsafeMutableBufferPointer<Float>]

    init(sizes: [Int]) {
      buffers = sizes.map { UnsafeMutableBufferPointer<Float>.allocate(capacity: $0) }
    }

    var sizes: [Int] { buffers.map(\.count) }

    deinit { for buffer in buffers { buffer.deallocate() } }
  }

  private let lock = NSLock()
  private var spare: Store?

  public init() {}

  /// A store of these sizes: the spare one when it is free and fits, else a new one.
  public func take(sizes: [Int]) -> Store {
    lock.lock()
    defer { lock.unlock() }
    if let store = spare, store.sizes == sizes {
      spare = nil
      return store
    }
    return Store(sizes: sizes)
  }

  public func give(_ store: Store) {
    lock.lock()
    spare = store
    lock.unlock()
  }
}

/// Writes checkpoints on a background thread: the training thread only copies the tensors
/// (a snapshot), compression and the atomic write happen beside the next steps. At most
/// `pending` checkpoints wait or are being written; a further one waits for a slot (steps
/// that ask for checkpoints faster than the disk takes them are held back rather than
/// piling up snapshots in memory).
public final class CheckpointWriter {
  private let queue = DispatchQueue(label: "fairtune.checkpoint-writer")
  private let lock = NSLock()
  private let slots: DispatchSemaphore
  private var failure: Error?
  public private(set) var written: [(path: String, bytes: Int, seconds: Double)] = []

  public init(pending: Int = 2) {
    slots = DispatchSemaphore(value: max(1, pending))
  }

  /// Once a slot is free, takes the snapshot (`take`, on the calling thread), then builds the
  /// checkpoint from it, encodes and writes it on the writer's thread.
  public func write(_ take: () -> (() -> Checkpoint), to path: String, then: (() -> Void)? = nil) {
    slots.wait()
    let checkpoint = take()
    queue.async {
      defer { self.slots.signal() }
      let start = Date()
      do {
        let bytes = try checkpoint().encoded()
        try AtomicFile.write(bytes, to: path)
        self.lock.lock()
        self.written.append((path, bytes.count, Date().timeIntervalSince(start)))
        self.lock.unlock()
        then?()
      } catch {
        self.lock.lock()
        self.failure = self.failure ?? error
        self.lock.unlock()
      }
    }
  }

  /// Waits for every pending write; rethrows the first failure.
  public func finish() throws {
    queue.sync {}
    lock.lock()
    defer { lock.unlock() }
    if let failure { throw failure }
  }

  public func check() throws {
    lock.lock()
    defer { lock.unlock() }
    if let failure { throw failure }
  }
}
