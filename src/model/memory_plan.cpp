#include "model/memory_plan.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>

#include "common/limits.hpp"  // kPrefillBlockTokens: the block a prefill allocates for
#include "retnet/error.hpp"

namespace retnet {

namespace {
constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
// CpuBackend::matmul widens at most this many weight rows to fp32 at a time (kGemmPanelRows in
// cpu_backend.cpp), for prompts of more than a few rows.
constexpr uint64_t kWidenPanelRows = 256;

uint64_t u(int64_t x) { return x > 0 ? uint64_t(x) : 0; }

std::optional<uint64_t> read_meminfo_available() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kb = 0;
  std::string unit;
  while (in >> key >> kb) {
    std::getline(in, unit);
    if (key == "MemAvailable:") return sat_mul(kb, 1024);
  }
  return std::nullopt;
}

// Headroom under the cgroup v2 memory limit of this process, when it has one.
std::optional<uint64_t> read_cgroup_headroom() {
  std::ifstream cg("/proc/self/cgroup");
  std::string line, path;
  while (std::getline(cg, line))
    if (line.rfind("0::", 0) == 0) path = line.substr(3);
  if (path.empty()) return std::nullopt;
  const std::string base = "/sys/fs/cgroup" + (path == "/" ? std::string() : path);
  std::ifstream mx(base + "/memory.max"), cur(base + "/memory.current");
  std::string max_text;
  uint64_t used = 0, limit = 0;
  if (!(mx >> max_text) || max_text == "max" || !(cur >> used)) return std::nullopt;
  std::istringstream(max_text) >> limit;
  if (limit == 0) return std::nullopt;
  return limit > used ? limit - used : 0;
}
}  // namespace

uint64_t sat_add(uint64_t a, uint64_t b) { return a > kMax - b ? kMax : a + b; }
uint64_t sat_mul(uint64_t a, uint64_t b) { return (a != 0 && b > kMax / a) ? kMax : a * b; }

uint64_t MemoryPlan::total() const {
  return sat_add(sat_add(sat_add(mapped, owned), sat_add(vectors, session)), scratch);
}

std::string MemoryPlan::describe() const {
  return "checkpoint used in place " + format_bytes(mapped) + ", converted or generated copies " + format_bytes(owned) +
         ", norm vectors " + format_bytes(vectors) + ", one session " + format_bytes(session) + ", scratch " +
         format_bytes(scratch);
}

uint64_t cpu_alloc_bytes(uint64_t n) {
  // CpuBackend::alloc: the size rounded up to 64 bytes, plus 64.
  const uint64_t bytes = sat_mul(n, 4);
  return bytes > kMax - 128 ? kMax : (bytes + 63) / 64 * 64 + 64;
}

uint64_t session_bytes(const ModelConfig& c) {
  const uint64_t D = u(c.d_model), KD = u(c.key_dim()), VD = u(c.value_dim()), F = u(c.ffn_dim), V = u(c.vocab_size);
  // Rows of one prefill block with the default chunk size, as Session::Impl::prefill picks it.
  const uint64_t C = u(std::max<int64_t>(1, c.default_chunk_size));
  uint64_t rows = std::max<uint64_t>(1, (uint64_t(kPrefillBlockTokens) + C - 1) / C) * C;
  if (C > uint64_t(kPrefillBlockTokens)) rows = C;
  uint64_t b = sat_mul(u(c.n_layers), cpu_alloc_bytes(sat_mul(sat_mul(u(c.n_heads), u(c.head_dk)), u(c.head_dv))));
  b = sat_add(b, sat_mul(u(c.n_heads), 4));  // torchscale scale recursion
  // Session::Impl::ensure_rows: x, hn, y [R, D]; q, k [R, KD]; v, g, o [R, VD]; f1, f2 [R, F].
  for (uint64_t width : {D, D, D, KD, KD, VD, VD, VD, F, F}) b = sat_add(b, cpu_alloc_bytes(sat_mul(rows, width)));
  b = sat_add(b, sat_mul(rows, 8));                                 // positions
  b = sat_add(b, cpu_alloc_bytes(sat_mul(rows, V)));                // backend logits of the block
  b = sat_add(b, sat_mul(sat_mul(rows, V), 4));                     // host logits
  return b;
}

uint64_t cpu_scratch_bytes(const ModelConfig& c, int threads) {
  const uint64_t C = u(std::max<int64_t>(1, c.default_chunk_size)), dv = u(c.head_dv);
  const uint64_t widest = std::max({u(c.d_model), u(c.value_dim()), u(c.ffn_dim)});
  const uint64_t floats = std::max({sat_mul(kWidenPanelRows, widest),                    // widened weight panel
                                    sat_add(sat_add(sat_mul(C, C), sat_mul(C, dv)), C + 1 + dv),  // chunk tables
                                    u(c.head_dk)});                                      // sin/cos
  // Each thread's scratch is a std::vector grown by resize(), whose capacity can reach twice the
  // largest request (libstdc++ doubles when the new size is under twice the old one).
  return sat_mul(sat_mul(u(std::max(threads, 1)), floats), 8);
}

std::optional<AvailableMemory> available_host_memory() {
  std::optional<AvailableMemory> out;
  if (const auto mem = read_meminfo_available()) out = AvailableMemory{*mem, "MemAvailable in /proc/meminfo"};
  if (const auto cg = read_cgroup_headroom(); cg && (!out || *cg < out->bytes))
    out = AvailableMemory{*cg, "headroom under the cgroup's memory.max"};
  return out;
}

void check_memory_plan(const MemoryPlan& plan, const std::string& what, const std::optional<uint64_t>& available) {
  std::optional<AvailableMemory> avail;
  if (available) avail = AvailableMemory{*available, "the limit given to the loader"};
  else avail = available_host_memory();
  if (!avail) return;  // nothing to compare with: the allocations themselves will report
  if (plan.total() <= avail->bytes) return;
  const uint64_t t = plan.total();
  throw Error(what + ": needs " + format_bytes(t) + (t == kMax ? "" : " = " + std::to_string(t) + " bytes") +
              " of memory (" + plan.describe() + "), but only " + format_bytes(avail->bytes) + " = " +
              std::to_string(avail->bytes) + " bytes is available (" + avail->source + ")");
}

std::string format_bytes(uint64_t bytes) {
  if (bytes == kMax) return "more than 16 EiB";
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double v = double(bytes);
  int i = 0;
  while (v >= 1024.0 && i < 6) {
    v /= 1024.0;
    ++i;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f %s", v, units[i]);
  return buf;
}

}  // namespace retnet
