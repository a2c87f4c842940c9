// RGBImage: an 8-bit RGB image in row-major, channel-interleaved order (what JPEG decodes to).

public struct RGBImage: Sendable, Equatable {
  public let width: Int
  public let height: Int
  /// `pixels[(y * width + x) * 3 + channel]`.
  public var pixels: [UInt8]

  public init(width: Int, height: Int, pixels: [UInt8]) {
    precondition(width > 0 && height > 0 && pixels.count == width * height * 3, "pixels must be width x height x 3")
    self.width = width
    self.height = height
    self.pixels = pixels
  }

  public init(width: Int, height: Int) {
    self.init(width: width, height: height, pixels: [UInt8](repeating: 0, count: width * height * 3))
  }
}

/// A rectangle of pixels inside an image, in whole pixels (crops are integer, as torchvision's).
public struct PixelRect: Sendable, Equatable {
  public var x: Int
  public var y: Int
  public var width: Int
  public var height: Int

  public init(x: Int, y: Int, width: Int, height: Int) {
    self.x = x
    self.y = y
    self.width = width
    self.height = height
  }

  /// The centred square of side min(width, height): for aligned CelebA (178x218) the usual
  /// 178x178 crop starting 20 rows down, which keeps the face and drops background rows.
  public static func centredSquare(width: Int, height: Int) -> PixelRect {
    let side = min(width, height)
    return PixelRect(x: (width - side) / 2, y: (height - side) / 2, width: side, height: side)
  }
}
