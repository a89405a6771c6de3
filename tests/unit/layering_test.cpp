// The layers include only the layers below them (docs/architecture.md, issue #16): src/common nothing of
// the project's other layers; src/model — a checkpoint read into a backend-neutral description —
// nothing from the runtime or the backends (placing weights on a device is src/runtime's part). A
// violation fails naming the file, the line and the include.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace retnet::test {
namespace {

namespace fs = std::filesystem;

// "<file>:<line>: <include line>" for every #include under `dir` (recursively) naming a header under
// one of `banned` ("backend/", ...), quoted or in angle brackets. `files` counts the files read.
std::vector<std::string> banned_includes(const fs::path& dir, const std::vector<std::string>& banned, int& files) {
  std::vector<std::string> found;
  files = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path());
    ++files;
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      size_t i = line.find_first_not_of(" \t");
      if (i == std::string::npos || line[i] != '#') continue;
      i = line.find_first_not_of(" \t", i + 1);
      if (i == std::string::npos || line.compare(i, 7, "include") != 0) continue;
      i = line.find_first_of("\"<", i + 7);
      if (i == std::string::npos) continue;
      const std::string header = line.substr(i + 1, line.find_first_of("\">", i + 1) - i - 1);
      for (const std::string& b : banned)
        if (header.rfind(b, 0) == 0)
          found.push_back(fs::relative(e.path(), dir).string() + ":" + std::to_string(n) + ": " + line);
    }
  }
  return found;
}

const fs::path kSrc = fs::path(RETNET_TEST_DATA) / ".." / ".." / "src";

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += "\n  " + x;
  return s;
}

TEST(Layering, ModelIncludesNothingFromTheRuntimeOrTheBackends) {
  int files = 0;
  const auto found = banned_includes(kSrc / "model", {"backend/", "runtime/"}, files);
  EXPECT_GE(files, 10) << "src/model not found at " << kSrc;
  EXPECT_TRUE(found.empty()) << "src/model includes from a layer above it:" << joined(found);
}

TEST(Layering, CommonIncludesNoOtherLayer) {
  int files = 0;
  const auto found =
      banned_includes(kSrc / "common", {"model/", "backend/", "runtime/", "tokenizer/", "sampler/", "capi/"}, files);
  EXPECT_GE(files, 10) << "src/common not found at " << kSrc;
  EXPECT_TRUE(found.empty()) << "src/common includes from a layer above it:" << joined(found);
}

class LayeringScan : public TempDirTest {};

// The scan itself finds what it must (else the tests above would pass on anything).
TEST_F(LayeringScan, NamesTheFileAndLineOfAnOffendingInclude) {
  fs::create_directories(dir_ / "sub");
  std::ofstream(dir_ / "a.cpp")
      << "// backend/ in a comment is fine\n#include <vector>\n#include \"model/config.hpp\"\n";
  std::ofstream(dir_ / "sub" / "b.hpp") << "#pragma once\n\n  #  include <runtime/session_impl.hpp>\n"
                                           "#include \"backend/backend.hpp\"  // WeightRef\n";
  int files = 0;
  auto found = banned_includes(dir_, {"backend/", "runtime/"}, files);
  std::sort(found.begin(), found.end());
  EXPECT_EQ(files, 2);
  ASSERT_EQ(found.size(), 2u) << joined(found);
  EXPECT_EQ(found[0], "sub/b.hpp:3:   #  include <runtime/session_impl.hpp>");
  EXPECT_EQ(found[1], "sub/b.hpp:4: #include \"backend/backend.hpp\"  // WeightRef");
}

}  // namespace
}  // namespace retnet::test
