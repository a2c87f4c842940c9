// The readers of the attribute, partition and scores files, and the errors they give for bad
// input: each names the file and the line.
import CelebAFormat
import Fairness
import XCTest

final class InputFileTests: XCTestCase {
  let attributeText = """
    4
    Smiling Male Bald
    000001.jpg  1 -1 -1
    000002.jpg -1  1 -1
    000003.jpg  1  1  1
    000004.jpg -1 -1 -1

    """
  let partitionText = "000001.jpg 0\n000002.jpg 0\n000003.jpg 2\n000004.jpg 2\n"
  let scoresText = """
    image,Smiling,Male,Bald
    000001.jpg,0.9,-1.5,-3
    000002.jpg,0.1,2.5e0,-2
    000003.jpg,0.7,0.3,0.2
    000004.jpg,0.2,-0.5,-1

    """

  func splits(attributes: String? = nil, partition: String? = nil, scores: String? = nil) throws -> EvaluationSplits {
    try EvaluationSplits(
      attributes: CelebAAttributes(name: "list_attr.txt", text: attributes ?? attributeText),
      partition: CelebAPartition(name: "partition.txt", text: partition ?? partitionText),
      scores: ScoreTable(name: "scores.csv", text: scores ?? scoresText))
  }

  func error(_ body: () throws -> Any) -> InputError? {
    do {
      _ = try body()
      return nil
    } catch {
      return error as? InputError
    }
  }

  func testReadsTheCelebAFormatsAndJoinsTheSplits() throws {
    let splits = try splits()
    XCTAssertEqual(splits.train.images, ["000001.jpg", "000002.jpg"])
    XCTAssertEqual(splits.test.images, ["000003.jpg", "000004.jpg"])
    XCTAssertEqual(splits.train.labels, [true, false, false, false, true, false])
    XCTAssertEqual(splits.test.scores, [0.7, 0.3, 0.2, 0.2, -0.5, -1])
    XCTAssertEqual(splits.train.attributeNames, ["Smiling", "Male", "Bald"])
  }

  func testCountLineIsOptionalAndWindowsLineEndingsWork() throws {
    let attributes = try CelebAAttributes(
      name: "a.txt", text: "Smiling Male\r\n000001.jpg 1 -1\r\n000002.jpg 0 1\r\n")
    XCTAssertEqual(attributes.names, ["Smiling", "Male"])
    XCTAssertEqual(attributes.labels, [true, false, false, true])
    XCTAssertEqual(attributes.lines, [2, 3])
  }

  func testScoresFileMissingAnImage() {
    let scores = scoresText.replacingOccurrences(of: "000004.jpg,0.2,-0.5,-1\n", with: "")
    let error = error { try self.splits(scores: scores) }
    XCTAssertEqual(error?.file, "scores.csv")
    XCTAssertEqual(
      error?.description,
      "scores.csv: has no row for image 000004.jpg, which partition.txt line 4 puts in the test split.")
  }

  func testNaNScore() {
    let error = error { try ScoreTable(name: "scores.csv", text: "image,a,b\n1.jpg,0.5,0.1\n2.jpg,nan,0.2\n") }
    XCTAssertEqual(error?.line, 3)
    XCTAssertEqual(
      error?.description, "scores.csv:3: score for a of 2.jpg is nan; every score must be a finite number.")
  }

  func testScoreThatIsNotANumber() {
    let error = error { try ScoreTable(name: "scores.csv", text: "image,a,b\n1.jpg,0.5,0.1x\n") }
    XCTAssertEqual(error?.description, "scores.csv:2: score '0.1x' for b of 1.jpg is not a number.")
  }

  func testWrongHeader() {
    let error = error { try ScoreTable(name: "scores.csv", text: "filename,a,b\n1.jpg,0.5,0.1\n") }
    XCTAssertEqual(error?.line, 1)
    XCTAssertTrue(error?.message.contains("`image,`") ?? false, error?.message ?? "no error")
  }

  func testRowWithTooFewValues() {
    let header = "image," + (1...40).map { "a\($0)" }.joined(separator: ",")
    let row = "1.jpg," + Array(repeating: "0.5", count: 39).joined(separator: ",")
    let error = error { try ScoreTable(name: "scores.csv", text: header + "\n" + row + "\n") }
    XCTAssertEqual(
      error?.description, "scores.csv:2: has 39 scores after the image name; the header names 40 attributes.")
  }

  func testAttributeFileAndScoresWithDifferentAttributes() {
    let scores = scoresText.replacingOccurrences(of: "image,Smiling,Male,Bald", with: "image,Smiling,Bald,Male")
    let error = error { try self.splits(scores: scores) }
    XCTAssertEqual(error?.file, "scores.csv")
    XCTAssertEqual(error?.line, 1)
    XCTAssertEqual(
      error?.message,
      "attribute 2 of the header is 'Bald' but list_attr.txt line 2 has 'Male' there; the scores must name the attribute file's 3 attributes in the same order."
    )
  }

  func testScoresForAnImageTheAttributeFileDoesNotHave() {
    let error = error { try self.splits(scores: self.scoresText + "000009.jpg,0,0,0\n") }
    XCTAssertEqual(error?.line, 6)
    XCTAssertTrue(error?.message.contains("000009.jpg is not in the attribute file list_attr.txt") ?? false)
  }

  func testAttributeFileMissingAPartitionedImage() {
    let error = error { try self.splits(partition: self.partitionText + "000005.jpg 2\n") }
    XCTAssertEqual(error?.file, "list_attr.txt")
    XCTAssertTrue(error?.message.contains("partition.txt line 5 puts in the test split") ?? false)
  }

  func testBadAttributeValueAndShortRow() {
    let bad = error { try CelebAAttributes(name: "a.txt", text: "x y\n1.jpg 1 2\n") }
    XCTAssertEqual(bad?.description, "a.txt:2: value '2' for y of 1.jpg is not 1, -1 or 0.")
    let short = error { try CelebAAttributes(name: "a.txt", text: "x y\n1.jpg 1\n") }
    XCTAssertEqual(short?.description, "a.txt:2: has 1 values after the image name; the header names 2 attributes.")
  }

  func testBadPartitionLinesAndRepeatedImages() {
    let split = error { try CelebAPartition(name: "p.txt", text: "1.jpg 0\n2.jpg 3\n") }
    XCTAssertEqual(split?.line, 2)
    let repeated = error { try CelebAPartition(name: "p.txt", text: "1.jpg 0\n1.jpg 2\n") }
    XCTAssertEqual(repeated?.description, "p.txt:2: repeats image 1.jpg, already on line 1.")
    let scores = error { try ScoreTable(name: "s.csv", text: "image,a\n1.jpg,1\n1.jpg,2\n") }
    XCTAssertEqual(scores?.description, "s.csv:3: repeats image 1.jpg, already on line 2.")
  }

  func testEmptySplitAndEmptyFiles() {
    let noTest = error { try self.splits(partition: "000001.jpg 0\n000002.jpg 1\n") }
    XCTAssertEqual(noTest?.description, "partition.txt: puts no image in the test split (code 2).")
    XCTAssertEqual(error { try ScoreTable(name: "s.csv", text: "") }?.file, "s.csv")
    XCTAssertEqual(error { try CelebAAttributes(name: "a.txt", text: "\n") }?.file, "a.txt")
  }

  func testCommandsNeedCelebAsFortyAttributes() throws {
    let three = try CelebAAttributes(name: "a.txt", text: attributeText)
    XCTAssertThrowsError(try three.checkCelebAAttributeCount())
    let forty = try CelebAAttributes(name: "a.txt", text: CelebA.attributeNames.joined(separator: " ") + "\n")
    XCTAssertNoThrow(try forty.checkCelebAAttributeCount())
  }

  func testMissingFileIsAnInputError() {
    let error = error { try ScoreTable(contentsOf: URL(fileURLWithPath: "/nonexistent/scores.csv")) }
    XCTAssertEqual(error?.file, "/nonexistent/scores.csv")
  }
}
