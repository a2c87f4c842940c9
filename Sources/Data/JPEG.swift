// JPEG decode and encode through libjpeg-turbo's TurboJPEG API, one handle per thread.
import CTurboJPEG

/// A JPEG that libjpeg-turbo could not decode or encode, with its reason.
public struct JPEGError: Error, CustomStringConvertible {
  public let message: String
  public var description: String { message }
}

/// A TurboJPEG handle is not thread-safe: each thread keeps its own coder.
public final class JPEGDecoder {
  private let handle: tjhandle

  public init() {
    guard let handle = tjInitDecompress() else { fatalError("libjpeg-turbo could not allocate a decompressor") }
    self.handle = handle
  }

  deinit { tjDestroy(handle) }

  /// Width and height from the JPEG header, without decoding.
  public func size(of bytes: UnsafeRawBufferPointer) throws -> (width: Int, height: Int) {
    var width: Int32 = 0
    var height: Int32 = 0
    var subsampling: Int32 = 0
    var colorspace: Int32 = 0
    let status = tjDecompressHeader3(
      handle, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt(bytes.count), &width, &height,
      &subsampling, &colorspace)
    guard status == 0, width > 0, height > 0 else { throw error() }
    return (Int(width), Int(height))
  }

  /// Decodes to 8-bit RGB with the accurate integer DCT (the reference for packed pixels).
  public func decode(_ bytes: UnsafeRawBufferPointer) throws -> RGBImage {
    let (width, height) = try size(of: bytes)
    var status: Int32 = 0
    // The decoder writes every byte: no need to zero the buffer first.
    let pixels = [UInt8](unsafeUninitializedCapacity: width * height * 3) { out, initialized in
      status = tjDecompress2(
        handle, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt(bytes.count), out.baseAddress,
        Int32(width), Int32(width * 3), Int32(height), Int32(TJPF_RGB.rawValue), TJFLAG_ACCURATEDCT)
      initialized = status == 0 ? out.count : 0
    }
    // Status -1 with a warning (e.g. a truncated file) still leaves garbage rows: refuse it.
    guard status == 0 else { throw error() }
    return RGBImage(width: width, height: height, pixels: pixels)
  }

  public func decode(_ bytes: [UInt8]) throws -> RGBImage {
    try bytes.withUnsafeBytes { try decode($0) }
  }

  private func error() -> JPEGError {
    JPEGError(message: String(cString: tjGetErrorStr2(handle)))
  }
}

public final class JPEGEncoder {
  private let handle: tjhandle

  public init() {
    guard let handle = tjInitCompress() else { fatalError("libjpeg-turbo could not allocate a compressor") }
    self.handle = handle
  }

  deinit { tjDestroy(handle) }

  /// Encodes with 4:2:0 chroma subsampling, as CelebA's JPEGs are.
  public func encode(_ image: RGBImage, quality: Int) throws -> [UInt8] {
    var output: UnsafeMutablePointer<UInt8>?
    var size: UInt = 0
    let status = image.pixels.withUnsafeBufferPointer { pixels in
      tjCompress2(
        handle, pixels.baseAddress, Int32(image.width), Int32(image.width * 3), Int32(image.height),
        Int32(TJPF_RGB.rawValue), &output, &size, Int32(TJSAMP_420.rawValue), Int32(quality), TJFLAG_ACCURATEDCT)
    }
    defer { if let output { tjFree(output) } }
    guard status == 0, let output else { throw JPEGError(message: String(cString: tjGetErrorStr2(handle))) }
    return Array(UnsafeBufferPointer(start: output, count: Int(size)))
  }
}
