// The packed dataset on disk: uint8 image shards and a label file, each with a checked header.
import CelebAFormat
import Foundation

#if canImport(Glibc)
  import Glibc
#else
  import Darwin
#endif

/// Every packed file starts with this 64-byte header (little-endian), then its payload:
///
/// | offset | field |
/// | --- | --- |
/// | 0 | magic `FTPACK\0\0` |
/// | 8 | version (UInt32, 1) |
/// | 12 | kind (UInt32: 1 images, 2 labels) |
/// | 16 | height, width, channels (UInt32 each; labels: 1, attributes, 1) |
/// | 28 | count: images in this file (UInt32) |
/// | 32 | first: index of the first image (UInt64) |
/// | 40 | payload bytes (UInt64) |
/// | 48 | checksum of the payload (UInt64, `PackedChecksum`) |
/// | 56 | zero |
///
/// An image shard's payload is `count` images of height x width x 3 bytes, rows top to bottom,
/// RGB interleaved. The label file's payload is `count` rows of `attributes` bytes (0 or 1),
/// then `count` split bytes (0 train, 1 validation, 2 test). images.txt lists the source file
/// name of every image, one per line, in the same order.
struct PackedHeader: Equatable {
  static let magic: [UInt8] = Array("FTPACK".utf8) + [0, 0]
  static let version: UInt32 = 1
  static let size = 64

  enum Kind: UInt32 {
    case images = 1
    case labels = 2
  }

  var kind: Kind
  var height: Int
  var width: Int
  var channels: Int
  var count: Int
  var first: Int
  var payloadBytes: Int
  var checksum: UInt64

  var bytes: [UInt8] {
    var out = Self.magic
    func put<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { out += $0 } }
    put(Self.version)
    put(kind.rawValue)
    put(UInt32(height))
    put(UInt32(width))
    put(UInt32(channels))
    put(UInt32(count))
    put(UInt64(first))
    put(UInt64(payloadBytes))
    put(checksum)
    put(UInt64(0))
    return out
  }

  /// Reads and checks the header at the start of `bytes`; `file` names the file in errors.
  init(_ bytes: UnsafeRawBufferPointer, file: String) throws {
    guard bytes.count >= Self.size, Array(bytes[0..<8]) == Self.magic else {
      throw PackError(
        file, "is not a packed fairtune file (no FTPACK header); pack the dataset again with `fairtune pack`.")
    }
    func get<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T {
      T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }
    let version = get(8, UInt32.self)
    guard version == Self.version else {
      throw PackError(
        file, "has format version \(version); this fairtune reads version \(Self.version): pack the dataset again.")
    }
    guard let kind = Kind(rawValue: get(12, UInt32.self)) else {
      throw PackError(file, "has an unknown kind \(get(12, UInt32.self)) in its header; pack the dataset again.")
    }
    self.kind = kind
    height = Int(get(16, UInt32.self))
    width = Int(get(20, UInt32.self))
    channels = Int(get(24, UInt32.self))
    count = Int(get(28, UInt32.self))
    first = Int(exactly: get(32, UInt64.self)) ?? -1
    payloadBytes = Int(exactly: get(40, UInt64.self)) ?? -1
    checksum = get(48, UInt64.self)
    // Each field fits 32 bits, so a damaged header could ask for more bytes than an Int holds:
    // multiply with overflow checks rather than trap.
    let factors = kind == .images ? [count, height, width, channels] : [count, width + 1]
    let product = factors.reduce((value: 1, overflow: false)) { partial, factor in
      let next = partial.value.multipliedReportingOverflow(by: factor)
      return (next.partialValue, partial.overflow || next.overflow)
    }
    guard !product.overflow, payloadBytes == product.value else {
      throw PackError(
        file,
        "has a damaged header: \(count) items of \(height)x\(width)x\(channels) do not make \(payloadBytes) payload bytes; pack the dataset again."
      )
    }
    guard bytes.count == Self.size &+ payloadBytes else {
      throw PackError(
        file,
        "is \(bytes.count) bytes but its header describes \(Self.size &+ payloadBytes); the file is truncated or damaged: pack the dataset again."
      )
    }
  }

  init(kind: Kind, height: Int, width: Int, channels: Int, count: Int, first: Int, payloadBytes: Int, checksum: UInt64)
  {
    self.kind = kind
    self.height = height
    self.width = width
    self.channels = channels
    self.count = count
    self.first = first
    self.payloadBytes = payloadBytes
    self.checksum = checksum
  }
}

/// A checksum fast enough to verify gigabytes on open: four independent 64-bit lanes of
/// multiply-xorshift over 8-byte words (memory-bound), folded together with the tail bytes.
enum PackedChecksum {
  static func of(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    let prime: UInt64 = 0x9E37_79B9_7F4A_7C15
    var lanes: (UInt64, UInt64, UInt64, UInt64) = (1, 2, 3, 4)
    let words = bytes.count / 8
    var i = 0
    @inline(__always) func mix(_ h: UInt64, _ w: UInt64) -> UInt64 {
      let x = (h ^ w) &* prime
      return x ^ (x >> 29)
    }
    while i + 4 <= words {
      lanes.0 = mix(lanes.0, bytes.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))
      lanes.1 = mix(lanes.1, bytes.loadUnaligned(fromByteOffset: i * 8 + 8, as: UInt64.self))
      lanes.2 = mix(lanes.2, bytes.loadUnaligned(fromByteOffset: i * 8 + 16, as: UInt64.self))
      lanes.3 = mix(lanes.3, bytes.loadUnaligned(fromByteOffset: i * 8 + 24, as: UInt64.self))
      i += 4
    }
    var h = mix(mix(mix(lanes.0, lanes.1), lanes.2), lanes.3)
    while i < words {
      h = mix(h, bytes.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))
      i += 1
    }
    for j in (words * 8)..<bytes.count { h = mix(h, UInt64(bytes[j])) }
    return mix(h, UInt64(bytes.count))
  }
}

/// A packed file that cannot be used, with what to do.
public struct PackError: Error, CustomStringConvertible {
  public let file: String
  public let message: String

  public init(_ file: String, _ message: String) {
    self.file = file
    self.message = message
  }

  public var description: String { "\(file): \(message)" }
}

/// A whole file mapped read-only into memory.
final class MappedFile: @unchecked Sendable {
  let path: String
  let bytes: UnsafeRawBufferPointer

  init(_ path: String) throws {
    self.path = path
    let descriptor = open(path, O_RDONLY)
    guard descriptor >= 0 else {
      throw PackError(path, "cannot be opened (\(String(cString: strerror(errno)))); pack the dataset again.")
    }
    defer { close(descriptor) }
    var status = stat()
    guard fstat(descriptor, &status) == 0 else {
      throw PackError(path, "cannot be read (\(String(cString: strerror(errno)))).")
    }
    let size = Int(status.st_size)
    guard size > 0 else {
      bytes = UnsafeRawBufferPointer(start: nil, count: 0)
      return
    }
    guard let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0), address != MAP_FAILED else {
      throw PackError(path, "cannot be mapped into memory (\(String(cString: strerror(errno)))).")
    }
    bytes = UnsafeRawBufferPointer(start: address, count: size)
  }

  deinit {
    if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
  }
}
