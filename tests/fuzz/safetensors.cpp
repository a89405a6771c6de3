// Fuzz target: a whole safetensors file image (length prefix, JSON header, data section) through the
// same validation Model::load relies on (parse_safetensors_bytes). Either it is refused with
// retnet::Error, or every tensor it returns lies inside the data section, no two overlap, sizes
// match shape × dtype, and every element can be read (ASan checks each read against the buffer,
// which libFuzzer allocates at exactly `size` bytes).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_check.hpp"
#include "model/safetensors.hpp"
#include "retnet/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::map<std::string, retnet::TensorInfo> tensors;
  try {
    tensors = retnet::parse_safetensors_bytes("fuzz.safetensors", data, size);
  } catch (const retnet::Error&) {
    return 0;
  }
  FUZZ_CHECK(size >= 8, "accepted a %zu-byte file", size);
  uint64_t header = 0;
  for (int i = 7; i >= 0; --i) header = header << 8 | data[i];
  FUZZ_CHECK(header <= size - 8, "header length %llu past the end", (unsigned long long)header);
  const uint8_t* base = data + 8 + header;
  const uint8_t* end = data + size;
  std::vector<std::pair<const uint8_t*, const uint8_t*>> spans;
  volatile float sink = 0;
  for (const auto& [name, t] : tensors) {
    FUZZ_CHECK(t.name == name, "tensor '%s' stored under '%s'", t.name.c_str(), name.c_str());
    FUZZ_CHECK(t.data != nullptr, "tensor '%s' has no data pointer", name.c_str());
    FUZZ_CHECK(t.data >= base && t.data <= end && t.nbytes <= size_t(end - t.data),
               "tensor '%s' lies outside the data section", name.c_str());
    int64_t numel = 1;
    for (int64_t d : t.shape) {
      FUZZ_CHECK(d >= 0, "tensor '%s' has a negative dimension", name.c_str());
      numel *= d;
    }
    FUZZ_CHECK(retnet::dtype_traits(t.dtype).bytes(uint64_t(numel)) == t.nbytes,
               "tensor '%s': %zu bytes for %lld elements", name.c_str(), t.nbytes, (long long)numel);
    float acc = 0;
    for (int64_t i = 0; i < numel; ++i) acc += retnet::load_as_f32(t.data, t.dtype, size_t(i));
    sink = sink + acc;
    if (t.nbytes) spans.emplace_back(t.data, t.data + t.nbytes);
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i)
    FUZZ_CHECK(spans[i].first >= spans[i - 1].second, "two accepted tensors overlap");
  return 0;
}
