// safetensors: read and write the format (u64 header length, JSON header, raw little-endian data).
import Foundation
import Support

public enum SafeTensorsError: Error, CustomStringConvertible {
  case unreadable(path: String, reason: String)
  case malformed(path: String, reason: String)
  case missing(path: String, name: String)
  case shapeMismatch(path: String, name: String, expected: [Int], found: [Int])
  case unwritable(path: String, reason: String)

  public var description: String {
    switch self {
    case .unreadable(let path, let reason):
      return "\(path): cannot read safetensors file: \(reason)"
    case .malformed(let path, let reason):
      return "\(path): not a valid safetensors file: \(reason). Re-export it (e.g. with safetensors.torch.save_file)."
    case .missing(let path, let name):
      return "\(path): has no tensor named '\(name)'"
    case .shapeMismatch(let path, let name, let expected, let found):
      return "\(path): tensor '\(name)' has shape \(found), expected \(expected): was it written for another model or width?"
    case .unwritable(let path, let reason):
      return "\(path): cannot write: \(reason)"
    }
  }
}

public struct SafeTensors {
  public enum DType: String, Sendable {
    case f32 = "F32", f64 = "F64", f16 = "F16", i64 = "I64", i32 = "I32", u8 = "U8", bool = "BOOL"

    public var size: Int {
      switch self {
      case .f64, .i64: return 8
      case .f32, .i32: return 4
      case .f16: return 2
      case .u8, .bool: return 1
      }
    }
  }

  public struct Entry: Sendable {
    public let dtype: DType
    public let shape: [Int]
    public let range: Range<Int>  // byte range within `data`
  }

  public let path: String
  public let entries: [String: Entry]
  public let metadata: [String: String]
  private let data: Data

  public var names: [String] { entries.keys.sorted() }

  public init(contentsOf path: String) throws {
    let bytes: Data
    do {
      bytes = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe)
    } catch {
      throw SafeTensorsError.unreadable(path: path, reason: error.localizedDescription)
    }
    try self.init(bytes: bytes, path: path)
  }

  /// Parses and validates the header against the data: every dtype known, every shape
  /// non-negative, every byte range inside the file and exactly as long as its shape says.
  public init(bytes: Data, path: String) throws {
    self.path = path
    guard bytes.count >= 8 else {
      throw SafeTensorsError.malformed(path: path, reason: "\(bytes.count) bytes is shorter than the 8-byte header length")
    }
    var headerLength: UInt64 = 0
    for i in 0..<8 { headerLength |= UInt64(bytes[bytes.startIndex + i]) << (8 * UInt64(i)) }
    guard headerLength <= UInt64(bytes.count - 8) else {
      throw SafeTensorsError.malformed(path: path, reason: "header length \(headerLength) exceeds the file (\(bytes.count) bytes); the file may be truncated")
    }
    let headerStart = bytes.startIndex + 8
    let header = bytes[headerStart..<(headerStart + Int(headerLength))]
    guard let json = try? JSONSerialization.jsonObject(with: header), let object = json as? [String: Any] else {
      throw SafeTensorsError.malformed(path: path, reason: "the header is not a JSON object")
    }
    let dataStart = headerStart + Int(headerLength)
    let dataLength = bytes.count - 8 - Int(headerLength)
    var entries: [String: Entry] = [:]
    var metadata: [String: String] = [:]
    for (name, value) in object {
      if name == "__metadata__" {
        guard let meta = value as? [String: String] else {
          throw SafeTensorsError.malformed(path: path, reason: "__metadata__ must map strings to strings")
        }
        metadata = meta
        continue
      }
      guard let info = value as? [String: Any],
        let dtypeName = info["dtype"] as? String,
        let shapeValues = info["shape"] as? [Any],
        let offsetValues = info["data_offsets"] as? [Any], offsetValues.count == 2
      else {
        throw SafeTensorsError.malformed(path: path, reason: "tensor '\(name)' lacks dtype, shape or data_offsets")
      }
      guard let dtype = DType(rawValue: dtypeName) else {
        throw SafeTensorsError.malformed(path: path, reason: "tensor '\(name)' has unsupported dtype \(dtypeName)")
      }
      let shape = try shapeValues.map { v -> Int in
        guard let n = v as? Int, n >= 0, n < (1 << 40) else {
          throw SafeTensorsError.malformed(path: path, reason: "tensor '\(name)' has an invalid shape")
        }
        return n
      }
      let offsets = try offsetValues.map { v -> Int in
        guard let n = v as? Int, n >= 0 else {
          throw SafeTensorsError.malformed(path: path, reason: "tensor '\(name)' has invalid data_offsets")
        }
        return n
      }
      // Int.max stands for a shape too large for memory (its byte count overflows).
      let elements = shape.reduce(1) { product, d in
        let next = product.multipliedReportingOverflow(by: d)
        return next.overflow || next.partialValue > Int.max / 8 ? Int.max : next.partialValue
      }
      guard offsets[0] <= offsets[1], offsets[1] <= dataLength else {
        throw SafeTensorsError.malformed(path: path, reason: "tensor '\(name)' data_offsets \(offsets) fall outside the \(dataLength) data bytes; the file may be truncated")
      }
      guard elements != Int.max, offsets[1] - offsets[0] == elements * dtype.size else {
        throw SafeTensorsError.malformed(path: path, reason: "tensor '\(name)' has \(offsets[1] - offsets[0]) bytes but shape \(shape) of \(dtypeName) needs \(elements == Int.max ? -1 : elements * dtype.size)")
      }
      entries[name] = Entry(dtype: dtype, shape: shape, range: (dataStart + offsets[0])..<(dataStart + offsets[1]))
    }
    self.entries = entries
    self.metadata = metadata
    self.data = bytes
  }

  /// The tensor's values as Float (F32 as is; F64, F16, integers and booleans converted).
  public func floats(_ name: String) throws -> [Float] {
    guard let entry = entries[name] else { throw SafeTensorsError.missing(path: path, name: name) }
    let count = entry.shape.reduce(1, *)
    var out = [Float](repeating: 0, count: count)
    data[entry.range].withUnsafeBytes { raw in
      for i in 0..<count {
        let at = i * entry.dtype.size
        switch entry.dtype {
        case .f32: out[i] = Float(bitPattern: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self).littleEndian)
        case .f64: out[i] = Float(Double(bitPattern: raw.loadUnaligned(fromByteOffset: at, as: UInt64.self).littleEndian))
        case .f16: out[i] = Float(halfBits: raw.loadUnaligned(fromByteOffset: at, as: UInt16.self).littleEndian)
        case .i64: out[i] = Float(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: Int64.self)))
        case .i32: out[i] = Float(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: Int32.self)))
        case .u8, .bool: out[i] = Float(raw[at])
        }
      }
    }
    return out
  }

  /// The tensor, checked to have `shape` when given.
  public func floats(_ name: String, shape: [Int]) throws -> [Float] {
    guard let entry = entries[name] else { throw SafeTensorsError.missing(path: path, name: name) }
    guard entry.shape == shape else {
      throw SafeTensorsError.shapeMismatch(path: path, name: name, expected: shape, found: entry.shape)
    }
    return try floats(name)
  }

  /// Writes tensors (in the given order) with optional metadata; the file appears whole or not
  /// at all, and the old file stays until the new one is complete (`AtomicFile`).
  public static func write(
    _ tensors: [(name: String, dtype: DType, shape: [Int], bytes: Data)], metadata: [String: String] = [:],
    to path: String
  ) throws {
    var header = "{"
    var offset = 0
    var parts: [String] = []
    if !metadata.isEmpty {
      let meta = metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }
      parts.append("\"__metadata__\":{\(meta.joined(separator: ","))}")
    }
    for t in tensors {
      let shape = t.shape.map(String.init).joined(separator: ",")
      parts.append("\(jsonString(t.name)):{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + t.bytes.count)]}")
      offset += t.bytes.count
    }
    header += parts.joined(separator: ",") + "}"
    while (header.utf8.count % 8) != 0 { header += " " }
    var out = Data()
    var length = UInt64(header.utf8.count).littleEndian
    withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
    out.append(contentsOf: Array(header.utf8))
    for t in tensors { out.append(t.bytes) }
    do {
      try AtomicFile.write(out, to: path)
    } catch let error as OutputError {
      throw SafeTensorsError.unwritable(path: path, reason: error.reason)
    }
  }

  public static func bytes(of values: [Float]) -> Data {
    values.withUnsafeBufferPointer { Data(buffer: $0) }
  }

  private static func jsonString(_ s: String) -> String {
    let data = try! JSONSerialization.data(withJSONObject: [s], options: [.fragmentsAllowed])
    let array = String(decoding: data, as: UTF8.self)
    return String(array.dropFirst().dropLast())
  }
}

extension Float {
  /// IEEE half-precision bits to Float.
  init(halfBits h: UInt16) {
    let sign = UInt32(h >> 15) << 31
    let exponent = Int((h >> 10) & 0x1F)
    let mantissa = UInt32(h & 0x3FF)
    if exponent == 0 {
      let value = Float(mantissa) * Float(sign != 0 ? -1 : 1) / Float(1 << 24)
      self = value
    } else if exponent == 31 {
      self = Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    } else {
      self = Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
    }
  }
}
