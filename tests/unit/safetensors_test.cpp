// Bad-input tests of the safetensors reader (SafetensorsFile, parse_safetensors_header,
// TensorStore::open_dir). Every malformed file must be refused with a retnet::Error whose message
// names the file and the problem; none may crash or be read out of bounds.
#include <gtest/gtest.h>

#include "test_util.hpp"
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/dtype.hpp"
#include "model/safetensors.hpp"
#include "retnet/error.hpp"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using retnet::DType;
using retnet::Error;
using retnet::SafetensorsFile;
using retnet::TensorStore;

const std::string kData = RETNET_TEST_DATA;

using retnet::test::Contains;

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[size_t(i)] = char((n >> (8 * i)) & 0xff);
  return s;
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  ASSERT_TRUE(out.good()) << p;
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// 8-byte little-endian header length + header text + data section.
std::string st_file(const std::string& header, const std::string& data) { return le64(header.size()) + header + data; }

struct Spec {
  std::string name, dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

// A well-formed file from tensor specs, laid out back to back in the given order.
std::string build_st(const std::vector<Spec>& specs, const json& metadata = nullptr) {
  json h = json::object();
  if (!metadata.is_null()) h["__metadata__"] = metadata;
  std::string data;
  for (const Spec& s : specs) {
    h[s.name] = {{"dtype", s.dtype}, {"shape", s.shape}, {"data_offsets", {data.size(), data.size() + s.bytes.size()}}};
    data += s.bytes;
  }
  return st_file(h.dump(), data);
}

template <class T>
std::string raw(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

class TempDirTest : public retnet::test::TempDirTest {
 protected:

  // Writes bytes to a file in the temp dir, opens it and returns the Error message ("" + a test
  // failure when it did not throw retnet::Error).
  std::string open_error(const std::string& bytes, const std::string& name = "model.safetensors") {
    const fs::path p = dir_ / name;
    write_bytes(p, bytes);
    last_path_ = p.string();
    try {
      SafetensorsFile f(p.string());
      ADD_FAILURE() << "no Error for " << p << " (" << f.tensors().size() << " tensors parsed)";
    } catch (const Error& e) {
      return e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "threw a non-retnet exception: " << e.what();
    }
    return "";
  }
  std::string header_error(const std::string& header, const std::string& data = "") {
    return open_error(st_file(header, data));
  }
  std::string dir_error(const fs::path& d) {
    try {
      TensorStore::open_dir(d.string());
      ADD_FAILURE() << "no Error for model directory " << d;
    } catch (const Error& e) {
      return e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "threw a non-retnet exception: " << e.what();
    }
    return "";
  }
  fs::path copy_fixture(const std::string& name) {
    fs::path d = dir_ / name;
    fs::copy(fs::path(kData) / name, d, fs::copy_options::recursive);
    return d;
  }

  std::string last_path_;
};

using SafetensorsBadInput = TempDirTest;
using SafetensorsGoodInput = TempDirTest;
using ShardedBadInput = TempDirTest;

const std::string kF32x4 = std::string(16, '\0');  // 4 fp32 zeros

// ---- file shorter than the length prefix -----------------------------------------------------

TEST_F(SafetensorsBadInput, EmptyFile) {
  std::string m = open_error("");
  EXPECT_TRUE(Contains(m, last_path_));
  EXPECT_TRUE(Contains(m, "too short"));
  EXPECT_TRUE(Contains(m, "0 bytes"));
}

TEST_F(SafetensorsBadInput, SevenByteFile) {
  std::string m = open_error(std::string(7, '\x01'));
  EXPECT_TRUE(Contains(m, last_path_));
  EXPECT_TRUE(Contains(m, "too short"));
  EXPECT_TRUE(Contains(m, "7 bytes"));
}

TEST_F(SafetensorsBadInput, MissingFile) {
  try {
    SafetensorsFile f((dir_ / "nope.safetensors").string());
    FAIL() << "no Error";
  } catch (const Error& e) {
    EXPECT_TRUE(Contains(e.what(), (dir_ / "nope.safetensors").string()));
    EXPECT_TRUE(Contains(e.what(), "cannot open"));
  }
}

TEST_F(SafetensorsBadInput, PathIsADirectory) {
  fs::create_directory(dir_ / "sub.safetensors");
  try {
    SafetensorsFile f((dir_ / "sub.safetensors").string());
    FAIL() << "no Error";
  } catch (const Error& e) {
    EXPECT_TRUE(Contains(e.what(), (dir_ / "sub.safetensors").string()));
    EXPECT_TRUE(Contains(e.what(), "directory"));
  }
}

// ---- header length ---------------------------------------------------------------------------

TEST_F(SafetensorsBadInput, HeaderLengthPastEndOfFile) {
  std::string m = open_error(le64(1000) + "{}");
  EXPECT_TRUE(Contains(m, last_path_));
  EXPECT_TRUE(Contains(m, "header length 1000"));
  EXPECT_TRUE(Contains(m, "past the end of the file"));
}

TEST_F(SafetensorsBadInput, HeaderLengthOneBytePastEnd) {
  const std::string h = "{}";
  std::string m = open_error(le64(h.size() + 1) + h);
  EXPECT_TRUE(Contains(m, "header length 3"));
  EXPECT_TRUE(Contains(m, "past the end"));
}

TEST_F(SafetensorsBadInput, HeaderLength2Pow63) {
  std::string m = open_error(le64(uint64_t(1) << 63) + "{}");
  EXPECT_TRUE(Contains(m, last_path_));
  EXPECT_TRUE(Contains(m, "header length 9223372036854775808"));
}

TEST_F(SafetensorsBadInput, HeaderLengthMaxUint64) {
  std::string m = open_error(le64(~uint64_t(0)) + "{}");
  EXPECT_TRUE(Contains(m, last_path_));
  EXPECT_TRUE(Contains(m, "header length 18446744073709551615"));
}

TEST_F(SafetensorsBadInput, HeaderLengthOverLimit) {
  std::string m = open_error(le64((100ull << 20) + 1) + "{}");
  EXPECT_TRUE(Contains(m, "header length"));
  EXPECT_TRUE(Contains(m, "100 MB"));
}

TEST_F(SafetensorsBadInput, HeaderLengthZero) {
  std::string m = open_error(le64(0) + "{}");
  EXPECT_TRUE(Contains(m, last_path_));
  EXPECT_TRUE(Contains(m, "empty safetensors header"));
}

// ---- header JSON -----------------------------------------------------------------------------

TEST_F(SafetensorsBadInput, HeaderNotJson) {
  for (const std::string h : {"{not json", "{\"a\": }", "\x01\x02\x03", "{}}", "   "}) {
    std::string m = header_error(h);
    EXPECT_TRUE(Contains(m, last_path_));
    EXPECT_TRUE(Contains(m, "not valid JSON")) << "header: " << h;
  }
}

TEST_F(SafetensorsBadInput, HeaderNotAnObject) {
  for (const std::string h : {"[1, 2, 3]", "\"a string\"", "42", "null", "true"}) {
    std::string m = header_error(h);
    EXPECT_TRUE(Contains(m, last_path_));
    EXPECT_TRUE(Contains(m, "not a JSON object")) << "header: " << h;
  }
}

TEST_F(SafetensorsBadInput, HeaderNestedTooDeep) {
  std::string deep = "{\"__metadata__\": ";
  for (int i = 0; i < 200; ++i) deep += "[";
  for (int i = 0; i < 200; ++i) deep += "]";
  deep += "}";
  std::string m = header_error(deep);
  EXPECT_TRUE(Contains(m, last_path_));
  EXPECT_TRUE(Contains(m, "nests deeper"));
}

TEST_F(SafetensorsBadInput, MetadataNotAnObject) {
  for (const std::string v : {"[]", "\"pt\"", "1"}) {
    std::string m = header_error("{\"__metadata__\": " + v + "}");
    EXPECT_TRUE(Contains(m, last_path_));
    EXPECT_TRUE(Contains(m, "__metadata__ is not an object")) << v;
  }
}

TEST_F(SafetensorsBadInput, DuplicateTensorName) {
  const std::string h =
      R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},)"
      R"( "w": {"dtype": "F32", "shape": [2], "data_offsets": [16, 24]}})";
  std::string m = header_error(h, std::string(24, '\0'));
  EXPECT_TRUE(Contains(m, last_path_));
  EXPECT_TRUE(Contains(m, "'w' twice"));
}

TEST_F(SafetensorsBadInput, TensorEntryNotAnObject) {
  for (const std::string v : {"[]", "\"F32\"", "7", "null"}) {
    std::string m = header_error("{\"w\": " + v + "}");
    EXPECT_TRUE(Contains(m, last_path_));
    EXPECT_TRUE(Contains(m, "tensor 'w'"));
    EXPECT_TRUE(Contains(m, "not an object")) << v;
  }
}

TEST_F(SafetensorsBadInput, MissingFields) {
  std::string m = header_error(R"({"w": {"shape": [4], "data_offsets": [0, 16]}})", kF32x4);
  EXPECT_TRUE(Contains(m, "'dtype'"));
  m = header_error(R"({"w": {"dtype": "F32", "data_offsets": [0, 16]}})", kF32x4);
  EXPECT_TRUE(Contains(m, "'shape'"));
  m = header_error(R"({"w": {"dtype": "F32", "shape": [4]}})", kF32x4);
  EXPECT_TRUE(Contains(m, "data_offsets"));
  m = header_error(R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [16]}})", kF32x4);
  EXPECT_TRUE(Contains(m, "data_offsets"));
  m = header_error(R"({"w": {"dtype": 7, "shape": [4], "data_offsets": [0, 16]}})", kF32x4);
  EXPECT_TRUE(Contains(m, "'dtype'"));
  m = header_error(R"({"w": {"dtype": "F32", "shape": 4, "data_offsets": [0, 16]}})", kF32x4);
  EXPECT_TRUE(Contains(m, "'shape'"));
}

// ---- dtype -----------------------------------------------------------------------------------

TEST_F(SafetensorsBadInput, UnknownDtype) {
  std::string m = header_error(R"({"w": {"dtype": "Q7", "shape": [4], "data_offsets": [0, 16]}})", kF32x4);
  EXPECT_TRUE(Contains(m, last_path_));
  EXPECT_TRUE(Contains(m, "tensor 'w'"));
  EXPECT_TRUE(Contains(m, "unknown dtype 'Q7'"));
}

TEST_F(SafetensorsBadInput, KnownButUnsupportedDtype) {
  for (const std::string dt : {"I64", "F64", "U8", "BOOL", "F8_E4M3"}) {
    std::string m = header_error(R"({"w": {"dtype": ")" + dt + R"(", "shape": [2], "data_offsets": [0, 16]}})", kF32x4);
    EXPECT_TRUE(Contains(m, last_path_));
    EXPECT_TRUE(Contains(m, "dtype " + dt + " is not supported"));
  }
}

TEST_F(SafetensorsBadInput, DtypeIsCaseSensitive) {
  std::string m = header_error(R"({"w": {"dtype": "f32", "shape": [4], "data_offsets": [0, 16]}})", kF32x4);
  EXPECT_TRUE(Contains(m, "unknown dtype 'f32'"));
}

// ---- data_offsets ----------------------------------------------------------------------------

TEST_F(SafetensorsBadInput, OffsetsBeginGreaterThanEnd) {
  std::string m = header_error(R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [16, 0]}})", kF32x4);
  EXPECT_TRUE(Contains(m, last_path_));
  EXPECT_TRUE(Contains(m, "tensor 'w'"));
  EXPECT_TRUE(Contains(m, "data_offsets begin 16 > end 0"));
}

TEST_F(SafetensorsBadInput, OffsetsEndPastDataSection) {
  std::string m = header_error(R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", std::string(15, '\0'));
  EXPECT_TRUE(Contains(m, last_path_));
  EXPECT_TRUE(Contains(m, "data_offsets end 16"));
  EXPECT_TRUE(Contains(m, "past the data section (15 bytes"));
}

TEST_F(SafetensorsBadInput, OffsetsHugeValues) {
  std::string m = header_error(
      R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [18446744073709551600, 18446744073709551615]}})", kF32x4);
  EXPECT_TRUE(Contains(m, "data_offsets"));
  EXPECT_TRUE(Contains(m, "past the data section"));
}

TEST_F(SafetensorsBadInput, OffsetsNotIntegers) {
  for (const std::string off : {"[-4, 16]", "[0, 16.0]", "[\"0\", \"16\"]", "[0, 1e30]"}) {
    std::string m = header_error(R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": )" + off + "}}", kF32x4);
    EXPECT_TRUE(Contains(m, last_path_));
    EXPECT_TRUE(Contains(m, "data_offsets must be non-negative integers")) << off;
  }
}

TEST_F(SafetensorsBadInput, SpanDoesNotMatchShapeTimesDtype) {
  std::string m = header_error(R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}})", kF32x4);
  EXPECT_TRUE(Contains(m, last_path_));
  EXPECT_TRUE(Contains(m, "tensor 'w'"));
  EXPECT_TRUE(Contains(m, "span 16 bytes"));
  EXPECT_TRUE(Contains(m, "needs 12"));
  // F16 of 4 elements needs 8 bytes, not 16.
  m = header_error(R"({"w": {"dtype": "F16", "shape": [2, 2], "data_offsets": [0, 16]}})", kF32x4);
  EXPECT_TRUE(Contains(m, "needs 8"));
}

TEST_F(SafetensorsBadInput, OverlappingTensors) {
  const std::string h =
      R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},)"
      R"( "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})";
  std::string m = header_error(h, kF32x4);
  EXPECT_TRUE(Contains(m, last_path_));
  EXPECT_TRUE(Contains(m, "overlap"));
  EXPECT_TRUE(Contains(m, "'a'"));
  EXPECT_TRUE(Contains(m, "'b'"));
}

TEST_F(SafetensorsBadInput, IdenticalSpansOverlap) {
  const std::string h =
      R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},)"
      R"( "b": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})";
  EXPECT_TRUE(Contains(header_error(h, kF32x4), "overlap"));
}

TEST_F(SafetensorsBadInput, OverlapNotHiddenByZeroSizedTensorBetween) {
  // 'big' covers [0, 32); the empty tensor starts inside it and 'c' lies inside it too. The
  // overlap check must compare against every earlier span, not just the previous one.
  const std::string h =
      R"({"big": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]},)"
      R"( "empty": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]},)"
      R"( "c": {"dtype": "F32", "shape": [2], "data_offsets": [16, 24]}})";
  std::string m = header_error(h, std::string(32, '\0'));
  EXPECT_TRUE(Contains(m, "overlap"));
  EXPECT_TRUE(Contains(m, "'big'"));
  EXPECT_TRUE(Contains(m, "'c'"));
}

TEST_F(SafetensorsBadInput, OverlapOfTensorsNestedInsideAnother) {
  // big [0,32) contains both b [4,8) and c [16,20).
  const std::string h =
      R"({"big": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]},)"
      R"( "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]},)"
      R"( "c": {"dtype": "F32", "shape": [1], "data_offsets": [16, 20]}})";
  EXPECT_TRUE(Contains(header_error(h, std::string(32, '\0')), "overlap"));
}

// ---- shape -----------------------------------------------------------------------------------

TEST_F(SafetensorsBadInput, ShapeNegativeEntry) {
  std::string m = header_error(R"({"w": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}})", kF32x4);
  EXPECT_TRUE(Contains(m, last_path_));
  EXPECT_TRUE(Contains(m, "tensor 'w'"));
  EXPECT_TRUE(Contains(m, "shape entries must be non-negative integers"));
  m = header_error(R"({"w": {"dtype": "F32", "shape": [-2, -2], "data_offsets": [0, 16]}})", kF32x4);
  EXPECT_TRUE(Contains(m, "shape entries must be non-negative integers"));
}

TEST_F(SafetensorsBadInput, ShapeNonIntegerEntry) {
  for (const std::string sh : {"[2.5]", "[4.0]", "[\"4\"]", "[null]", "[[4]]", "[true]"}) {
    std::string m = header_error(R"({"w": {"dtype": "F32", "shape": )" + sh + R"(, "data_offsets": [0, 16]}})", kF32x4);
    EXPECT_TRUE(Contains(m, last_path_));
    EXPECT_TRUE(Contains(m, "shape entries must be non-negative integers")) << sh;
  }
}

TEST_F(SafetensorsBadInput, ShapeTooLarge) {
  // numel * 4 would overflow 64 bits; must be refused before any multiplication wraps.
  std::string m = header_error(
      R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 16]}})", kF32x4);
  EXPECT_TRUE(Contains(m, "shape"));
  EXPECT_TRUE(Contains(m, "too large"));
  m = header_error(R"({"w": {"dtype": "F32", "shape": [1099511627776, 1099511627776, 16], "data_offsets": [0, 0]}})");
  EXPECT_TRUE(Contains(m, "too large"));
  // A shape whose product wraps to exactly 4 elements in 64-bit arithmetic.
  m = header_error(R"({"w": {"dtype": "F32", "shape": [4, 4611686018427387904, 4], "data_offsets": [0, 16]}})", kF32x4);
  EXPECT_TRUE(Contains(m, "too large"));
}

TEST_F(SafetensorsBadInput, ShapeTooManyDims) {
  std::string m = header_error(R"({"w": {"dtype": "F32", "shape": [1,1,1,1,1,1,1,1,4], "data_offsets": [0, 16]}})", kF32x4);
  EXPECT_TRUE(Contains(m, "more than 8 dimensions"));
}

// ---- truncations of a real checkpoint --------------------------------------------------------

TEST_F(SafetensorsBadInput, TruncatedValidFixtureAlwaysThrows) {
  const std::string full = read_bytes(fs::path(kData) / "ts_swish_scaled" / "model.safetensors");
  ASSERT_GT(full.size(), 1000u);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | uint8_t(full[size_t(i)]);
  ASSERT_LT(n + 8, full.size());
  const size_t hdr_end = size_t(8 + n);
  std::vector<size_t> cuts = {0, 1, 4, 7,                                      // inside the length prefix
                              8, 9, 10, hdr_end / 2, hdr_end - 2, hdr_end - 1,  // inside the header
                              hdr_end, hdr_end + 1, hdr_end + 4,               // at / just past the header
                              (hdr_end + full.size()) / 2, full.size() - 12, full.size() - 1};  // inside the data
  for (size_t cut : cuts) {
    SCOPED_TRACE("cut at " + std::to_string(cut) + " of " + std::to_string(full.size()));
    std::string m = open_error(full.substr(0, cut), "cut_" + std::to_string(cut) + ".safetensors");
    EXPECT_TRUE(Contains(m, last_path_));
    if (cut < 8) EXPECT_TRUE(Contains(m, "too short"));
    else if (cut < hdr_end) EXPECT_TRUE(Contains(m, "header length"));
    else EXPECT_TRUE(Contains(m, "past the data section"));
  }
  // The uncut file is fine.
  write_bytes(dir_ / "whole.safetensors", full);
  SafetensorsFile f((dir_ / "whole.safetensors").string());
  EXPECT_EQ(f.tensors().size(), 26u);
}

TEST_F(SafetensorsBadInput, TruncationSweepThroughLengthAndHeader) {
  // Cuts through the length prefix and the header (every byte near either end, every 3rd in
  // between), a little past the header too: always an Error, never a crash.
  const std::string full = read_bytes(fs::path(kData) / "ts_swish_scaled" / "model.safetensors");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | uint8_t(full[size_t(i)]);
  const size_t hdr_end = size_t(8 + n), stop = hdr_end + 16;
  std::vector<size_t> cuts;
  for (size_t cut = 0; cut <= stop; ++cut)
    if (cut < 64 || cut + 32 > hdr_end || cut % 3 == 0) cuts.push_back(cut);
  const fs::path p = dir_ / "sweep.safetensors";
  write_bytes(p, full.substr(0, stop));
  int refused = 0;
  for (auto it = cuts.rbegin(); it != cuts.rend(); ++it) {  // shrink the one file step by step
    const size_t cut = *it;
    fs::resize_file(p, cut);
    try {
      SafetensorsFile f(p.string());
      ADD_FAILURE() << "cut at " << cut << " parsed";
    } catch (const Error& e) {
      if (std::string(e.what()).find(p.string()) == 0) ++refused;
    }
  }
  EXPECT_EQ(refused, int(cuts.size()));
  EXPECT_GT(cuts.size(), 800u);
}

TEST_F(SafetensorsBadInput, HeaderByteMutationsNeverCrash) {
  // Replace each header byte with characters that change JSON structure; each mutated header must
  // either parse into in-bounds tensors or be refused with an Error.
  const std::string full = read_bytes(fs::path(kData) / "ts_swish_scaled" / "model.safetensors");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | uint8_t(full[size_t(i)]);
  const std::string header = full.substr(8, size_t(n));
  const size_t data_size = full.size() - 8 - size_t(n);
  int parsed = 0, refused = 0;
  for (size_t i = 0; i < header.size(); ++i) {
    for (char c : {'9', '"', '-', ']', '\0'}) {
      if (header[i] == c) continue;
      std::string h = header;
      h[i] = c;
      try {
        auto t = retnet::parse_safetensors_header("mut", h.data(), h.size(), nullptr, data_size);
        for (const auto& [name, info] : t) {
          uint64_t need = retnet::dtype_traits(info.dtype).bytes(uint64_t(info.numel()));
          ASSERT_EQ(info.nbytes, need) << name;
          ASSERT_LE(info.nbytes, data_size) << name;
        }
        ++parsed;
      } catch (const Error& e) {
        ASSERT_EQ(std::string(e.what()).rfind("mut: ", 0), 0u) << e.what();
        ++refused;
      }
    }
  }
  EXPECT_GT(refused, 1000);
  EXPECT_GT(parsed, 0);  // e.g. a digit inside a tensor name still parses
}

TEST_F(SafetensorsBadInput, ValidFixtureWithCorruptedHeaderByteThrows) {
  const std::string full = read_bytes(fs::path(kData) / "ts_swish_scaled" / "model.safetensors");
  // Overwrite the opening brace of the header: no longer JSON.
  std::string bad = full;
  bad[8] = 'X';
  EXPECT_TRUE(Contains(open_error(bad), "not valid JSON"));
}

// ---- well-formed files -----------------------------------------------------------------------

TEST_F(SafetensorsGoodInput, HandBuiltF32F16Bf16) {
  const std::vector<float> a = {1.f, -2.f, 3.5f, 0.25f, 8.f, -0.f};
  const std::vector<uint16_t> h16 = {retnet::f32_to_f16(1.5f), retnet::f32_to_f16(-2.f), retnet::f32_to_f16(0.5f)};
  const std::vector<uint16_t> b16 = {retnet::f32_to_bf16(3.f), retnet::f32_to_bf16(-0.125f), retnet::f32_to_bf16(7.f),
                                     retnet::f32_to_bf16(1.f)};
  const fs::path p = dir_ / "ok.safetensors";
  write_bytes(p, build_st({{"a.f32", "F32", {2, 3}, raw(a)}, {"b.f16", "F16", {3}, raw(h16)},
                           {"c.bf16", "BF16", {2, 1, 2}, raw(b16)}}));
  SafetensorsFile f(p.string());
  ASSERT_EQ(f.tensors().size(), 3u);
  const auto& ta = f.tensors().at("a.f32");
  EXPECT_EQ(ta.dtype, DType::F32);
  EXPECT_EQ(ta.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(ta.nbytes, 24u);
  EXPECT_EQ(ta.numel(), 6);
  EXPECT_EQ(ta.file, p.string());
  EXPECT_EQ(ta.shape_str(), "[2, 3]");
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(retnet::load_as_f32(ta.data, ta.dtype, i), a[i]);
  const auto& tb = f.tensors().at("b.f16");
  EXPECT_EQ(tb.dtype, DType::F16);
  EXPECT_EQ(tb.shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(tb.nbytes, 6u);
  EXPECT_EQ(retnet::load_as_f32(tb.data, tb.dtype, 0), 1.5f);
  EXPECT_EQ(retnet::load_as_f32(tb.data, tb.dtype, 1), -2.f);
  EXPECT_EQ(retnet::load_as_f32(tb.data, tb.dtype, 2), 0.5f);
  const auto& tc = f.tensors().at("c.bf16");
  EXPECT_EQ(tc.dtype, DType::BF16);
  EXPECT_EQ(tc.shape, (std::vector<int64_t>{2, 1, 2}));
  EXPECT_EQ(tc.nbytes, 8u);
  EXPECT_EQ(retnet::load_as_f32(tc.data, tc.dtype, 0), 3.f);
  EXPECT_EQ(retnet::load_as_f32(tc.data, tc.dtype, 1), -0.125f);
  EXPECT_EQ(retnet::load_as_f32(tc.data, tc.dtype, 3), 1.f);
  // Data pointers are at the declared offsets after the header.
  EXPECT_EQ(tb.data, ta.data + 24);
  EXPECT_EQ(tc.data, ta.data + 30);
}

TEST_F(SafetensorsGoodInput, MetadataIsAccepted) {
  const fs::path p = dir_ / "meta.safetensors";
  write_bytes(p, build_st({{"w", "F32", {4}, kF32x4}}, json{{"format", "pt"}, {"note", "anything"}}));
  SafetensorsFile f(p.string());
  ASSERT_EQ(f.tensors().size(), 1u);
  EXPECT_EQ(f.tensors().count("__metadata__"), 0u);
  EXPECT_EQ(f.tensors().at("w").shape, (std::vector<int64_t>{4}));
}

TEST_F(SafetensorsGoodInput, MetadataOnlyHeader) {
  const fs::path p = dir_ / "meta_only.safetensors";
  write_bytes(p, st_file(R"({"__metadata__": {"format": "pt"}})", ""));
  SafetensorsFile f(p.string());
  EXPECT_TRUE(f.tensors().empty());
}

TEST_F(SafetensorsGoodInput, ZeroSizedTensorsAccepted) {
  const fs::path p = dir_ / "zero.safetensors";
  // Zero-sized tensors may share an offset with each other and sit at a neighbour's boundary.
  const std::string h =
      R"({"e1": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]},)"
      R"( "e2": {"dtype": "BF16", "shape": [3, 0, 5], "data_offsets": [0, 0]},)"
      R"( "w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},)"
      R"( "e3": {"dtype": "F16", "shape": [0, 7], "data_offsets": [16, 16]}})";
  write_bytes(p, st_file(h, kF32x4));
  SafetensorsFile f(p.string());
  ASSERT_EQ(f.tensors().size(), 4u);
  EXPECT_EQ(f.tensors().at("e1").nbytes, 0u);
  EXPECT_EQ(f.tensors().at("e2").shape, (std::vector<int64_t>{3, 0, 5}));
  EXPECT_EQ(f.tensors().at("e2").numel(), 0);
  EXPECT_EQ(f.tensors().at("e3").nbytes, 0u);
  EXPECT_EQ(f.tensors().at("w").nbytes, 16u);
}

TEST_F(SafetensorsGoodInput, ScalarTensorAndTrailingPaddingInHeader) {
  const fs::path p = dir_ / "scalar.safetensors";
  // Writers pad the header with spaces to 8-byte alignment; a shape [] tensor holds one element.
  std::string h = R"({"s": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]}})";
  h.append(8 - h.size() % 8, ' ');
  const float v = 2.75f;
  write_bytes(p, st_file(h, std::string(reinterpret_cast<const char*>(&v), 4)));
  SafetensorsFile f(p.string());
  const auto& s = f.tensors().at("s");
  EXPECT_TRUE(s.shape.empty());
  EXPECT_EQ(s.numel(), 1);
  EXPECT_EQ(retnet::load_as_f32(s.data, s.dtype, 0), 2.75f);
}

TEST_F(SafetensorsGoodInput, ParseHeaderWithoutDataBase) {
  const std::string h = R"({"w": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [4, 16]}})";
  auto t = retnet::parse_safetensors_header("mem", h.data(), h.size(), nullptr, 16);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t.at("w").data, nullptr);
  EXPECT_EQ(t.at("w").nbytes, 12u);
  EXPECT_EQ(t.at("w").file, "mem");
  try {
    retnet::parse_safetensors_header("mem", h.data(), h.size(), nullptr, 15);
    FAIL() << "no Error";
  } catch (const Error& e) {
    EXPECT_TRUE(Contains(e.what(), "mem: tensor 'w'"));
    EXPECT_TRUE(Contains(e.what(), "past the data section"));
  }
}

TEST_F(SafetensorsGoodInput, RealFixtureParses) {
  SafetensorsFile f(kData + "/ts_swish_scaled/model.safetensors");
  ASSERT_EQ(f.tensors().size(), 26u);
  const auto& e = f.tensors().at("embed_tokens.weight");
  EXPECT_EQ(e.dtype, DType::F32);
  EXPECT_EQ(e.shape, (std::vector<int64_t>{97, 48}));
  EXPECT_EQ(e.nbytes, 97u * 48u * 4u);
}

// ---- model directories and sharded checkpoints -----------------------------------------------

TEST_F(ShardedBadInput, ValidShardedFixtureOpens) {
  TensorStore st = TensorStore::open_dir(kData + "/ts_sharded");
  EXPECT_TRUE(st.contains("model.embed_tokens.weight"));
  EXPECT_TRUE(st.contains("lm_head.weight"));
  EXPECT_GT(st.total_bytes(), 600000u);
}

TEST_F(ShardedBadInput, IndexNamesMissingShard) {
  fs::path d = copy_fixture("ts_sharded");
  fs::remove(d / "model-00002-of-00002.safetensors");
  std::string m = dir_error(d);
  EXPECT_TRUE(Contains(m, (d / "model.safetensors.index.json").string()));
  EXPECT_TRUE(Contains(m, "shard 'model-00002-of-00002.safetensors'"));
  EXPECT_TRUE(Contains(m, "missing"));
}

TEST_F(ShardedBadInput, WeightMapPointsToShardLackingTensor) {
  fs::path d = copy_fixture("ts_sharded");
  json idx = json::parse(read_bytes(d / "model.safetensors.index.json"));
  ASSERT_EQ(idx["weight_map"]["model.layer_norm.weight"], "model-00002-of-00002.safetensors");
  idx["weight_map"]["model.layer_norm.weight"] = "model-00001-of-00002.safetensors";
  write_bytes(d / "model.safetensors.index.json", idx.dump(1));
  std::string m = dir_error(d);
  EXPECT_TRUE(Contains(m, (d / "model.safetensors.index.json").string()));
  EXPECT_TRUE(Contains(m, "tensor 'model.layer_norm.weight'"));
  EXPECT_TRUE(Contains(m, "lacks it"));
}

TEST_F(ShardedBadInput, WeightMapNamesTensorAbsentEverywhere) {
  fs::path d = copy_fixture("ts_sharded");
  json idx = json::parse(read_bytes(d / "model.safetensors.index.json"));
  idx["weight_map"]["ghost.weight"] = "model-00001-of-00002.safetensors";
  write_bytes(d / "model.safetensors.index.json", idx.dump(1));
  EXPECT_TRUE(Contains(dir_error(d), "tensor 'ghost.weight'"));
}

TEST_F(ShardedBadInput, IndexNotJson) {
  fs::path d = copy_fixture("ts_sharded");
  write_bytes(d / "model.safetensors.index.json", "{\"weight_map\": {");
  std::string m = dir_error(d);
  EXPECT_TRUE(Contains(m, (d / "model.safetensors.index.json").string()));
  EXPECT_TRUE(Contains(m, "not valid JSON"));
}

TEST_F(ShardedBadInput, IndexWithoutWeightMapObject) {
  fs::path d = copy_fixture("ts_sharded");
  for (const std::string text : {"[]", "{}", R"({"weight_map": []})", R"({"weight_map": "x"})"}) {
    write_bytes(d / "model.safetensors.index.json", text);
    EXPECT_TRUE(Contains(dir_error(d), "weight_map")) << text;
  }
}

TEST_F(ShardedBadInput, WeightMapEntryNotAString) {
  fs::path d = copy_fixture("ts_sharded");
  write_bytes(d / "model.safetensors.index.json", R"({"weight_map": {"lm_head.weight": 3}})");
  std::string m = dir_error(d);
  EXPECT_TRUE(Contains(m, "weight_map entry 'lm_head.weight'"));
}

TEST_F(ShardedBadInput, ShardNameEscapingTheDirectory) {
  fs::path d = copy_fixture("ts_sharded");
  // A real shard one level up: a reader that followed the path would find it.
  fs::copy_file(d / "model-00001-of-00002.safetensors", dir_ / "outside.safetensors");
  const std::vector<std::string> shards = {"../outside.safetensors", "..", "sub/model.safetensors",
                                          (dir_ / "outside.safetensors").string(), ".", ""};
  for (const std::string& shard : shards) {
    json idx = {{"weight_map", {{"lm_head.weight", shard}}}};
    write_bytes(d / "model.safetensors.index.json", idx.dump());
    std::string m = dir_error(d);
    EXPECT_TRUE(Contains(m, "shard name '" + shard + "'"));
    EXPECT_TRUE(Contains(m, "plain file name"));
  }
}

TEST_F(ShardedBadInput, ShardIsTruncated) {
  fs::path d = copy_fixture("ts_sharded");
  const fs::path shard = d / "model-00002-of-00002.safetensors";
  const std::string bytes = read_bytes(shard);
  write_bytes(shard, bytes.substr(0, bytes.size() - 100));
  std::string m = dir_error(d);
  EXPECT_TRUE(Contains(m, shard.string()));
  EXPECT_TRUE(Contains(m, "past the data section"));
}

TEST_F(ShardedBadInput, DirectoryWithNeitherFile) {
  fs::create_directory(dir_ / "empty_model");
  write_bytes(dir_ / "empty_model" / "config.json", "{}");
  std::string m = dir_error(dir_ / "empty_model");
  EXPECT_TRUE(Contains(m, (dir_ / "empty_model").string()));
  EXPECT_TRUE(Contains(m, "no model.safetensors or model.safetensors.index.json"));
}

TEST_F(ShardedBadInput, ModelDirIsARegularFile) {
  write_bytes(dir_ / "file_not_dir", "hello");
  std::string m = dir_error(dir_ / "file_not_dir");
  EXPECT_TRUE(Contains(m, (dir_ / "file_not_dir").string()));
  EXPECT_TRUE(Contains(m, "not a directory"));
}

TEST_F(ShardedBadInput, ModelDirDoesNotExist) {
  std::string m = dir_error(dir_ / "no_such_dir");
  EXPECT_TRUE(Contains(m, (dir_ / "no_such_dir").string()));
  EXPECT_TRUE(Contains(m, "does not exist"));
}

TEST_F(ShardedBadInput, SingleFileThatIsADirectory) {
  fs::create_directories(dir_ / "m" / "model.safetensors");
  std::string m = dir_error(dir_ / "m");
  EXPECT_TRUE(Contains(m, (dir_ / "m" / "model.safetensors").string()));
  EXPECT_TRUE(Contains(m, "directory"));
}

}  // namespace
