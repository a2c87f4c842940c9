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
    "F1 = 2 TP / (2 TP + FP + FN) within a subgroup.",
    "pairs: a pair (t, c) is used when both of its subgroups (c true, c false) hold at least min_support positives of t. A subgroup without positives has no F1 worth the name (0/0, or 0 whatever the model does): such pairs are undefined, not 0. pair_selection counts the pairs used, undefined and below min_support; pairs.support holds the smaller subgroup's positives of every pair.",
    "gap(c) and worst(c) are the means over the used pairs (t, c) of |F1(t|c) - F1(t|-c)| and min(F1(t|c), F1(t|-c)); pairs_used says how many; null when c has none (c true on every test image or on none, or no task with enough positives on both sides). all is their median over the attributes that have them.",
    "rho(c) = min(N(c), N(-c)) / (N(c) + N(-c)) on the test split.",
    "pairs: row = condition c, column = task t, in attribute order; f1 matrices are null on the diagonal and where a subgroup is empty; gap and worst are null for pairs not used.",
    "intervals: the test images resampled with replacement (the same resamples for every model, so differences are paired); method basic: estimate = 2 x (the test split's value) - (mean over resamples), the bootstrap's bias correction, and the interval [2 value - q(1 - a/2), 2 value - q(a/2)]; method percentile: [q(a/2), q(1 - a/2)] around the plain value. A gap is an absolute difference of noisy F1s and is biased upward, a worst (a minimum) downward: the plain value is what the test split shows, estimate is the bias-corrected one. Coverage by simulation: docs/statistics.md.",
    "differences are this model minus the compared one on the same resamples; difference intervals at the report's level, equivalence intervals at 90% (two one-sided tests at 5%).",
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
            ("level", .number(bootstrap.level)), ("method", .string(bootstrap.method.rawValue)),
          ])
        ))
    }
    let selection = model.summary.selection
    members.append(
      (
        "pair_selection",
        .object([
          ("min_support", .integer(selection.minimum)), ("used", .integer(selection.used)),
          ("undefined", .integer(selection.undefined)), ("below_min_support", .integer(selection.belowMinimum)),
        ])
      ))
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
        ("pairs_used", .integer(summary.selection.usedPerCondition[attribute])),
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
          ("support", .array((0..<count).map { row in .array((0..<count).map { .integer(summary.selection.support[row * count + $0]) }) })),
        ])
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
    if let equivalence = comparison.equivalenceIntervals {
      all.append(("gap_interval_90", Self.interval(equivalence.allGap)))
      all.append(("worst_interval_90", Self.interval(equivalence.allWorst)))
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
      ("estimate", .number(interval.estimate)), ("low", .number(interval.low)), ("high", .number(interval.high)),
      ("mean", .number(interval.mean)),
      ("resamples", .integer(interval.resamples)),
    ])
  }
}
