// Options shared by every command that builds a model.
import ArgumentParser
import NN

struct ModelOptions: ParsableArguments {
  @Option(help: "Architecture: resnet18, resnet34 or resnet50.")
  var model: String = "resnet18"

  @Option(help: "Channel multiplier (0.25 = a quarter of torchvision's channels).")
  var width: Double = 1

  @Option(help: "Stem: imagenet (7x7/2 conv + max-pool) or small (3x3/1 conv, no pool, for 32-64 px).")
  var stem: String = "imagenet"

  @Option(help: "Input images are SIZE x SIZE pixels.")
  var imageSize: Int = 64

  func validate() throws {
    guard ResNetDepth(rawValue: model) != nil else {
      throw ValidationError("--model '\(model)' is not a model: use resnet18, resnet34 or resnet50.")
    }
    guard Stem(rawValue: stem) != nil else {
      throw ValidationError("--stem '\(stem)' is not a stem: use imagenet or small.")
    }
    if let problem = ResNetConfiguration.widthProblem(width) { throw ValidationError("--width \(problem).") }
    guard imageSize > 0 else {
      throw ValidationError("--image-size must be positive (got \(imageSize)).")
    }
    let minimum = Stem(rawValue: stem) == .imagenet ? 32 : 8
    guard imageSize >= minimum else {
      throw ValidationError("--image-size \(imageSize) is too small for the \(stem) stem: use at least \(minimum).")
    }
  }

  func configuration(classes: Int?) -> ResNetConfiguration {
    ResNetConfiguration(depth: ResNetDepth(rawValue: model)!, stem: Stem(rawValue: stem)!, width: width, classes: classes)
  }
}
