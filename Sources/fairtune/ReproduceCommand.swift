// `fairtune reproduce`: the whole experiment from one command, stage by stage, resumable (the
// stages and their work are the library's: Pipeline/Reproduce.swift).
import ArgumentParser
import Foundation
import Pipeline
import Training

struct ReproduceCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "reproduce",
    abstract: "The whole pipeline: data, pack, SimCLR pretraining, a sweep over the five strategies, bn-recal and supervised, and the report.",
    discussion: paragraphs("""
      Presets:
        tiny    2,600 synthetic faces at 32 px, ResNet-18 at quarter width
                (small stem), 10 pretraining epochs, 2 trials of at most 1 epoch
                per model, 1 seed: minutes on a laptop.
        small   11,000 synthetic faces at 64 px (8,000 train), ResNet-18 at
                half width, 25 pretraining epochs at batch 256, 20 trials of at
                most 3 epochs per model with ASHA, 3 seeds, 3 backbones.
        paper   CelebA (--celeba) at 64 px, ResNet-50, 100 pretraining epochs
                at batch 512, 20 trials of at most 20 epochs per model with
                ASHA, 3 seeds, 3 backbones: a cluster job.

      Every preset pretrains with SimCLR's colour jitter (0.8, p 0.8) and grayscale (p 0.2):
        paper   \(Preset.paper.settings.crops)
        small   \(Preset.small.settings.crops)
        tiny    \(Preset.tiny.settings.crops)

      tiny keeps milder crops for a laptop's minutes of pretraining; small was decided at full
      length (docs/pretraining.md). The report's first paragraph names the recipe a run used.
      Every preset watches the backbone with the kNN monitor (pretrain --monitor-images).

      Stages, in order, each writing into OUT:
      \(ReproduceStage.summary)

      Re-running the same command skips finished stages and resumes the one that was
      interrupted; OUT/stages.json has each stage's wall seconds. Under mpirun the training
      stages run data-parallel (the sweep's rank 0 coordinates).
      """))

  @Option(help: "tiny, small or paper.")
  var preset: Preset = .tiny

  @Option(help: "The real CelebA (a CelebA-format folder) instead of synthetic faces.")
  var celeba: String?

  @Option(help: "The run directory.")
  var out: String

  @Option(help: "Seed of everything.")
  var seed: UInt64 = 0

  @Option(help: "Fine-tuning seeds per strategy: the sweep's best settings are trained again with N-1 more seeds (default: 1 for tiny, 3 otherwise).")
  var seeds: Int?

  @Option(help: "fp32, bf16 (fp32 where the CPU or this build has no bfloat16 kernels, said at the start) or bf16-emulated (bfloat16's numerics, slower than fp32), for every training stage.")
  var precision: PrecisionRequest = .fp32

  @Option(help: "The attribute of the balanced recalibration run beside bn-recal (bn-recal with --bn-balance; one of the 40).")
  var bnBalance: String = "Male"

  @Option(help: "SimCLR pretraining epochs instead of the preset's (10, 25 or 100): more buys a better backbone at the pretrain stage's time, which grows in proportion. A finished pretrain stage is kept as it is.")
  var pretrainEpochs: Int?

  @Option(help: "Pretrained backbones (default: 1 for tiny, 3 otherwise): the sweep runs on the first; every strategy's selected settings are fine-tuned on each, and findings.md states each finding per backbone and across them.")
  var backbones: Int?

  @Option(help: "Ranks per sweep trial under mpirun (the sweep's rank 0 coordinates; the others form groups of this size).")
  var groupSize: Int = 1

  @OptionGroup var distributed: DistributedOptions

  func validate() throws {
    if let seeds, seeds < 1 { throw ValidationError("--seeds must be at least 1 (got \(seeds)).") }
    if let backbones, backbones < 1 { throw ValidationError("--backbones must be at least 1 (got \(backbones)).") }
    if let pretrainEpochs, pretrainEpochs < 1 { throw ValidationError("--pretrain-epochs must be at least 1 (got \(pretrainEpochs)).") }
    if let celeba, !FileManager.default.fileExists(atPath: celeba + "/list_attr_celeba.txt") {
      throw ValidationError("--celeba \(celeba) has no list_attr_celeba.txt: give the folder that holds CelebA's files.")
    }
    try checkBalance(bnBalance, strategies: [.bnRecal])
  }

  func run() throws {
    let start = Date()
    let launch = try distributed.launch()
    let job = ReproduceJob(preset: preset, out: out)
    if let pretrainEpochs { job.settings.pretrainEpochs = pretrainEpochs }
    if let backbones { job.settings.backbones = backbones }
    job.celeba = celeba
    job.seed = seed
    job.seeds = seeds ?? preset.settings.seeds
    job.precision = precision
    job.bnBalance = bnBalance
    job.groupSize = groupSize
    job.parallel = distributed.parallel
    job.threadsPerRank = distributed.threadsPerRank
    do {
      try job.run(launch)
    } catch {
      launch.fail(error)
    }
    launch.say(String(format: "reproduce --preset %@: done in %.0f s; open %@/report/index.html", preset.rawValue, Date().timeIntervalSince(start), out))
  }
}

extension Preset: ExpressibleByArgument {}
