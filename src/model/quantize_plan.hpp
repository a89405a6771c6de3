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
// The default policy (README.md, "Quantized weights", gives the perplexities and speeds that chose
// it): the embedding stays at the source precision (decode reads one of its rows per token, so
// quantizing it saves no time and costs quality), the LM head becomes q8_0 whatever the type (it is
// read whole every token: at the 125m shape, bf16, it was a third of a q4 step's bytes, while q8_0
// costs no measurable perplexity; llama.cpp's defaults keep it at 6 to 8 bits too).
inline constexpr const char* kDefaultQuantKeep = "embed";
inline constexpr const char* kDefaultHeadType = "q8_0";

// What the LM head becomes when the projections are quantized to `type`: "q8_0", "q4_0", "q4_k"
// that type, "same" `type`, "keep" nullopt (its stored precision). Throws Error naming `flag`.
std::optional<DType> parse_head_type(const std::string& head, DType type, const std::string& flag);

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

// The plan for m after a dry binding (its weight slots are views into m.store's mapping): the tensor
// bound as the LM head is quantized to `head` (nullopt, or "head" in `keep`: kept; a head tied to the
// embedding is the head: it is read whole every token); every other tensor bound as a matrix whose
// roles are all outside `keep` is quantized to `type`. Either way a tensor stays as it is when it is
// already a block type (a note says so when it is another one) or its width is not a multiple of the
// block (a note says so).
QuantPlan plan_quantization(const ModelDesc& m, const std::vector<const TensorInfo*>& used, DType type,
                            const std::set<std::string>& keep, std::optional<DType> head);

// The first block type among the tensors of a store, or nullopt (a plain checkpoint).
std::optional<DType> stored_block_type(const TensorStore& store);

}  // namespace retnet
