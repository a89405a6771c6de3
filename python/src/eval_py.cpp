// retnet._retnet: evaluation in one call. logits(): every position's logits of a sequence (the
// `retnet logits` computation); perplexity(): the `retnet perplexity` protocol, block for block.
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <algorithm>
#include <cmath>

#include "binding.hpp"

namespace retnet::py {

namespace {

// float32 [T, V]: prefill ids[:prefill] in `mode` with all logits, then decode the rest one by one
// (as `retnet logits --prefill K`). With everything prefilled (the default) the array is the
// session's own logits buffer, handed over without a copy: the session exists only for this call, so
// the array owns it (the capsule deletes it with the array) and nothing else ever writes to it.
nb::object logits(const PyModel& pm, IdArray ids_arr, const std::string& mode, int64_t chunk_size, int64_t prefill) {
  const auto ids = ids_of(ids_arr);
  const int64_t T = int64_t(ids.size());
  if (prefill < 0 || prefill > T)
    throw Error("prefill: " + std::to_string(prefill) + " is not in [0, " + std::to_string(T) + "]");
  if (T == 0) throw Error("logits: no token ids");
  const size_t V = size_t(pm.model->info().vocab_size);
  auto session = std::make_unique<Session>(pm.model);
  PrefillOptions po;
  po.mode = parse_mode(mode);
  po.chunk_size = chunk_size;
  po.all_logits = true;
  InterruptCheck ctrl_c;
  po.on_progress = [&](int64_t, int64_t) { return !ctrl_c.interrupted(); };
  std::span<const float> lg;
  std::unique_ptr<float[]> assembled;
  {
    nb::gil_scoped_release release;
    if (prefill > 0) lg = session->prefill(ids.first(size_t(prefill)), po);
    if (prefill < T && !ctrl_c.interrupted()) {
      assembled.reset(new float[size_t(T) * V]);
      std::copy(lg.begin(), lg.end(), assembled.get());
      for (int64_t t = prefill; t < T; ++t) {
        auto row = session->decode(ids[size_t(t)]);
        std::copy(row.begin(), row.end(), assembled.get() + size_t(t) * V);
        if (ctrl_c.interrupted()) break;
      }
    }
  }
  ctrl_c.rethrow();
  if (assembled) {
    float* p = assembled.release();
    nb::capsule owner(p, [](void* q) noexcept { delete[] static_cast<float*>(q); });
    return nb::cast(nb::ndarray<nb::numpy, float>(p, {size_t(T), V}, owner));
  }
  float* p = const_cast<float*>(lg.data());  // the session's buffer, which only this array uses now
  nb::capsule owner(session.release(), [](void* s) noexcept { delete static_cast<Session*>(s); });
  return nb::cast(nb::ndarray<nb::numpy, float>(p, {size_t(T), V}, owner));
}

// -log p(target) from one row of logits, in double (log-sum-exp): the CLI's formula.
double nll(std::span<const float> row, int32_t target) {
  double mx = -INFINITY;
  for (float v : row) mx = std::max(mx, double(v));
  double sum = 0;
  for (float v : row) sum += std::exp(double(v) - mx);
  return -(double(row[size_t(target)]) - mx - std::log(sum));
}

// The NLL of ids[begin+1, end) given their prefixes, fed in blocks of a whole number of chunks (as the
// CLI does, so the logits equal one chunkwise pass over the range).
// Returns their sum, added up in order (the CLI's rounding).
double score(Session& s, std::span<const int32_t> ids, size_t begin, size_t end, int64_t chunk, size_t V,
             std::vector<double>& out, InterruptCheck& ctrl_c) {
  double total = 0;
  const int64_t block = std::max<int64_t>(1, 1024 / chunk) * chunk;
  PrefillOptions po;
  po.mode = Mode::Chunkwise;
  po.chunk_size = chunk;
  po.all_logits = true;
  for (size_t b = begin; b < end; b += size_t(block)) {
    const size_t e = std::min(end, b + size_t(block));
    auto lg = s.prefill(ids.subspan(b, e - b), po);
    for (size_t t = b; t < e; ++t) {
      if (t + 1 >= end) break;
      out.push_back(nll(lg.subspan((t - b) * V, V), ids[t + 1]));
      total += out.back();
    }
    if (ctrl_c.interrupted()) break;
  }
  return total;
}

// (per-token NLLs in scoring order, their sum: per window, then the windows' sums, as the CLI adds them).
std::pair<std::vector<double>, double> perplexity(const PyModel& pm, IdArray ids_arr, int64_t ctx, int64_t chunk_size) {
  const auto ids = ids_of(ids_arr);
  if (ctx != 0 && ctx < 2) throw Error("ctx: must be at least 2 tokens, got " + std::to_string(ctx));
  if (chunk_size < 0) throw Error("chunk_size: must be a positive integer, got " + std::to_string(chunk_size));
  if (ids.size() < 2) throw Error("perplexity: needs at least 2 tokens to score, has " + std::to_string(ids.size()));
  const ModelInfo& info = pm.model->info();
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= info.vocab_size)
      throw Error("perplexity: token id " + std::to_string(ids[i]) + " at index " + std::to_string(i) +
                  " is outside the vocabulary [0, " + std::to_string(info.vocab_size) + ")");
  const int64_t chunk = chunk_size > 0 ? chunk_size : info.default_chunk_size;
  std::vector<double> out;
  out.reserve(ids.size());
  double total = 0;
  InterruptCheck ctrl_c;
  {
    nb::gil_scoped_release release;
    Session s(pm.model);
    if (ctx == 0) {
      total = score(s, ids, 0, ids.size(), chunk, size_t(info.vocab_size), out, ctrl_c);
    } else {
      for (size_t w = 0; w + 1 < ids.size() && !ctrl_c.interrupted(); w += size_t(ctx)) {
        s.reset();
        total += score(s, ids, w, std::min(ids.size(), w + size_t(ctx)), chunk, size_t(info.vocab_size), out, ctrl_c);
      }
    }
  }
  ctrl_c.rethrow();
  return {std::move(out), total};
}

}  // namespace

void bind_eval(nb::module_& m) {
  m.def("logits", &logits, nb::arg("model"), nb::arg("ids"), nb::arg("mode"), nb::arg("chunk_size"),
        nb::arg("prefill"));
  m.def("perplexity", &perplexity, nb::arg("model"), nb::arg("ids"), nb::arg("ctx"), nb::arg("chunk_size"));
}

}  // namespace retnet::py
