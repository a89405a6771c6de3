// WeightBinder: what a family's binding (family_*.cpp) uses to bind a checkpoint's tensors to the
// model's weight slots: every name looked up, every shape checked, every tensor counted once.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "model/memory_plan.hpp"
#include "model/model_desc.hpp"

namespace retnet {

class WeightBinder {
 public:
  WeightBinder(ModelDesc& m, std::string dir) : m_(m), dir_(std::move(dir)) {}

  const TensorInfo* find(const std::string& name) const { return m_.store.find(name); }

  // The tensor `name` of exactly this shape (Error naming it otherwise), counted in the model's size.
  const TensorInfo& need(const std::string& name, const std::vector<int64_t>& shape);

  WeightRef matrix(const std::string& name, int64_t rows, int64_t cols) {
    return view(need(name, {rows, cols}), rows, cols);
  }
  // Rows [r0, r0 + rows) of a [total_rows, cols] tensor (old fla fused gate|up projection).
  WeightRef matrix_rows(const std::string& name, int64_t total_rows, int64_t cols, int64_t r0, int64_t rows);
  // A norm vector [n] widened to an fp32 host buffer owned by the model (null in a dry binding);
  // placement copies it into an fp32 backend buffer.
  const float* vector(const std::string& name, int64_t n);

  void refuse_if_present(const std::string& name, const std::string& why) const {
    if (find(name)) throw Error(dir_ + ": tensor '" + name + "' is present: " + why);
  }

  void warn_unused() const;
  void ignore(const std::string& name) { ignored_.insert(name); }
  const std::string& dir() const { return dir_; }
  // Every tensor bound so far, once each, in binding order.
  const std::vector<const TensorInfo*>& used_tensors() const { return used_tensors_; }

 private:
  // A host view of the tensor (converted or realigned into an owned buffer when needed); the backend
  // copies are made when the model is placed (runtime/model_placement.cpp).
  WeightRef view(const TensorInfo& t, int64_t rows, int64_t cols);

  ModelDesc& m_;
  std::string dir_;
  std::set<std::string> used_, ignored_;
  std::vector<const TensorInfo*> used_tensors_;
  std::set<const TensorInfo*> mapped_seen_;
  std::map<const TensorInfo*, WeightRef> quantized_;  // a tensor bound twice (fused rows) is quantized once

 public:
  std::optional<DType> convert_to_;  // element-typed matrices only (block types stay as they are)
  // LoadOptions::quantize: these tensors are quantized to their block type into owned buffers
  // (quantize_plan.hpp says which, from a dry binding; a dry binding itself ignores it).
  std::map<const TensorInfo*, DType> quantize_;
  // Dry binding: names and shapes are checked and plan_ adds up what the real binding will allocate
  // (conversions, realigned copies) and use in place (plan_: mapped and owned) and the length of each
  // norm vector (vectors_), but nothing is allocated, converted or hashed; the weight slots get
  // views into the mapping (or null vectors).
  bool dry_ = false;
  MemoryPlan plan_;
  std::vector<ModelNeeds::Vectors> vectors_;
};

}  // namespace retnet
