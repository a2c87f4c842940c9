// The C shims link and answer: each system library is called once through its module.
import CBLAS
import CMPI
import CTurboJPEG
import CZstd
import XCTest

final class ShimTests: XCTestCase {
  func testOpenBLASMultiplies() {
    let a: [Float] = [1, 2, 3, 4]
    let b: [Float] = [5, 6, 7, 8]
    var c = [Float](repeating: 0, count: 4)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 2, 2, 1, a, 2, b, 2, 0, &c, 2)
    XCTAssertEqual(c, [19, 22, 43, 50])
  }

  func testZstdRoundTrip() {
    let input = [UInt8](repeating: 7, count: 1000)
    var compressed = [UInt8](repeating: 0, count: ZSTD_compressBound(input.count))
    let size = ZSTD_compress(&compressed, compressed.count, input, input.count, 3)
    XCTAssertEqual(ZSTD_isError(size), 0)
    // A run of one byte: a frame header and a block of one repeated value, ~20 bytes.
    XCTAssertLessThan(size, 100)
    var output = [UInt8](repeating: 0, count: input.count)
    let back = ZSTD_decompress(&output, output.count, compressed, size)
    XCTAssertEqual(back, input.count)
    XCTAssertEqual(output, input)
  }

  func testMPIHandlesAndVersion() {
    var major: Int32 = 0
    var minor: Int32 = 0
    XCTAssertEqual(MPI_Get_version(&major, &minor), MPI_SUCCESS)
    // The non-blocking collectives the communicator uses (MPI_Iallreduce, MPI_Ibcast) came with
    // MPI 3.
    XCTAssertGreaterThanOrEqual(major, 3)
    XCTAssertNotEqual(fairtune_mpi_float(), fairtune_mpi_double())
  }

  func testTurboJPEGEncodesAndDecodes() throws {
    let width: Int32 = 16
    let height: Int32 = 8
    var pixels = [UInt8](repeating: 0, count: Int(width * height * 3))
    for i in 0..<pixels.count { pixels[i] = UInt8((i * 7) % 256) }
    let encoder = try XCTUnwrap(tjInitCompress())
    defer { tjDestroy(encoder) }
    var jpeg: UnsafeMutablePointer<UInt8>?
    var jpegSize: UInt = 0
    XCTAssertEqual(tjCompress2(encoder, pixels, width, 0, height, Int32(TJPF_RGB.rawValue), &jpeg, &jpegSize, Int32(TJSAMP_444.rawValue), 95, 0), 0)
    defer { tjFree(jpeg) }
    let decoder = try XCTUnwrap(tjInitDecompress())
    defer { tjDestroy(decoder) }
    var w: Int32 = 0
    var h: Int32 = 0
    var subsampling: Int32 = 0
    XCTAssertEqual(tjDecompressHeader2(decoder, jpeg, jpegSize, &w, &h, &subsampling), 0)
    XCTAssertEqual(w, width)
    XCTAssertEqual(h, height)
  }
}
