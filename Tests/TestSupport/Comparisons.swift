// Helpers shared by the test suites.

/// The largest absolute difference between `value` and `reference`, relative to the largest
/// magnitude in `reference`: max |value - reference| / (max |reference| + 1e-6).
public func relativeError(_ value: UnsafePointer<Float>, _ reference: UnsafePointer<Float>, count: Int) -> Float {
  var difference: Float = 0
  var scale: Float = 0
  for i in 0..<count {
    difference = max(difference, abs(value[i] - reference[i]))
    scale = max(scale, abs(reference[i]))
  }
  return difference / (scale + 1e-6)
}

/// `relativeError` of two arrays of the same length.
public func relativeError(_ value: [Float], _ reference: [Float]) -> Float {
  precondition(value.count == reference.count, "comparing \(value.count) values with \(reference.count)")
  guard !value.isEmpty else { return 0 }
  return value.withUnsafeBufferPointer { a in
    reference.withUnsafeBufferPointer { b in relativeError(a.baseAddress!, b.baseAddress!, count: a.count) }
  }
}

/// ||a - b|| / ||reference|| over whole vectors, in Double.
public func relativeNormDifference(_ a: [Float], _ b: [Float], relativeTo reference: [Float]) -> Double {
  precondition(a.count == b.count && a.count == reference.count, "comparing vectors of \(a.count), \(b.count) and \(reference.count) values")
  let difference = zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
  return (difference / reference.reduce(0.0) { $0 + Double($1) * Double($1) }).squareRoot()
}
