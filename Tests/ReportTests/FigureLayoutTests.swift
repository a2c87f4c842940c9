// The report's figures drawn for twelve models with long names, checked in headless Chromium
// (scripts/check_report_page.sh): no two labels of a figure overlap and none leaves its figure.
import Experiment
import Fairness
import Foundation
import XCTest

@testable import Report

extension ReportTests {
  static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

  /// Twelve runs whose labels are 30 to 40 characters long: the strategy and its directory.
  func testTwelveLongNamedModelsFitTheirFigures() throws {
    let check = Self.repository.appendingPathComponent("scripts/check_report_page.sh").path
    let chromium = ["/usr/bin/chromium", "/usr/local/bin/chromium"].contains { FileManager.default.isExecutableFile(atPath: $0) }
    if !chromium && getuid() != 0 {
      throw XCTSkip("Chromium is not installed, and only root may install it (scripts/check_report_page.sh does)")
    }
    let dataset = try writeDataset(train: 200, test: 150)
    let data = (dataset.attributes, dataset.partition)
    // Two runs of each strategy, so each is labelled "strategy (directory)", 30 to 40 characters.
    let strategies: [Strategy] = [.supervised, .frozen, .bnStats, .bnStatsAffine, .bnStatsSkip, .full]
    let words = "trial-17-adam-onecycle-lr-0.0300-cosine-wd-1e-4-warmup-10-epochs-backbone-2-of-3-balanced-on-Male"
    var runs: [URL] = []
    for index in 0..<12 {
      let strategy = strategies[index % strategies.count]
      let length = 30 + (index * 7) % 11 - strategy.rawValue.count - 3
      let name = String(words.dropFirst(index * 5).prefix(length))
      runs.append(
        try writeRun(
          name, strategy: strategy, parameters: 81_960 * (index + 1), buffers: index % 3 == 0 ? 0 : 53_120,
          seconds: 100 + Double(index) * 37, noise: 0.2 + 0.1 * Double(index), splits: dataset.splits, data: data))
    }
    let evaluated = try ReportBuilder.evaluate(runs: runs, attributes: dataset.attributes, partition: dataset.partition, bootstrap: nil)
    let labels = evaluated.map(\.label)
    XCTAssertEqual(labels.count, 12)
    XCTAssertGreaterThanOrEqual(labels.map(\.count).min() ?? 0, 30, "\(labels)")
    XCTAssertLessThanOrEqual(labels.map(\.count).max() ?? 0, 40, "\(labels)")

    // The pretraining curves and the scaling figure too, with captions and stages named at length.
    let points = (0..<60).map { PretrainPoint(step: $0 * 10, loss: 6 - 0.05 * Double($0), top1: 0.01 * Double($0)) }
    let monitor = (0..<6).map { MonitorPoint(step: $0 * 100, knnMeanF1: 0.35 + 0.03 * Double($0)) }
    let curves = LossCurve.svg(points, monitor: monitor, title: "SimCLR pretraining of backbone 2 of 3 (seed 11)")
    let stages = ["SimCLR pretraining (ResNet-50, batch 4096)", "the sweep's 120 fine-tuning trials", "selected settings on 3 backbones", "evaluation"]
    let scaling = ScalingFigure.svg(
      [
        ScalingFigure.Panel(
          title: "10 Gb/s at 30 µs, 32 cores per node",
          lines: stages.map { ScalingFigure.Line(stage: $0, efficiency: [1, 0.9, 0.7, 0.5, 0.3], bottleneck: Array(repeating: "BatchNorm sync", count: 5)) }),
        ScalingFigure.Panel(
          title: "100 Gb/s at 5 µs, 32 cores per node",
          lines: stages.map { ScalingFigure.Line(stage: $0, efficiency: [1, 0.95, 0.9, 0.8, 0.6], bottleneck: Array(repeating: "gradients", count: 5)) }),
      ], nodes: [1, 8, 64, 256, 1024], threshold: 0.8, title: "Predicted efficiency of every stage of reproduce --preset paper")
    let sections = [
      ReportSection(title: "Pretraining", file: "pretraining.svg", contents: curves),
      ReportSection(title: "Scaling", file: "scaling.svg", contents: scaling),
    ]
    let out = directory.appendingPathComponent("out")
    try OutputFiles.write(ReportBuilder.files(evaluated, sections: sections), into: out)

    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/bash")
    process.arguments = [check, out.path]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    print(output)
    XCTAssertEqual(process.terminationStatus, 0, output)
    XCTAssertTrue(output.contains("text elements checked"), "the check read the figures' text: \(output)")
  }
}
