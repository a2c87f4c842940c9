// The fairtune command line: one root command, a subcommand per stage of the experiment.
import ArgumentParser
import Foundation
import Support

@main
struct Fairtune: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "fairtune",
    abstract: "Distributed SimCLR pretraining, fine-tuning strategies and their fairness evaluation.",
    discussion: paragraphs("""
      Run under `mpirun -np N fairtune <command>` for data-parallel training, or directly for a
      single process. See `fairtune help <command>` for each command's options.
      """),
    subcommands: [
      SynthCommand.self, PackCommand.self, PretrainCommand.self, FinetuneCommand.self, SweepCommand.self,
      EvaluateCommand.self, ReproduceCommand.self, Bench.self, BenchDataCommand.self, ImportCommand.self,
      ExportCommand.self, InspectCommand.self, FairnessCommand.self, ReportCommand.self, PlanCommand.self,
    ])

  /// Progress goes out a line at a time even into a log file or a pipe; a file-size limit makes
  /// a write fail with an error that is reported (instead of killing the process with SIGXFSZ);
  /// usage errors (a bad option, a missing file named by an option) exit with status 2, other
  /// failures with 1.
  static func main() {
    setvbuf(stdout, nil, _IOLBF, 0)
    signal(SIGXFSZ, SIG_IGN)
    Log.bootstrap()
    var command: ParsableCommand
    do {
      command = try parseAsRoot()
    } catch {
      if exitCode(for: error) == .validationFailure {
        FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
        Foundation.exit(2)
      }
      exit(withError: error)
    }
    do {
      try command.run()
    } catch {
      // A usage error found while running (an option that contradicts a file it names) points
      // at the help of the command that was run, not at the list of commands.
      if exitCode(for: error) == .validationFailure {
        let name = type(of: command).configuration.commandName.map { " " + $0 } ?? ""
        FileHandle.standardError.write(Data("Error: \(error)\nSee 'fairtune\(name) --help' for the options.\n".utf8))
        Foundation.exit(2)
      }
      exit(withError: error)
    }
  }
}

/// Help text as paragraphs: the lines of a prose paragraph are joined, so that `--help` wraps
/// them at the terminal's width instead of breaking them at the source's. A paragraph with an
/// indented line (a table, a list) is kept as written.
func paragraphs(_ text: String) -> String {
  text.components(separatedBy: "\n\n").map { paragraph in
    let lines = paragraph.split(separator: "\n", omittingEmptySubsequences: false)
    guard !lines.dropFirst().contains(where: { $0.hasPrefix(" ") || $0.hasPrefix("- ") }) else { return paragraph }
    return lines.joined(separator: " ")
  }.joined(separator: "\n\n")
}
