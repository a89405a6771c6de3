// What a model will hold in host memory once loaded, with one session running, computed before
// anything large is allocated; and the check of that against what the machine has. The plan only
// adds up: each figure is stated by the layer that allocates it (the binding's copies, the backend's
// padding and scratch — Backend::host_alloc_bytes/host_scratch_bytes —, the runtime's session). A model too big
// for the machine then fails with a message saying how much it needs, instead of being killed by
// the OOM killer halfway through (or, for a checkpoint whose header declares terabytes in a sparse
// file, paging in terabytes).
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "common/saturating.hpp"  // sat_add, sat_mul

namespace retnet {

// Sizes in bytes; sums saturate at UINT64_MAX, so absurd shapes cannot wrap around to small values.
struct MemoryPlan {
  uint64_t mapped = 0;   // checkpoint bytes used in place: the CPU backend pages them in and keeps them
  uint64_t owned = 0;    // matrices copied at load: dtype conversions, realigned tensors, random weights
  uint64_t vectors = 0;  // norm vectors as fp32 backend buffers
  uint64_t session = 0;  // one Session: state, the workspace and logits of one prefill block (runtime)
  uint64_t scratch = 0;  // the backend's scratch (CPU: per-thread widened weight panels, chunk tables)

  uint64_t total() const;
  // "checkpoint used in place 1.00 GiB, converted or generated copies 0 B, ..."
  std::string describe() const;
};

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
