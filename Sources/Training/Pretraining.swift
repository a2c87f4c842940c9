// SimCLR pretraining as a job: the backbone with its projection head, NT-Xent over the global
// batch, SimCLR's augmentations. `fairtune pretrain` and reproduce's pretrain stage run it.
import Data
import Foundation
import NN

public struct PretrainJob {
  public var spec: TrainingSpec
  public var model: ModelSpec
  public var temperature = 0.1
  public var projectionDimension = 128
  /// nil: the backbone's feature width.
  public var projectionHidden: Int?
  /// Colour-jitter strength s.
  public var colorStrength = 1.0
  public var blur = false
  /// The smallest area a random resized crop keeps (SimCLR's 0.08).
  public var minimumCropScale = 0.08
  /// Train images of the representation monitor's kNN bank (half as many val images are
  /// classified); 0 turns the monitor off.
  public var monitorImages = 768

  public init(spec: TrainingSpec, model: ModelSpec) {
    self.spec = spec
    self.model = model
  }

  /// The options that define the run directory.
  public var defining: [String: String] {
    var defining = spec.defining
    defining["command"] = "pretrain"
    defining["model"] = model.description
    defining["temperature"] = "\(temperature)"
    defining["projection"] = "\(projectionHidden.map(String.init) ?? "auto")x\(projectionDimension)"
    defining["augment"] = "s=\(colorStrength) blur=\(blur)" + (minimumCropScale == 0.08 ? "" : " crop=\(minimumCropScale)")
    return defining
  }

  /// SimCLR's two views: crops of at least `minimumCropScale` of the area, colour jitter of
  /// strength `colorStrength`, blur if asked.
  public var augmentation: SimCLRAugmentation {
    var augmentation = SimCLRAugmentation(strength: Float(colorStrength), blur: blur)
    augmentation.scale = Float(minimumCropScale)...1
    return augmentation
  }

  /// The learning rate: the given (or SimCLR's 0.3) per 256 images, times batch / 256.
  public var learningRate: Double { spec.learningRate(default: 0.3) * Double(spec.batch) / 256 }

  /// Trains in `session` (resuming it); returns the trainer, or nil if the run had finished.
  @discardableResult
  public func run(in session: TrainingSession) throws -> Trainer? {
    let probe = try ResNet(model.configuration(classes: nil))
    var configuration = model.configuration(classes: nil)
    configuration.projection = ProjectionSize(hidden: projectionHidden ?? probe.featureDimension, output: projectionDimension)
    let network = try ResNet(configuration, seed: spec.seed)
    session.say("pretrain: \(model.model) (\(network.registry.parameterCount) parameters), \(session.dataset.train.count) train images, global batch \(spec.batch) on \(session.communicator.size) rank(s), lr \(learningRate)")
    let trainer = try session.train(
      network, objective: .simclr(temperature: Float(temperature)),
      transform: .simCLR(augmentation), spec: spec, learningRate: learningRate,
      metadata: model.checkpointMetadata.merging(["kind": "pretrain", "options": defining]) { $1 }
    ) { trainer in
      let dataset = session.dataset
      if monitorImages > 1, !dataset.validation.isEmpty {
        trainer.monitor = RepresentationMonitor(
          dataset: dataset, bankImages: monitorImages, communicator: session.communicator, threads: session.threads)
      }
    }
    guard let trainer else { return nil }
    session.say(String(format: "pretraining done: %d steps, %.1f s; %@", trainer.step, trainer.trainingSeconds, session.run.finalCheckpoint))
    return trainer
  }
}
