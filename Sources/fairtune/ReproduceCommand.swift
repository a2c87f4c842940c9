// `fairtune reproduce`: the whole experiment from one command, stage by stage, resumable.
import ArgumentParser
import Distributed
import Foundation
import Training

struct ReproduceCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "reproduce",
    abstract: "The whole pipeline: data, pack, SimCLR pretraining, a sweep over the five strategies and supervised, and the report.",
    discussion: """
      Presets:
        tiny    2,600 synthetic faces at 32 px, ResNet-18 at quarter width (small stem), 2
                pretraining epochs, 2 trials of at most 1 epoch per model: minutes on a laptop.
        small   20,000 synthetic faces at 64 px, ResNet-18 at half width, 30 pretraining
                epochs, 3 trials of at most 4 epochs per model: about an hour on 2 cores.
        paper   CelebA (--celeba) at 64 px, ResNet-50, 100 pretraining epochs at batch 512,
                20 trials of at most 20 epochs per model: a cluster job.
      Stages write into OUT: data/ (synthetic CelebA-format files, unless --celeba), packed/,
      pretrain/, sweep/ and report/ (table1.md, figure1.svg, timing.md, index.html). Re-running
      the same command skips finished stages and resumes the one that was interrupted. Under
      mpirun the training stages run data-parallel (the sweep's rank 0 coordinates).
      """)

  enum Preset: String, ExpressibleByArgument, CaseIterable {
    case tiny, small, paper
  }

  @Option(help: "tiny, small or paper.")
  var preset: Preset = .tiny

  @Option(help: "The real CelebA (a CelebA-format folder) instead of synthetic faces.")
  var celeba: String?

  @Option(help: "The run directory.")
  var out: String

  @Option(help: "Seed of everything.")
  var seed: UInt64 = 0

  @OptionGroup var distributed: DistributedOptions

  struct Settings {
    var train: Int, val: Int, test: Int, synthSize: Int, imageSize: Int
    var model: String, width: String, stem: String
    var pretrainEpochs: Int, pretrainBatch: Int, trials: Int, maxEpochs: Int, batch: Int
  }

  var settings: Settings {
    switch preset {
    case .tiny:
      return Settings(train: 2000, val: 300, test: 300, synthSize: 48, imageSize: 32, model: "resnet18", width: "0.25", stem: "small",
        pretrainEpochs: 2, pretrainBatch: 64, trials: 2, maxEpochs: 1, batch: 64)
    case .small:
      return Settings(train: 16000, val: 2000, test: 2000, synthSize: 64, imageSize: 64, model: "resnet18", width: "0.5", stem: "imagenet",
        pretrainEpochs: 30, pretrainBatch: 256, trials: 3, maxEpochs: 4, batch: 128)
    case .paper:
      return Settings(train: 162_770, val: 19_867, test: 19_962, synthSize: 64, imageSize: 64, model: "resnet50", width: "1", stem: "imagenet",
        pretrainEpochs: 100, pretrainBatch: 512, trials: 20, maxEpochs: 20, batch: 256)
    }
  }

  func validate() throws {
    if let celeba, !FileManager.default.fileExists(atPath: celeba + "/list_attr_celeba.txt") {
      throw ValidationError("--celeba \(celeba) has no list_attr_celeba.txt: give the folder that holds CelebA's files.")
    }
  }

  func run() throws {
    let s = settings
    let start = Date()
    let world = try MPICommunicator.world(timeout: distributed.timeout)
    let root = world.rank == 0
    func stage(_ name: String, done: Bool, _ body: () throws -> Void) throws {
      if done {
        if root { print("[\(name)] done already, skipped") }
        return
      }
      if root { print("[\(name)] \(String(format: "%.0f", Date().timeIntervalSince(start))) s") }
      try body()
      try world.barrier()
    }
    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
    let raw = celeba ?? out + "/data"
    let packed = out + "/packed"
    let model = ["--model", s.model, "--width", s.width, "--stem", s.stem, "--image-size", "\(s.imageSize)"]
    let parallel = distributed.threads.map { ["--threads", "\($0)"] } ?? []

    try stage("data", done: FileManager.default.fileExists(atPath: raw + "/list_attr_celeba.txt")) {
      if root {
        try SynthCommand.parse(["--out", raw, "--train", "\(s.train)", "--val", "\(s.val)", "--test", "\(s.test)",
          "--image-size", "\(s.synthSize)", "--seed", "\(seed)"]).run()
      }
    }
    try stage("pack", done: FileManager.default.fileExists(atPath: packed + "/labels.bin")) {
      if root { try PackCommand.parse(["--celeba", raw, "--image-size", "\(s.imageSize)", "--out", packed]).run() }
    }
    let pretrained = out + "/pretrain/final.ckpt"
    try stage("pretrain", done: FileManager.default.fileExists(atPath: pretrained)) {
      try PretrainCommand.parse(["--data", packed, "--out", out + "/pretrain", "--batch", "\(s.pretrainBatch)",
        "--epochs", "\(s.pretrainEpochs)", "--seed", "\(seed)", "--warmup-epochs", "\(Double(s.pretrainEpochs) / 10)"] + model + parallel).run()
    }
    let strategies = Strategy.allCases.map(\.rawValue)
    var sweep = try SweepCommand.parse(["--data", packed, "--from", pretrained, "--strategies", strategies.joined(separator: ","),
      "--trials", "\(s.trials)", "--max-epochs", "\(s.maxEpochs)", "--batch", "\(s.batch)", "--seed", "\(seed)",
      "--out", out + "/sweep"] + model + parallel)
    sweep.distributed = distributed
    try stage("sweep", done: false) { try sweep.run() }
    try stage("report", done: false) {
      guard root else { return }
      let plan = SweepPlan(strategies: strategies, trials: s.trials, groupSize: 1, maxEpochs: s.maxEpochs, maxFailures: s.trials,
        seed: seed, space: .standard, heartbeatTimeout: 1)
      let best = try Sweep(world: LocalCommunicator(), plan: plan, directory: out + "/sweep") { _, _, _, _ in
        TrialOutcome(finished: false, metric: nil, seconds: 0, reason: nil, checkpoint: nil)
      }.bestTrials()
      let runs = strategies.compactMap { best[$0].map { out + "/sweep/trials/" + $0 } }
      try ReportCommand.parse(["--runs"] + runs + ["--attributes", raw + "/list_attr_celeba.txt",
        "--partition", raw + "/list_eval_partition.txt", "--out", out + "/report"]).run()
    }
    if root { print(String(format: "reproduce --preset %@: done in %.0f s; open %@/report/index.html", preset.rawValue, Date().timeIntervalSince(start), out)) }
  }
}
