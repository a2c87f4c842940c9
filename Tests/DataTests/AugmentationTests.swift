// The colour operations, blur and resize against torchvision's own output (fixture made by
// scripts/make_augmentation_reference.py), and the SimCLR pipeline's invariants.
import Support
import Tensors
import XCTest

@testable import Data

final class AugmentationTests: XCTestCase {
  var fixture: SafeTensors!

  override func setUpWithError() throws {
    let url = try XCTUnwrap(
      Bundle.module.url(forResource: "augmentations", withExtension: "safetensors", subdirectory: "Fixtures"))
    fixture = try SafeTensors(contentsOf: url.path)
  }

  /// Applies `operation` to the fixture's input and returns the largest difference from the
  /// torchvision result `name`, printed for the record.
  func maxError(_ name: String, _ operation: (UnsafeMutablePointer<Float>, Int) -> Void) throws -> Float {
    var image = try fixture.floats("input")
    let expected = try fixture.floats(name)
    image.withUnsafeMutableBufferPointer { operation($0.baseAddress!, $0.count / 3) }
    let error = zip(image, expected).map { abs($0 - $1) }.max()!
    print(String(format: "augmentation fixture %@: max |fairtune - torchvision| = %.2e", name, error))
    return error
  }

  /// The fixtures are torchvision's, in float32, on values in [0, 1] (ulp <= 6e-8): a few
  /// elementwise fp32 steps on either side stay within 1e-6; hue goes through HSV and back
  /// (a division, six sectors, a remainder), some ten times more rounding.
  func testColourOperationsMatchTorchvision() throws {
    for factor: Float in [0.2, 1.0, 1.8] {
      XCTAssertLessThan(
        try maxError("brightness_\(factor)") { ColourOps.brightness($0, pixels: $1, factor: factor) }, 1e-6)
    }
    for factor: Float in [0.2, 1.7] {
      XCTAssertLessThan(try maxError("contrast_\(factor)") { ColourOps.contrast($0, pixels: $1, factor: factor) }, 1e-6)
    }
    for factor: Float in [0.0, 0.5, 1.8] {
      XCTAssertLessThan(
        try maxError("saturation_\(factor)") { ColourOps.saturation($0, pixels: $1, factor: factor) }, 1e-6)
    }
    for factor: Float in [-0.2, 0.07, 0.2, 0.5] {
      XCTAssertLessThan(try maxError("hue_\(factor)") { ColourOps.hue($0, pixels: $1, factor: factor) }, 1e-5)
    }
    XCTAssertLessThan(try maxError("grayscale") { ColourOps.grayscale($0, pixels: $1) }, 1e-6)
  }

  func testGaussianBlurMatchesTorchvision() throws {
    var scratch = [Float](repeating: 0, count: 12 * 10 * 3)
    let error = try maxError("blur_5_1.3") { image, _ in
      ColourOps.gaussianBlur(image, width: 10, height: 12, kernelSize: 5, sigma: 1.3, scratch: &scratch)
    }
    // torchvision's float32: two passes of 5 taps (and its fp32 Gaussian weights) on values in
    // [0, 1], a few 2^-24 each.
    XCTAssertLessThan(error, 1e-5)
  }

  func testAntialiasedResizeMatchesTorchvision() throws {
    let input = try fixture.floats("resize_input").map { UInt8($0) }
    let resizer = Resizer()
    for (name, size) in [("resize_down_13", 13), ("resize_up_45", 45)] {
      var output = [Float](repeating: 0, count: size * size * 3)
      input.withUnsafeBufferPointer { source in
        resizer.resize(
          source: source.baseAddress!, sourceWidth: 36, crop: PixelRect(x: 5, y: 3, width: 27, height: 31),
          outputWidth: size, outputHeight: size, output: &output)
      }
      let error = zip(output, try fixture.floats(name)).map { abs($0 - $1) }.max()!
      print(String(format: "augmentation fixture %@: max |fairtune - torchvision| = %.2e (0-255 scale)", name, error))
      // torchvision places its taps in float32 (ours in Double): a source coordinate up to 31
      // from a float32 scale and product is off by up to 2 x 31 x 2^-24 = 3.7e-6, which moves a
      // weight by as much, and a value by that times a neighbour difference (up to 255): 9.4e-4
      // per pass, two passes.
      XCTAssertLessThan(error, 2e-3)
    }
  }

  func testRandomResizedCropStaysInsideAndCoversTheScaleRange() {
    var rng = SplitMix64(seed: 1)
    var areas: [Float] = []
    for _ in 0..<2000 {
      let crop = randomResizedCrop(width: 64, height: 64, scale: 0.08...1, ratio: 0.75...(4.0 / 3.0), &rng)
      XCTAssertTrue(crop.x >= 0 && crop.y >= 0 && crop.x + crop.width <= 64 && crop.y + crop.height <= 64)
      areas.append(Float(crop.width * crop.height) / 4096)
    }
    // Scales are drawn evenly from 0.08...1: a crop's area is below 0.12 about 4% of the time,
    // above 0.9 several percent (when its aspect fits); 2000 draws miss either with probability
    // below 0.96^2000 ~ 1e-35.
    XCTAssertLessThan(areas.min()!, 0.12)
    XCTAssertGreaterThan(areas.max()!, 0.9)
  }

  func testSimCLRViewsDifferAndStayInRange() {
    let size = 16
    let source = (0..<(size * size * 3)).map { UInt8(truncatingIfNeeded: $0 * 7) }
    let scratch = AugmentScratch()
    var first = [Float](repeating: 0, count: size * size * 3)
    var second = first
    var rng = SplitMix64(seed: 3)
    let transform = Transform.simCLR(SimCLRAugmentation(strength: 1, blur: true))
    source.withUnsafeBufferPointer { pixels in
      transform.apply(source: pixels.baseAddress!, size: size, output: &first, rng: &rng, scratch: scratch)
      transform.apply(source: pixels.baseAddress!, size: size, output: &second, rng: &rng, scratch: scratch)
    }
    XCTAssertNotEqual(first, second)
    XCTAssertTrue((first + second).allSatisfy { $0 >= 0 && $0 <= 1 })
  }
}
