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
    subcommands: [Bench.self, FairnessCommand.self, ReportCommand.self, SynthCommand.self, PackCommand.self, BenchDataCommand.self])
}
