// Makes a bound model's weight matrices resident on its backend, with load progress (model_impl.hpp).
#include <algorithm>

#include "model/model_impl.hpp"
#include "retnet/error.hpp"

namespace retnet {

void upload_weights(Model::Impl& m, const std::function<bool(uint64_t, uint64_t)>& on_progress,
                    const std::string& what) {
  // Every slot that holds a matrix; slots with the same host view (a tied head) share one copy.
  std::vector<WeightRef*> slots = {&m.embed, &m.lm_head};
  for (LayerWeights& l : m.layers)
    for (WeightRef* w : {&l.q, &l.k, &l.v, &l.g, &l.o, &l.ffn_act, &l.ffn_lin, &l.ffn_down}) slots.push_back(w);
  struct Item {
    WeightRef host;
    std::vector<WeightRef*> slots;
  };
  std::vector<Item> items;
  uint64_t total = 0;
  for (WeightRef* w : slots) {
    if (!w->data) continue;  // absent (fla without output gate)
    auto same = [&](const Item& it) {
      return it.host.data == w->data && it.host.dtype == w->dtype && it.host.rows == w->rows && it.host.cols == w->cols;
    };
    if (auto it = std::find_if(items.begin(), items.end(), same); it != items.end()) {
      it->slots.push_back(w);
      continue;
    }
    items.push_back({*w, {w}});
    total += w->bytes();
  }

  uint64_t done = 0, next_report = 0;
  auto report = [&](bool force) {
    if (!on_progress || (!force && done < next_report)) return;
    if (!on_progress(done, total)) throw Error(what + ": load cancelled");
    next_report = done + (uint64_t(64) << 20);
  };
  report(true);
  bool copied = true;  // every upload made a copy of its own (device backends)
  auto on_bytes = [&](uint64_t n) {
    done += n;
    report(false);
  };
  for (Item& it : items) {
    const WeightRef d = m.backend->upload(it.host, on_bytes);
    copied = copied && d.data != it.host.data;
    for (WeightRef* w : it.slots) *w = d;
  }
  m.backend->finish_uploads();
  report(true);
  // Converted or realigned host buffers are only needed by a backend that uses weights in place.
  if (copied) m.owned_bytes.clear();
}

}  // namespace retnet
