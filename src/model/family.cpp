#include "model/family.hpp"

#include "retnet/error.hpp"

namespace retnet {

namespace {
// Detection order: torchscale first (its configs may also carry hidden_size).
const ModelFamily* const kFamilies[] = {&kTorchscaleFamily, &kFlaFamily};
}  // namespace

std::span<const ModelFamily* const> model_families() { return kFamilies; }

const ModelFamily& family_of(Family id) {
  for (const ModelFamily* f : kFamilies)
    if (f->id == id) return *f;
  throw Error("model family " + std::to_string(int(id)) + " is not registered");
}

const ModelFamily* find_family(std::string_view name) {
  for (const ModelFamily* f : kFamilies)
    if (name == f->name) return f;
  return nullptr;
}

void apply_conventions(const ModelFamily& f, ModelConfig& c) {
  c.pairing = f.pairing;
  c.torchscale_norm = f.torchscale_norm;
  c.scale_on_q = f.scale_on_q;
  c.theta = f.theta(c.head_dk);
  c.theta64 = f.theta64(c.head_dk);
}

std::string family_names() {
  std::string s;
  const size_t n = std::size(kFamilies);
  for (size_t i = 0; i < n; ++i) s += (i == 0 ? "" : i + 1 == n ? " or " : ", ") + std::string(kFamilies[i]->name);
  return s;
}

}  // namespace retnet
