#include "common/dtype.hpp"

#include <string>

#include "retnet/error.hpp"

namespace retnet {

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t absu = u & 0x7fffffffu;
  if (absu >= 0x7f800000u) return uint16_t(sign | 0x7c00u | (absu > 0x7f800000u ? 0x200u : 0u));
  if (absu >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to >= 65520: inf
  if (absu < 0x38800000u) {                                   // below the smallest normal half
    if (absu < 0x33000000u) return uint16_t(sign);            // below half of the smallest subnormal
    uint32_t e = absu >> 23;
    uint32_t man = (absu & 0x7fffffu) | 0x800000u;
    // value = man * 2^(e-150); a half subnormal is m * 2^-24, so m = man >> (126 - e).
    uint32_t shift = 126 - e;
    uint32_t r = man >> shift;
    uint32_t rem = man & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (r & 1u))) ++r;
    return uint16_t(sign | r);
  }
  uint32_t e = (absu >> 23) - 127 + 15;
  uint32_t man = absu & 0x7fffffu;
  uint32_t r = (e << 10) | (man >> 13);
  uint32_t rem = man & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;
  return uint16_t(sign | r);
}

void throw_bad_dtype(DType t, const char* where) {
  throw Error(std::string(where) + ": weight type code " + std::to_string(int(t)) + " is not a known type");
}

void throw_block_store(DType t) {
  throw Error(std::string("store_from_f32: ") + dtype_name(t) +
              " is a block type: its rows are quantized whole (quantize_row), not element by element");
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const DTypeTraits& t : kDTypeTraits)
    if (!dtype_is_block(t.type) && name == t.name) return t.type;
  return std::nullopt;
}

std::string dtype_name_list() {
  std::string s;
  for (const DTypeTraits& t : kDTypeTraits)
    if (!dtype_is_block(t.type)) s += (s.empty() ? "" : ", ") + std::string(t.name);
  return s;
}

}  // namespace retnet
