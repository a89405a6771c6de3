// Which weights a quantization turns into a block type: the one rule shared by `retnet quantize`
// (quantize_model.cpp, which writes them) and LoadOptions::quantize (the binder, which quantizes them
// in memory), so that both give the same bytes.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

#include <optional>

#include "model/model_desc.hpp"

namespace retnet {

// The roles a matrix plays; --keep names them. "attn" stands for q, k, v, g and o together.
inline constexpr const char* kQuantRoles[] = {"embed", "head", "q", "k", "v", "g", "o", "ffn"};
// What stays at the source precision when the caller does not say (docs/library.md, "Quantized
// models", gives the perplexities that chose it).
inline constexpr const char* kDefaultQuantKeep = "embed,head";

// "embed,head" -> {"embed", "head"}; "" or "none" -> {}; "attn" adds q, k, v, g, o. Throws Error
// naming `flag` for an unknown role.
std::set<std::string> parse_quant_keep(const std::string& list, const std::string& flag);

struct QuantPlan {
  DType type = DType::Q8_0;
  std::map<const TensorInfo*, DType> quantize;  // tensor -> its block type
  std::vector<std::string> notes;               // matrices left as they are, and why
  // Bytes the quantized copies take (what a load that quantizes in memory adds to its plan).
  uint64_t quantized_bytes() const;
};

// The plan for m after a dry binding (its weight slots are views into m.store's mapping): every
// tensor bound as a matrix whose roles are all outside `keep` is quantized to `type`, unless it is
// already a block type (a note says so when it is another one) or its width is not a multiple of the
// block (a note says so).
QuantPlan plan_quantization(const ModelDesc& m, const std::vector<const TensorInfo*>& used, DType type,
                            const std::set<std::string>& keep);

// The first block type among the tensors of a store, or nullopt (a plain checkpoint).
std::optional<DType> stored_block_type(const TensorStore& store);

}  // namespace retnet
