// The fairtune command line: one root command, a subcommand per stage of the experiment.
import ArgumentParser

@main
struct Fairtune: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "fairtune",
    abstract: "Distributed SimCLR pretraining, fine-tuning strategies and their fairness evaluation.",
    discussion: """
      Run under `mpirun -np N fairtune <command>` for data-parallel training, or directly for a
      single process. See `fairtune help <command>` for each command's options.
      """,
    subcommands: [
      SynthCommand.self, PackCommand.self, PretrainCommand.self, FinetuneCommand.self, SweepCommand.self,
      EvaluateCommand.self, ReproduceCommand.self, Bench.self, BenchDataCommand.self, ImportCommand.self,
      ExportCommand.self, InspectCommand.self, FairnessCommand.self, ReportCommand.self,
    ])
}
