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

uint64_t MemoryPlan::total() const {
  return sat_add(sat_add(sat_add(mapped, owned), sat_add(vectors, session)), scratch);
}

std::string MemoryPlan::describe() const {
  return "checkpoint used in place " + format_bytes(mapped) + ", converted or generated copies " + format_bytes(owned) +
         ", norm vectors " + format_bytes(vectors) + ", one session " + format_bytes(session) + ", scratch " +
         format_bytes(scratch);
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
