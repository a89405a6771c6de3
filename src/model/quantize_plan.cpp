#include "model/quantize_plan.hpp"

#include "common/quant.hpp"  // quant_type_from_name
#include "retnet/error.hpp"

namespace retnet {

std::set<std::string> parse_quant_keep(const std::string& list, const std::string& flag) {
  std::set<std::string> keep;
  size_t b = 0;
  while (b <= list.size()) {
    size_t e = list.find(',', b);
    if (e == std::string::npos) e = list.size();
    const std::string r = list.substr(b, e - b);
    b = e + 1;
    if (r.empty() || r == "none") continue;
    if (r == "attn") {
      keep.insert({"q", "k", "v", "g", "o"});
      continue;
    }
    bool known = false;
    for (const char* k : kQuantRoles) known = known || r == k;
    if (!known) throw Error(flag + ": '" + r + "' is not one of embed, head, attn, q, k, v, g, o, ffn, none");
    keep.insert(r);
  }
  return keep;
}

std::optional<DType> parse_head_type(const std::string& head, DType type, const std::string& flag) {
  if (head == "keep") return std::nullopt;
  if (head == "same") return type;
  if (const std::optional<DType> t = quant_type_from_name(head)) return t;
  throw Error(flag + ": '" + head + "' is not one of " + quant_type_names() + ", same, keep");
}

uint64_t QuantPlan::quantized_bytes() const {
  uint64_t n = 0;
  for (const auto& [t, type] : quantize) n += uint64_t(t->shape[0]) * dtype_row_bytes(type, t->shape[1]);
  return n;
}

QuantPlan plan_quantization(const ModelDesc& m, const std::vector<const TensorInfo*>& used, DType type,
                            const std::set<std::string>& keep, std::optional<DType> head) {
  // Each weight slot with its role.
  std::vector<std::pair<const WeightRef*, const char*>> slots = {{&m.weights.embed, "embed"},
                                                                 {&m.weights.lm_head, "head"}};
  for (const LayerWeights& l : m.weights.layers)
    for (auto [w, role] : {std::pair{&l.q, "q"},
                           {&l.k, "k"},
                           {&l.v, "v"},
                           {&l.g, "g"},
                           {&l.o, "o"},
                           {&l.ffn_act, "ffn"},
                           {&l.ffn_lin, "ffn"},
                           {&l.ffn_down, "ffn"}})
      slots.push_back({w, role});
  QuantPlan plan;
  plan.type = type;
  for (const TensorInfo* t : used) {
    if (t->shape.size() != 2 || !t->data) continue;
    std::set<std::string> roles;
    for (const auto& [w, role] : slots) {
      const auto* p = static_cast<const uint8_t*>(w->data);
      if (p && p >= t->data && p < t->data + t->nbytes) roles.insert(role);
    }
    if (roles.empty()) continue;  // not a matrix slot (e.g. stored rotation buffers)
    DType to = type;
    if (roles.count("head")) {  // the head's own rule, tied to the embedding or not
      if (!head || keep.count("head")) continue;
      to = *head;
    } else {
      bool kept = false;
      for (const std::string& r : roles) kept = kept || keep.count(r);
      if (kept) continue;
    }
    if (dtype_is_block(t->dtype)) {  // already quantized: used as it is (quantizing again compounds errors)
      if (t->dtype != to)
        plan.notes.push_back("'" + t->name + "' stays " + dtype_name(t->dtype) +
                             ": it is already quantized (quantize the original model for " + dtype_name(to) + ")");
      continue;
    }
    const int64_t block = dtype_traits(to).block_elems;
    if (t->shape[1] % block != 0) {
      plan.notes.push_back("'" + t->name + "' " + t->shape_str() + " stays " + dtype_name(t->dtype) + ": its width " +
                           std::to_string(t->shape[1]) + " is not a multiple of the " + dtype_name(to) + " block (" +
                           std::to_string(block) + ")");
      continue;
    }
    plan.quantize[t] = to;
  }
  return plan;
}

std::optional<DType> stored_block_type(const TensorStore& store) {
  for (const auto& [name, t] : store.all())
    if (dtype_is_block(t->dtype)) return t->dtype;
  return std::nullopt;
}

}  // namespace retnet
