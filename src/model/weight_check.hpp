// LoadOptions::check_weights: a scan of every weight the model uses for NaN and ±Inf, before the
// model is built. One bad element poisons every logit from the first token on, and far from its
// cause; the scan names the tensor, its file and the element instead.
#pragma once
#include <cstddef>
#include <cstdint>

#include "common/dtype.hpp"
#include "model/safetensors.hpp"

namespace retnet {

// Index of the first NaN or ±Inf among the n elements of dtype t at p (any alignment), or -1.
int64_t first_non_finite(const void* p, DType t, size_t n);

// Throws Error "<file>: tensor '<name>' holds NaN at element i of shape [...] (LoadOptions::check_weights)"
// (or +Inf / -Inf) when the tensor has a non-finite element.
void check_tensor_finite(const TensorInfo& t);

}  // namespace retnet
