// check_host_memory (retnet/system.hpp): the model loader's memory check for any other large request.
#include "model/memory_plan.hpp"
#include "retnet/error.hpp"
#include "retnet/system.hpp"

namespace retnet {

void check_host_memory(uint64_t bytes, const std::string& what) {
  const std::optional<AvailableMemory> avail = available_host_memory();
  if (!avail || bytes <= avail->bytes) return;  // nothing to compare with: the allocation itself will report
  const bool saturated = bytes == UINT64_MAX;   // a sum that saturated (sat_add/sat_mul): its bytes mean nothing
  throw Error(what + ": needs " + format_bytes(bytes) + (saturated ? "" : " = " + std::to_string(bytes) + " bytes") +
              " of memory, but only " + format_bytes(avail->bytes) + " = " + std::to_string(avail->bytes) +
              " bytes is available (" + avail->source + ")");
}

}  // namespace retnet
