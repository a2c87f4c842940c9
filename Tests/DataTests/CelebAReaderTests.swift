// The strict CelebA reader: every bad-input case names the file, the line and what to do.
import Data
import XCTest

final class CelebAReaderTests: XCTestCase {
}
