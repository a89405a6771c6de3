// Rotation angle of pair p at absolute position n: the single definition shared by every backend,
// so "fp32 angle arithmetic exactly as the CPU path" holds by construction (docs/reference.md §2.3).
#pragma once
#include <cmath>
#include <cstdint>

namespace retnet {

// Reference: float32(n)·float32(θ) rounded to fp32, then accurate sin/cos (never fast-math
// approximations): what torchscale, syncdoth and fla compute. Positions past 2^24 lose integer
// precision in fp32 exactly as they do in the references.
inline void rotary_sincos_reference(int64_t n, float theta, float* s, float* c) {
  const float ang = float(n) * theta;
  *s = std::sin(ang);
  *c = std::cos(ang);
}

// Exact: n·θ and sin/cos in float64, rounded once to fp32. Agrees with the reference at short
// positions and stays within an ulp of the true rotation at long ones (tests/unit/rotary_test.cpp).
inline void rotary_sincos_exact(int64_t n, double theta, float* s, float* c) {
  const double ang = double(n) * theta;
  *s = float(std::sin(ang));
  *c = float(std::cos(ang));
}

}  // namespace retnet
