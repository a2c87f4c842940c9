// The atomic file writer: a writer killed mid-way leaves the old file whole, a folder publisher
// killed mid-way leaves only whole folders under their final names, a failed set replaces
// nothing, and errors name the file.
import Foundation
import Support
import XCTest

final class AtomicFileTests: XCTestCase {
  var folder: URL!

  override func setUpWithError() throws {
    folder = FileManager.default.temporaryDirectory.appendingPathComponent("fairtune-atomic-\(getpid())-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
  }

  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(at: folder)
  }

  /// This test bundle's `test` started in a child process with `environment` added, its output
  /// discarded: a writer to kill.
  func helper(_ test: String, _ environment: [String: String]) throws -> Process {
    let child = Process()
    child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
    child.arguments = ["SupportTests.AtomicFileTests/\(test)"]
    child.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    child.standardOutput = FileHandle.nullDevice
    child.standardError = FileHandle.nullDevice
    try child.run()
    return child
  }

  /// Generation g of the helper's file: `size` bytes, all equal to g.
  static let size = 24 << 20

  /// Not a test on its own: run by `testAWriterKilledMidwayLeavesTheOldFile` in a child process
  /// (FAIRTUNE_ATOMIC_HELPER names the file), it replaces the file with generation after
  /// generation until it is killed.
  func testHelperRewritesAFileUntilKilled() throws {
    guard let path = ProcessInfo.processInfo.environment["FAIRTUNE_ATOMIC_HELPER"] else { return }
    var generation: UInt8 = 1
    while true {
      try AtomicFile.write([UInt8](repeating: generation, count: Self.size), to: path)
      generation = generation == 255 ? 1 : generation + 1
    }
  }

  func testAWriterKilledMidwayLeavesTheOldFile() throws {
    let target = folder.appendingPathComponent("model.ckpt").path
    try AtomicFile.write([UInt8](repeating: 0, count: Self.size), to: target)
    var killedMidWrite = 0
    for round in 0..<4 {
      let child = try helper("testHelperRewritesAFileUntilKilled", ["FAIRTUNE_ATOMIC_HELPER": target])
      // The child's temporary name: the same folder and file, its own process id.
      let mine = AtomicFile.temporaryName(for: target)
      let temporary = String(mine.dropLast("\(getpid())".count)) + "\(child.processIdentifier)"
      // Wait until the child is writing (its temporary file exists, or, were it to write in
      // place, the target has changed), let it go on for a while, then kill it without warning.
      func writing() -> Bool {
        if FileManager.default.fileExists(atPath: temporary) { return true }
        let size = (try? FileManager.default.attributesOfItem(atPath: target)[.size] as? Int) ?? nil
        return size != Self.size
      }
      let deadline = Date().addingTimeInterval(30)
      while !writing() && Date() < deadline { usleep(200) }
      usleep(UInt32(round) * 7_000)
      kill(child.processIdentifier, SIGKILL)
      child.waitUntilExit()
      let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: target)))
      XCTAssertEqual(bytes.count, Self.size, "round \(round): the file has the length of no generation")
      XCTAssertTrue(bytes.allSatisfy { $0 == bytes.first }, "round \(round): the file mixes generations")
      if FileManager.default.fileExists(atPath: temporary) {
        // The kill came before the rename: the new contents were incomplete or unsynced.
        killedMidWrite += 1
        try FileManager.default.removeItem(atPath: temporary)
      }
    }
    print("atomic writer: \(killedMidWrite) of 4 kills came while a new file was being written")
    XCTAssertGreaterThan(killedMidWrite, 0, "no kill came while a new file was being written")
  }

  /// Files of each folder the folder helper publishes, and their size.
  static let folderFiles = 6
  static let folderFileSize = 2 << 20

  /// Not a test on its own: run by `testAFolderPublisherKilledMidwayLeavesWholeFolders` in a
  /// child process (FAIRTUNE_FOLDER_HELPER names the parent), it publishes folder after folder,
  /// each of `folderFiles` files whose bytes are all the folder's generation, until it is killed.
  func testHelperPublishesFoldersUntilKilled() throws {
    guard let parent = ProcessInfo.processInfo.environment["FAIRTUNE_FOLDER_HELPER"] else { return }
    var generation = 1
    while true {
      let temporary = parent + "/.out-\(generation).partial-\(getpid())"
      try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: true)
      for file in 0..<Self.folderFiles {
        try Data(repeating: UInt8(generation % 251), count: Self.folderFileSize).write(to: URL(fileURLWithPath: temporary + "/part-\(file)"))
      }
      try AtomicFile.publishFolder(temporary, as: parent + "/out-\(generation)")
      generation += 1
    }
  }

  func testAFolderPublisherKilledMidwayLeavesWholeFolders() throws {
    var published = 0
    var partial = 0
    for round in 0..<4 {
      let parent = folder.appendingPathComponent("round-\(round)").path
      try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
      let child = try helper("testHelperPublishesFoldersUntilKilled", ["FAIRTUNE_FOLDER_HELPER": parent])
      // Let it publish a folder or two, then kill it without warning at a moment that varies.
      let deadline = Date().addingTimeInterval(30)
      while (try FileManager.default.contentsOfDirectory(atPath: parent)).filter({ $0.hasPrefix("out-") }).isEmpty && Date() < deadline {
        usleep(500)
      }
      usleep(UInt32(round) * 11_000)
      kill(child.processIdentifier, SIGKILL)
      child.waitUntilExit()
      for name in try FileManager.default.contentsOfDirectory(atPath: parent) {
        guard name.hasPrefix("out-"), let generation = Int(name.dropFirst(4)) else {
          partial += 1  // the folder being written when the kill came: never under its final name
          continue
        }
        published += 1
        let files = try FileManager.default.contentsOfDirectory(atPath: parent + "/" + name).sorted()
        XCTAssertEqual(files, (0..<Self.folderFiles).map { "part-\($0)" }.sorted(), "round \(round): \(name) is missing files")
        for file in files {
          let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: parent + "/" + name + "/" + file)))
          XCTAssertEqual(bytes.count, Self.folderFileSize, "round \(round): \(name)/\(file) is short")
          XCTAssertTrue(bytes.allSatisfy { $0 == UInt8(generation % 251) }, "round \(round): \(name)/\(file) holds another generation")
        }
      }
    }
    print("folder publisher: \(published) folders published whole; \(partial) kills came while a folder was being written")
    XCTAssertGreaterThan(published, 0, "the helper published no folder")
    XCTAssertGreaterThan(partial, 0, "no kill came while a folder was being written")
  }

  func testASetIsReplacedWholeOrNotAtAll() throws {
    let a = folder.appendingPathComponent("a.md").path
    let b = folder.appendingPathComponent("b.md").path
    try AtomicFile.write([(a, Data("old a".utf8)), (b, Data("old b".utf8))])
    let missing = folder.appendingPathComponent("no-such-folder/c.md").path
    XCTAssertThrowsError(try AtomicFile.write([(a, Data("new a".utf8)), (missing, Data("c".utf8)), (b, Data("new b".utf8))])) { error in
      XCTAssertTrue("\(error)".contains(missing), "\(error)")
    }
    XCTAssertEqual(try String(contentsOfFile: a, encoding: .utf8), "old a")
    XCTAssertEqual(try String(contentsOfFile: b, encoding: .utf8), "old b")
    let left = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.contains("partial") }
    XCTAssertEqual(left, [], "temporary files are removed after a failure")
    try AtomicFile.write([(a, Data("new a".utf8)), (b, Data("new b".utf8))])
    XCTAssertEqual(try String(contentsOfFile: b, encoding: .utf8), "new b")
  }

  func testCopyReplacesTheTarget() throws {
    let source = folder.appendingPathComponent("trial.ckpt").path
    let target = folder.appendingPathComponent("best.ckpt").path
    try AtomicFile.write(Data("first".utf8), to: target)
    try AtomicFile.write(Data("second".utf8), to: source)
    try AtomicFile.copy(source, to: target)
    XCTAssertEqual(try String(contentsOfFile: target, encoding: .utf8), "second")
    XCTAssertThrowsError(try AtomicFile.copy(source + ".missing", to: target))
    XCTAssertEqual(try String(contentsOfFile: target, encoding: .utf8), "second", "a failed copy keeps the old file")
  }
}
