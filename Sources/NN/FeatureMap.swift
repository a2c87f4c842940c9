// FeatureMap: a pointer to an NHWC activation and its shape, as passed between layers.

public struct FeatureMap {
  public var data: UnsafeMutablePointer<Float>
  public var batch: Int
  public var height: Int
  public var width: Int
  public var channels: Int

  public init(data: UnsafeMutablePointer<Float>, batch: Int, height: Int, width: Int, channels: Int) {
    self.data = data
    self.batch = batch
    self.height = height
    self.width = width
    self.channels = channels
  }

  public var count: Int { batch * height * width * channels }
  /// Pixels over the whole batch: the rows of the [N*H*W, C] matrix view.
  public var pixels: Int { batch * height * width }

  public func with(data: UnsafeMutablePointer<Float>) -> FeatureMap {
    FeatureMap(data: data, batch: batch, height: height, width: width, channels: channels)
  }
}
