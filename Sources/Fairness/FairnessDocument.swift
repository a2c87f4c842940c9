// fairness.json: the evaluation as a JSON document with its conventions spelled out.
import Foundation

/// A JSON value whose objects keep their keys in the order written, so the document reads top
/// down, and whose missing values are explicit nulls.
enum JSONValue {
  case null
  case bool(Bool)
  case integer(Int)
  case unsigned(UInt64)
  case number(Double)
  case string(String)
  case array([JSONValue])
  case object([(String, JSONValue)])

  init(_ value: Double?) { self = value.map { .number($0) } ?? .null }

  /// Arrays of numbers go on one line (a matrix prints one row per line), and so do short arrays
  /// of strings; everything else is indented by two spaces per level.
  func serialized(indent: Int = 0) -> String {
    let padding = String(repeating: " ", count: indent + 2)
    switch self {
    case .null: return "null"
    case .bool(let value): return value ? "true" : "false"
    case .integer(let value): return String(value)
    case .unsigned(let value): return String(value)
    case .number(let value): return value.isFinite ? "\(value)" : "null"
    case .string(let value): return Self.quoted(value)
    case .array(let values):
      let inline = values.map { $0.serialized() }.joined(separator: ", ")
      if values.allSatisfy(\.isNumeric) || (values.allSatisfy(\.isScalar) && inline.count <= 100) {
        return "[" + inline + "]"
      }
      return "[\n" + values.map { padding + $0.serialized(indent: indent + 2) }.joined(separator: ",\n")
        + "\n" + String(repeating: " ", count: indent) + "]"
    case .object(let members):
      if members.isEmpty { return "{}" }
      return "{\n"
        + members.map { padding + Self.quoted($0.0) + ": " + $0.1.serialized(indent: indent + 2) }
        .joined(separator: ",\n") + "\n" + String(repeating: " ", count: indent) + "}"
    }
  }

  private var isScalar: Bool {
    switch self {
    case .array, .object: false
    default: true
    }
  }

  private var isNumeric: Bool {
    switch self {
    case .null, .bool, .integer, .unsigned, .number: true
    default: false
    }
  }

  private static func quoted(_ text: String) -> String {
    var result = "\""
    for scalar in text.unicodeScalars {
      switch scalar {
      case "\"": result += "\\\""
      case "\\": result += "\\\\"
      case "\n": result += "\\n"
      case "\r": result += "\\r"
      case "\t": result += "\\t"
      default:
        if scalar.value < 0x20 {
          result += String(format: "\\u%04x", scalar.value)
        } else {
          result.unicodeScalars.append(scalar)
        }
      }
    }
    return result + "\""
  }
}

extension FairnessEvaluation {
  /// The conventions a reader needs to interpret the numbers, written into the document.
  public static let conventions = [
    "thresholds: for each task t, the train score maximising train F1 over every distinct train score; an image is predicted positive when its score >= the threshold; among thresholds with equal train F1 the highest wins; null means the train split has no positive for t, so no image is predicted positive (+infinity).",
    "F1 = 2 TP / (2 TP + FP + FN). A subgroup with no positive and no predicted positive for a task has F1 = 0/0, counted as 0 (the usual zero-division convention); every such subgroup is listed in zero_division.",
    "gap(c) and worst(c) are the means over the tasks t != c of |F1(t|c) - F1(t|-c)| and min(F1(t|c), F1(t|-c)); they are null when c is true on every test image or on none. all is their median over the attributes that have them.",
    "rho(c) = min(N(c), N(-c)) / (N(c) + N(-c)) on the test split.",
    "pairs: row = condition c, column = task t, in attribute order; null on the diagonal and where a subgroup is empty.",
    "intervals: percentile bootstrap over the test images resampled with replacement; mean is the mean over the resamples and resamples the number of resamples in which the statistic exists; differences are this model minus the compared one on the same resamples.",
    "bootstrap bias: a gap is an absolute difference of noisy F1s, so resampling inflates it and its interval can lie above the estimate (a worst, a minimum, is pulled down); mean - estimate shows by how much. To tell two models apart use the paired difference (--compare), where the inflation of both models largely cancels.",
  ]

  /// fairness.json.
  public func document() -> Data {
    var members: [(String, JSONValue)] = [
      ("attributes", .array(attributeNames.map { .string($0) })),
      ("train_images", .integer(trainImages)),
      ("test_images", .integer(testImages)),
      ("conventions", .array(Self.conventions.map { .string($0) })),
    ]
    if let bootstrap, bootstrap.resamples > 0 {
      members.append(
        (
          "bootstrap",
          .object([
            ("resamples", .integer(bootstrap.resamples)), ("seed", .unsigned(bootstrap.seed)),
            ("level", .number(bootstrap.level)),
          ])
        ))
    }
    members += modelMembers(model, intervals: intervals)
    if let comparison {
      var compared: [(String, JSONValue)] = [("scores", .string(comparison.name))]
      compared += modelMembers(comparison.model, intervals: comparison.intervals)
      compared.append(("difference", differenceObject(comparison)))
      members.append(("comparison", .object(compared)))
    }
    return Data((JSONValue.object(members).serialized() + "\n").utf8)
  }

  private func modelMembers(_ model: ModelEvaluation, intervals: BootstrapIntervals?) -> [(String, JSONValue)] {
    let summary = model.summary
    let count = attributeNames.count
    func matrix(_ values: [Double?]) -> JSONValue {
      .array((0..<count).map { row in .array((0..<count).map { JSONValue(values[row * count + $0]) }) })
    }
    let perAttribute: [JSONValue] = (0..<count).map { attribute in
      var entry: [(String, JSONValue)] = [
        ("attribute", .string(attributeNames[attribute])),
        ("rho", .number(summary.rho[attribute])),
        ("test_true", .integer(summary.conditionCounts[attribute])),
        ("test_false", .integer(summary.imageCount - summary.conditionCounts[attribute])),
        ("gap", JSONValue(summary.gap[attribute])),
        ("worst", JSONValue(summary.worst[attribute])),
      ]
      if let intervals {
        entry.append(("gap_interval", Self.interval(intervals.gap[attribute])))
        entry.append(("worst_interval", Self.interval(intervals.worst[attribute])))
      }
      return .object(entry)
    }
    var all: [(String, JSONValue)] = [("gap", JSONValue(summary.allGap)), ("worst", JSONValue(summary.allWorst))]
    if let intervals {
      all.append(("gap_interval", Self.interval(intervals.allGap)))
      all.append(("worst_interval", Self.interval(intervals.allWorst)))
    }
    return [
      ("thresholds", .array(model.thresholds.map { JSONValue($0.value.isFinite ? $0.value : nil) })),
      ("threshold_train_f1", .array(model.thresholds.map { .number($0.trainF1) })),
      ("all", .object(all)),
      ("per_attribute", .array(perAttribute)),
      (
        "pairs",
        .object([
          ("f1_given_c", matrix(summary.f1GivenCondition)),
          ("f1_given_not_c", matrix(summary.f1GivenNotCondition)),
          ("gap", matrix(summary.pairGap)),
          ("worst", matrix(summary.pairWorst)),
        ])
      ),
      (
        "zero_division",
        .array(
          summary.zeroDivisions.map { zero in
            .object([
              ("task", .string(attributeNames[zero.task])),
              ("condition", .string(attributeNames[zero.condition])),
              ("subgroup", .string(zero.conditionValue ? "c" : "not c")),
            ])
          })
      ),
    ]
  }

  private func differenceObject(_ comparison: Comparison) -> JSONValue {
    let first = model.summary
    let second = comparison.model.summary
    func subtract(_ a: Double?, _ b: Double?) -> JSONValue {
      guard let a, let b else { return .null }
      return .number(a - b)
    }
    let intervals = comparison.differenceIntervals
    var all: [(String, JSONValue)] = [
      ("gap", subtract(first.allGap, second.allGap)), ("worst", subtract(first.allWorst, second.allWorst)),
    ]
    if let intervals {
      all.append(("gap_interval", Self.interval(intervals.allGap)))
      all.append(("worst_interval", Self.interval(intervals.allWorst)))
    }
    let perAttribute: [JSONValue] = attributeNames.indices.map { attribute in
      var entry: [(String, JSONValue)] = [
        ("attribute", .string(attributeNames[attribute])),
        ("gap", subtract(first.gap[attribute], second.gap[attribute])),
        ("worst", subtract(first.worst[attribute], second.worst[attribute])),
      ]
      if let intervals {
        entry.append(("gap_interval", Self.interval(intervals.gap[attribute])))
        entry.append(("worst_interval", Self.interval(intervals.worst[attribute])))
      }
      return .object(entry)
    }
    return .object([("all", .object(all)), ("per_attribute", .array(perAttribute))])
  }

  private static func interval(_ interval: Interval?) -> JSONValue {
    guard let interval else { return .null }
    return .object([
      ("low", .number(interval.low)), ("high", .number(interval.high)), ("mean", .number(interval.mean)),
      ("resamples", .integer(interval.resamples)),
    ])
  }
}
