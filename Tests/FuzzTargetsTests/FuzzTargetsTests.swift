import Foundation
import Training
import XCTest

@testable import FuzzTargets

/// The fuzz targets outside the fuzzer: their seeds are valid, the committed corpora and the
/// inputs fuzzing once crashed on replay cleanly, and cut or flipped seeds are refused by name.
final class FuzzTargetsTests: XCTestCase {
  static let fuzzDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("fuzz")

  func testEverySeedIsAccepted() throws {
    for target in FuzzTarget.allCases {
      let seeds = try target.seeds()
      XCTAssertFalse(seeds.isEmpty, "\(target) has no seed")
      for seed in seeds {
        XCTAssertNil(target.run(seed.bytes), "\(target) seed \(seed.name)")
      }
    }
  }

  /// Every committed input (the seed corpora and the regressions: inputs that once crashed a
  /// reader, a trap or a leak) goes through its reader without either.
  func testCommittedInputsReplay() throws {
    var replayed = 0
    for target in FuzzTarget.allCases {
      for folder in ["corpus", "regressions"] {
        let directory = Self.fuzzDirectory.appendingPathComponent(folder).appendingPathComponent(target.rawValue)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        if folder == "corpus" { XCTAssertFalse(names.isEmpty, "no committed corpus for \(target) in \(directory.path)") }
        for name in names.sorted() where !name.hasPrefix(".") {
          let bytes = [UInt8](try Data(contentsOf: directory.appendingPathComponent(name)))
          let message = target.run(bytes)
          if folder == "corpus" { XCTAssertNil(message, "\(target) seed \(name) is refused") }
          replayed += 1
        }
      }
    }
    // A count: at least one committed seed per target.
    XCTAssertGreaterThanOrEqual(replayed, FuzzTarget.allCases.count)
  }

  /// A seed cut anywhere is refused or read without a trap; for the formats with an end marker
  /// or checksums, every cut is refused.
  func testCutSeeds() throws {
    for target in FuzzTarget.allCases {
      for seed in try target.seeds() {
        let step = max(1, seed.bytes.count / 97)
        for length in stride(from: 0, to: seed.bytes.count, by: step) {
          let message = target.run(Array(seed.bytes.prefix(length)))
          if [.checkpoint, .safetensors].contains(target) {
            XCTAssertNotNil(message, "\(target) \(seed.name) cut to \(length) bytes is accepted")
          }
        }
      }
    }
  }

  /// Every byte of the checkpoint seed flipped in turn: the checksums refuse every change.
  func testFlippedCheckpointBytes() throws {
    let seed = try FuzzTarget.checkpoint.seeds()[0].bytes
    for index in seed.indices {
      var bytes = seed
      bytes[index] ^= 0x5A
      XCTAssertNotNil(FuzzTarget.checkpoint.run(bytes), "byte \(index) changed and the checkpoint is accepted")
    }
  }

  // MARK: What fuzzing found (each test traps without its fix)

  /// The offset of the first tensor's record (its name length) in an encoded checkpoint.
  private func firstTensorOffset(_ bytes: [UInt8]) -> Int {
    var jsonLength = 0
    for i in 0..<8 { jsonLength |= Int(bytes[12 + i]) << (8 * i) }
    return 12 + 8 + jsonLength + 4
  }

  private func patch(_ bytes: inout [UInt8], at offset: Int, _ value: UInt64) {
    for i in 0..<8 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
  }

  /// A stored length of 2^64 - 1 once overflowed the reader's bounds check.
  func testCheckpointLengthPastTheEnd() throws {
    var bytes = try FuzzTarget.checkpoint.seeds()[0].bytes
    let tensor = firstTensorOffset(bytes)
    let nameLength = Int(bytes[tensor]) | Int(bytes[tensor + 1]) << 8
    let rank = Int(bytes[tensor + 2 + nameLength])
    let compressedBytes = tensor + 2 + nameLength + 1 + 8 * rank + 1 + 8
    patch(&bytes, at: compressedBytes, UInt64.max)
    let message = try XCTUnwrap(FuzzTarget.checkpoint.run(bytes))
    XCTAssertTrue(message.contains("conv1.weight"), message)
  }

  /// Dimensions whose product overflows once trapped, and a header that claims more bytes than
  /// the stored data can hold must be refused before anything is allocated.
  func testCheckpointShapeAndSizeOutOfProportion() throws {
    let seed = try FuzzTarget.checkpoint.seeds()[0].bytes
    let tensor = firstTensorOffset(seed)
    let nameLength = Int(seed[tensor]) | Int(seed[tensor + 1]) << 8
    let dims = tensor + 2 + nameLength + 1
    var overflowing = seed
    for d in 0..<4 { patch(&overflowing, at: dims + 8 * d, 1 << 39) }
    XCTAssertNotNil(FuzzTarget.checkpoint.run(overflowing))
    // One dimension of 2^38: 2^40 raw bytes claimed, as zstd data of 72 stored bytes (which
    // cannot make more than 2.4 MB); decoding once allocated the terabyte first.
    var huge = seed
    patch(&huge, at: dims, 1 << 38)
    for d in 1..<4 { patch(&huge, at: dims + 8 * d, 1) }
    huge[dims + 32] = 1
    patch(&huge, at: dims + 32 + 1, 1 << 40)
    XCTAssertTrue(try XCTUnwrap(FuzzTarget.checkpoint.run(huge)).contains("conv1.weight"))
  }

  /// A model description with an absurd width once trapped converting channels to Int.
  func testCheckpointModelDescriptionIsChecked() throws {
    for (key, value) in [("width", 1e300 as Any), ("width", 0.001), ("classes", -3), ("classes", 1e30), ("projection", [1e30, 2])] {
      var model: [String: Any] = ["model": "resnet18", "stem": "small", "width": 0.5]
      model[key] = value
      let bytes = try Checkpoint(metadata: ["model": model], tensors: []).encoded()
      let message = try XCTUnwrap(FuzzTarget.checkpoint.run(bytes), "\(key) \(value)")
      XCTAssertTrue(message.contains("metadata"), message)
    }
  }

  func testSafeTensorsNumbersThatAreNotSizes() {
    for shape in ["[1e30]", "[-1]", "[2.5]", "[549755813888, 4194304]"] {
      let header = #"{"w":{"dtype":"F32","shape":"# + shape + #","data_offsets":[0,4]}}"#
      var bytes = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian, Array.init)
      bytes += Array(header.utf8) + [0, 0, 0, 0]
      let message = FuzzTarget.safetensors.run(bytes)
      XCTAssertTrue(message?.contains("'w'") == true, "shape \(shape): \(message ?? "accepted")")
    }
  }

  func testSpaceMinimumEpochsThatIsNotAnInteger() {
    for value in ["1e300", "2.5", "-1", "0", "\"3\""] {
      let message = FuzzTarget.space.run(Array(#"{"min_epochs": \#(value)}"#.utf8))
      XCTAssertTrue(message?.contains("min_epochs") == true, "\(value): \(message ?? "accepted")")
    }
  }

  func testPackedInputsSplitOnTheSeparator() {
    let separator = Array(FuzzTarget.partSeparator.utf8)
    let joined = Array("a".utf8) + separator + separator + Array("bc".utf8)
    XCTAssertEqual(FuzzTarget.split(joined, on: separator), [Array("a".utf8), [], Array("bc".utf8)])
    XCTAssertEqual(FuzzTarget.split([], on: separator), [[]])
  }
}
