// The host arrays of one recurrent (decode) step for B rows, laid out in one block so that a device
// backend uploads them with one copy and its captured step reads them at fixed device addresses
// (Backend::step_inputs):
//   ids     int32   [B]      token of row b
//   pos     int64   [B]      its absolute position
//   scale   fp32    [B, H]   1/ρ of the step (retention_step's out_scale)
//   states  float*  [L, B]   the state of row b's session at layer l
#pragma once
#include <cstddef>
#include <cstdint>

namespace retnet {

struct StepInputs {
  int32_t* ids;
  int64_t* pos;
  float* scale;
  float** states;

  static size_t bytes(int64_t B, int64_t H, int64_t L) { return offsets(B, H, L).end; }
  // `base`: at least bytes(B, H, L) bytes, 16-byte aligned.
  static StepInputs in(void* base, int64_t B, int64_t H, int64_t L) {
    const Offsets o = offsets(B, H, L);
    auto* p = static_cast<unsigned char*>(base);
    return {reinterpret_cast<int32_t*>(p + o.ids), reinterpret_cast<int64_t*>(p + o.pos),
            reinterpret_cast<float*>(p + o.scale), reinterpret_cast<float**>(p + o.states)};
  }

 private:
  struct Offsets {
    size_t ids, pos, scale, states, end;
  };
  static size_t up(size_t x) { return (x + 15) / 16 * 16; }
  static Offsets offsets(int64_t B, int64_t H, int64_t L) {
    Offsets o{};
    o.ids = 0;
    o.pos = up(size_t(B) * sizeof(int32_t));
    o.scale = up(o.pos + size_t(B) * sizeof(int64_t));
    o.states = up(o.scale + size_t(B * H) * sizeof(float));
    o.end = up(o.states + size_t(L * B) * sizeof(float*));
    return o;
  }
};

}  // namespace retnet
