// What a model will hold in host memory once loaded, with one session running, computed before
// anything large is allocated; and the check of that against what the machine has. A model too big
// for the machine then fails with a message saying how much it needs, instead of being killed by
// the OOM killer halfway through (or, for a checkpoint whose header declares terabytes in a sparse
// file, paging in terabytes).
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "model/config.hpp"

namespace retnet {

// Sizes in bytes; sums saturate at UINT64_MAX, so absurd shapes cannot wrap around to small values.
struct MemoryPlan {
  uint64_t mapped = 0;   // checkpoint bytes used in place: the CPU backend pages them in and keeps them
  uint64_t owned = 0;    // matrices copied at load: dtype conversions, realigned tensors, random weights
  uint64_t vectors = 0;  // norm vectors as fp32 backend buffers
  uint64_t session = 0;  // one Session: state, the workspace and logits of one prefill block
  uint64_t scratch = 0;  // the CPU backend's per-thread scratch (weight panels widened to fp32, chunk tables)

  uint64_t total() const;
  // "checkpoint used in place 1.00 GiB, converted or generated copies 0 B, ..."
  std::string describe() const;
};

uint64_t sat_add(uint64_t a, uint64_t b);
uint64_t sat_mul(uint64_t a, uint64_t b);

// Bytes one CPU backend allocation of n floats takes (CpuBackend::alloc pads and over-allocates).
uint64_t cpu_alloc_bytes(uint64_t n_floats);
// One Session of a model of this shape, after a prefill with all_logits (the largest a session grows
// to outside parallel mode): its state, its workspace for one prefill block of kPrefillBlockTokens
// rows (common/limits.hpp), the backend logits of that block and the host copy of them.
uint64_t session_bytes(const ModelConfig& c);
// The CPU backend's per-thread scratch after a chunkwise prefill with the default chunk size.
uint64_t cpu_scratch_bytes(const ModelConfig& c, int threads);

struct AvailableMemory {
  uint64_t bytes = 0;
  std::string source;  // "MemAvailable in /proc/meminfo" or "the cgroup's memory.max"
};
// What the system reports as available to this process without swapping: MemAvailable, lowered to
// the cgroup v2 limit's headroom when there is one. nullopt when neither can be read (not Linux).
std::optional<AvailableMemory> available_host_memory();

// Throws Error "<what>: needs <total> = <n> bytes of memory (<describe()>), but only <available> = <m> bytes is
// available (<source>)"
// when the plan does not fit. `available` replaces the system's figure when given (tests).
void check_memory_plan(const MemoryPlan& plan, const std::string& what, const std::optional<uint64_t>& available);

std::string format_bytes(uint64_t bytes);  // "512 B", "1.50 KiB", "3.25 GiB", "4.00 TiB", ...

}  // namespace retnet
