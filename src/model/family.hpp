// A model family: how one lineage of RetNet checkpoints names its config keys and its tensors, and
// which conventions its retention follows. Each family is one file, family_<name>.cpp, that defines
// one ModelFamily; family.cpp lists them in one table. Everything that does not depend on the family
// (model_type, BOS/EOS ids, validation of the rotation buffers, derived constants, the load itself)
// is shared code. A new family: one new file, one line in the table, one Family enumerator (its id).
#pragma once
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/config.hpp"
#include "model/config_keys.hpp"

namespace retnet {

class WeightBinder;  // model/weight_binder.hpp
struct ModelDesc;    // model/model_desc.hpp

struct ModelFamily {
  Family id;         // also hashed into the model fingerprint: never renumber
  const char* name;  // RandomModelSpec::family ("torchscale", "fla")
  // What detect() looks for, for the message when no family matches: "'decoder_embed_dim' (torchscale/syncdoth)".
  const char* detect_hint;
  // Whether config.json is of this family. Families are asked in table order; the first one wins.
  bool (*detect)(const ConfigKeys& c);
  // The family's keys into a config of family `id` (the shared code then applies the conventions
  // below, and reads the BOS/EOS ids); Error naming the key on anything missing or unsupported.
  ModelConfig (*parse)(const ConfigKeys& c);
  // Binds the checkpoint's tensors to m.weights' slots through b (m.cfg parsed by parse()); may
  // adjust m.cfg from what the checkpoint holds (stored rotation buffers, an old tensor layout), the
  // same way each time it runs (a dry binding runs first, model.cpp).
  void (*bind)(ModelDesc& m, WeightBinder& b);
  // The family's defaults for a random-weight model (Model::random), c's shape already set.
  void (*random_defaults)(ModelConfig& c);

  // Retention as the family computes it, for every config of it, parsed or random (apply_conventions).
  Pairing pairing;
  bool torchscale_norm;                        // ρ normalisation (docs/reference.md §4); fla: ρ = 1
  bool scale_on_q;                             // dk^-0.5 on q (fla) rather than on k (torchscale)
  std::vector<float> (*theta)(int64_t dk);     // rotation frequencies [dk/2], fp32 as the reference
  std::vector<double> (*theta64)(int64_t dk);  // the same in float64 (AngleMode::Exact)
};

// Sets c's retention conventions (pairing, normalisation, scale, frequencies) to f's; c.head_dk set.
void apply_conventions(const ModelFamily& f, ModelConfig& c);

extern const ModelFamily kTorchscaleFamily;  // family_torchscale.cpp
extern const ModelFamily kFlaFamily;         // family_fla.cpp

// Every family, in detection order.
std::span<const ModelFamily* const> model_families();
const ModelFamily& family_of(Family id);
// The family named `name` (ModelFamily::name), or null.
const ModelFamily* find_family(std::string_view name);
// "torchscale or fla": the names, for messages.
std::string family_names();

}  // namespace retnet
