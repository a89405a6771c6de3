// retnet::Sampler — the penalty / top-k / top-p / min-p / temperature chain and the draw.
//
// Working representation: the surviving candidates as (logit, id) pairs in double. Double
// keeps the temperature stage finite for every float input (|logit| <= 3.4e38 divided by a
// temperature >= 1.4e-45 stays below 1e84) and makes softmax sums over 150k tokens accurate
// enough that the probabilities do not depend on summation order at float precision.
//
// Ordering: candidates compare by logit descending, then id ascending. That is a strict
// total order (no NaN reaches it, ids are unique), so every partial method below selects
// exactly what a full sort would, and ties are resolved deterministically by token id.
//
// Cost on large vocabularies (no full sort of the vocabulary anywhere):
//  * Loading fuses the leading Penalties and TopK stages into one pass over the logits that
//    keeps only tokens above a running k-th-best threshold (buffer of 2k, nth_element when
//    full), so the default chain touches the vocabulary once and then works on k tokens.
//  * Greedy decoding is a single argmax pass when no filter precedes Penalties.
//  * Top-p and the draw look for the token where the cumulative mass crosses a target. On
//    large candidate sets they histogram the weights by logit (bins monotone in the logit,
//    so bin order agrees with the sort order), find the crossing bin, and sort only that bin.
//  * Top-k later in the chain uses nth_element on the unsorted part only.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "retnet/error.hpp"
#include "retnet/sampler.hpp"

namespace retnet {

namespace {

struct Candidate {
  double logit;
  int32_t id;
};

inline bool before(const Candidate& a, const Candidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

constexpr size_t kSmall = 1024;   // at or below this many candidates a plain sort is cheapest
constexpr size_t kBins = 2048;    // histogram resolution of the mass search
constexpr double kMaxKey = 64.0;  // logits further than this below the max share the last bin
                                  // (each weighs < 1.7e-28 of the max: never where a cut falls)

// Scratch for one run of the chain. Sized once; never reallocates afterwards.
struct Work {
  std::vector<Candidate> c;
  std::vector<double> bins;
  // c[0, sorted) is in order and precedes every later element.
  size_t sorted = 0;

  void reserve(size_t vocab) {
    c.reserve(vocab);
    bins.assign(kBins, 0.0);
  }

  // Makes the sorted prefix at least min(m, size) long.
  void extend_sorted(size_t m) {
    const size_t n = c.size();
    if (m > n) m = n;
    if (m <= sorted) return;
    auto first = c.begin() + static_cast<std::ptrdiff_t>(sorted);
    auto mid = c.begin() + static_cast<std::ptrdiff_t>(m);
    if (m < n) std::nth_element(first, mid, c.end(), before);
    std::sort(first, mid, before);
    sorted = m;
  }

  double max_logit() const {
    if (sorted > 0) return c[0].logit;
    double m = -std::numeric_limits<double>::infinity();
    for (const Candidate& x : c) m = std::max(m, x.logit);
    return m;
  }

  // Index i of the candidate at which the cumulative softmax mass, taken in candidate order,
  // first reaches frac * total: acc_i >= target when !strict (top-p: smallest prefix with
  // mass >= p), acc_i > target when strict (inverse-CDF draw with u in [0, 1)).
  // Rearranges c so that c[0, i) are exactly the candidates that precede c[i] in order
  // (in no particular order themselves).
  size_t locate(double frac, bool strict) {
    const size_t n = c.size();
    auto crosses = [strict](double target, double acc) { return strict ? target < acc : target <= acc; };
    if (n <= kSmall) {
      extend_sorted(n);
      const double max = c[0].logit;
      double total = 0.0;  // summed in walk order, so the walk ends exactly at `total`
      for (const Candidate& x : c) total += std::exp(x.logit - max);
      const double target = frac * total;
      double acc = 0.0;
      size_t last_positive = 0;
      for (size_t i = 0; i < n; ++i) {
        const double w = std::exp(c[i].logit - max);
        if (w > 0.0) last_positive = i;
        acc += w;
        if (crosses(target, acc)) return i;
      }
      return last_positive;
    }

    double max = -std::numeric_limits<double>::infinity(), min = std::numeric_limits<double>::infinity();
    for (const Candidate& x : c) {
      max = std::max(max, x.logit);
      min = std::min(min, x.logit);
    }
    const double range = std::min(max - min, kMaxKey);
    const double scale = range > 0.0 ? double(kBins) / range : 0.0;
    auto bin_of = [&](double logit) {
      const double key = (max - logit) * scale;
      return key >= double(kBins - 1) ? kBins - 1 : static_cast<size_t>(key);
    };
    std::fill(bins.begin(), bins.end(), 0.0);
    for (const Candidate& x : c) bins[bin_of(x.logit)] += std::exp(x.logit - max);
    double total = 0.0;
    for (double b : bins) total += b;
    const double target = frac * total;

    size_t cut = kBins;
    double acc = 0.0;
    for (size_t b = 0; b < kBins; ++b) {
      if (bins[b] > 0.0 && crosses(target, acc + bins[b])) {
        cut = b;
        break;
      }
      acc += bins[b];
    }
    if (cut == kBins) {  // rounding: fall back to the last bin with mass
      cut = kBins - 1;
      while (cut > 0 && bins[cut] == 0.0) --cut;
      acc = 0.0;
      for (size_t b = 0; b < cut; ++b) acc += bins[b];
    }
    auto p1 = std::partition(c.begin(), c.end(), [&](const Candidate& x) { return bin_of(x.logit) < cut; });
    auto p2 = std::partition(p1, c.end(), [&](const Candidate& x) { return bin_of(x.logit) == cut; });
    std::sort(p1, p2, before);
    const size_t lo = static_cast<size_t>(p1 - c.begin()), hi = static_cast<size_t>(p2 - c.begin());
    sorted = lo == 0 ? hi : 0;
    size_t last_positive = lo;
    for (size_t i = lo; i < hi; ++i) {
      const double w = std::exp(c[i].logit - max);
      if (w > 0.0) last_positive = i;
      acc += w;
      if (crosses(target, acc)) return i;
    }
    // The bin's mass was summed in another order and the walk fell a rounding error short.
    return last_positive;
  }
};

}  // namespace

struct Sampler::Impl {
  SamplerParams p;
  int32_t vocab = 0;
  Rng rng;
  bool penalties_on = false;   // Penalties listed, a window, and some penalty not neutral
  std::vector<int32_t> count;  // occurrences of each token in the window (when penalties_on)
  std::vector<int32_t> ring;   // the window's tokens, oldest at ring_head once full (N > 0)
  size_t ring_head = 0;
  // The leading stages that loading performs (see the file comment): Penalties when it is
  // first, TopK when it is first or second after Penalties. `first_stage` is where the
  // ordinary stage loop starts.
  bool load_penalizes = false;
  bool load_top_k = false;
  size_t first_stage = 0;
  Work work;

  void check_size(std::span<const float> logits) const {
    if (logits.size() != static_cast<size_t>(vocab))
      throw Error("logits: got " + std::to_string(logits.size()) + " values for a vocabulary of " +
                  std::to_string(vocab));
  }

  [[noreturn]] static void bad_logit(float l, int32_t i) {
    throw Error(std::string("logits contain ") + (std::isnan(l) ? "NaN" : "+inf") + " at token " + std::to_string(i));
  }

  double penalize(double l, int32_t n) const {
    // Repetition penalty pushes the logit toward "less likely" whatever its sign, once per
    // distinct token; frequency/presence then subtract per occurrence / once.
    l = l > 0.0 ? l / double(p.repeat_penalty) : l * double(p.repeat_penalty);
    return l - (double(n) * double(p.frequency_penalty) + double(p.presence_penalty));
  }

  // Copies the logits into candidates, applying the fused leading stages. -inf tokens are
  // masked: they can never be drawn, so they never become candidates.
  void load(std::span<const float> logits, Work& w) const {
    check_size(logits);
    w.c.clear();
    w.sorted = 0;
    constexpr float inf = std::numeric_limits<float>::infinity();
    const bool pen = load_penalizes && penalties_on;
    const size_t k = load_top_k && p.top_k > 0 ? static_cast<size_t>(p.top_k) : 0;
    if (k == 0 || k >= static_cast<size_t>(vocab)) {
      for (int32_t i = 0; i < vocab; ++i) {
        const float l = logits[static_cast<size_t>(i)];
        if (!(l < inf)) bad_logit(l, i);
        if (l == -inf) continue;
        const int32_t n = pen ? count[static_cast<size_t>(i)] : 0;
        w.c.push_back({n > 0 ? penalize(l, n) : double(l), i});
      }
    } else {
      // Running selection: once the buffer has been cut to the best k, `thr` is the k-th best
      // value so far. A later token equal to it has a higher id, so it loses the tie: only
      // strictly greater values can still enter.
      const size_t cap = std::min(static_cast<size_t>(vocab), std::max(2 * k, k + 64));
      double thr = -std::numeric_limits<double>::infinity();
      for (int32_t i = 0; i < vocab; ++i) {
        const float l = logits[static_cast<size_t>(i)];
        if (!(l < inf)) bad_logit(l, i);
        if (l == -inf) continue;
        const int32_t n = pen ? count[static_cast<size_t>(i)] : 0;
        const double v = n > 0 ? penalize(l, n) : double(l);
        if (!(v > thr)) continue;
        w.c.push_back({v, i});
        if (w.c.size() == cap) {
          std::nth_element(w.c.begin(), w.c.begin() + static_cast<std::ptrdiff_t>(k - 1), w.c.end(), before);
          w.c.resize(k);
          thr = w.c[k - 1].logit;
        }
      }
      if (w.c.size() > k) {
        std::nth_element(w.c.begin(), w.c.begin() + static_cast<std::ptrdiff_t>(k - 1), w.c.end(), before);
        w.c.resize(k);
      }
      w.extend_sorted(w.c.size());
    }
    if (w.c.empty()) throw Error("logits: every token is -inf (nothing can be sampled)");
  }

  void apply_penalties(Work& w) const {
    if (!penalties_on) return;
    for (Candidate& x : w.c) {
      const int32_t n = count[static_cast<size_t>(x.id)];
      if (n > 0) x.logit = penalize(x.logit, n);
    }
    w.sorted = 0;
  }

  void apply_top_k(Work& w) const {
    if (p.top_k <= 0 || static_cast<size_t>(p.top_k) >= w.c.size()) return;
    const size_t k = static_cast<size_t>(p.top_k);
    w.extend_sorted(k);
    w.c.resize(k);
  }

  void apply_top_p(Work& w) const {
    if (p.top_p >= 1.0f || w.c.size() <= 1) return;
    w.c.resize(w.locate(double(p.top_p), /*strict=*/false) + 1);
  }

  void apply_min_p(Work& w) const {
    if (p.min_p <= 0.0f || w.c.size() <= 1) return;
    // p_i >= min_p * p_max  <=>  logit_i - logit_max >= log(min_p): no softmax needed.
    const double threshold = w.max_logit() + std::log(double(p.min_p));
    size_t kept_in_prefix = 0;
    for (size_t i = 0; i < w.sorted; ++i) kept_in_prefix += w.c[i].logit >= threshold;
    auto end = std::remove_if(w.c.begin(), w.c.end(), [&](const Candidate& x) { return x.logit < threshold; });
    w.c.erase(end, w.c.end());
    w.sorted = kept_in_prefix;  // remove_if is stable, so the kept prefix is still in order
  }

  void apply_temperature(Work& w) const {
    if (p.temperature <= 0.0f || p.temperature == 1.0f) return;
    const double t = p.temperature;
    for (Candidate& x : w.c) x.logit /= t;
    // Division can round two close logits to the same value, which would change their
    // order under the id tie-break; re-establish order lazily rather than trust the prefix.
    w.sorted = 0;
  }

  // Runs the stages in order. In greedy mode the Temperature stage is skipped and the run
  // stops after the last Penalties stage: the filters that follow always keep the argmax.
  void run_chain(std::span<const float> logits, Work& w, bool greedy) const {
    load(logits, w);
    size_t stop = p.order.size();
    if (greedy) {
      stop = first_stage;
      for (size_t i = first_stage; i < p.order.size(); ++i)
        if (p.order[i] == SamplerStage::Penalties) stop = i + 1;
    }
    for (size_t i = first_stage; i < stop; ++i) {
      switch (p.order[i]) {
        case SamplerStage::Penalties: apply_penalties(w); break;
        case SamplerStage::TopK: apply_top_k(w); break;
        case SamplerStage::TopP: apply_top_p(w); break;
        case SamplerStage::MinP: apply_min_p(w); break;
        case SamplerStage::Temperature:
          if (!greedy) apply_temperature(w);
          break;
      }
    }
  }

  static int32_t argmax(const Work& w) {
    if (w.sorted > 0) return w.c[0].id;
    const Candidate* best = &w.c[0];
    for (const Candidate& x : w.c)
      if (before(x, *best)) best = &x;
    return best->id;
  }

  // Greedy without building candidates: valid when no filter runs before Penalties (the
  // filters never remove the argmax, so only the penalties matter).
  int32_t greedy_scan(std::span<const float> logits) const {
    check_size(logits);
    constexpr float inf = std::numeric_limits<float>::infinity();
    const bool pen = load_penalizes && penalties_on;
    double best = -std::numeric_limits<double>::infinity();
    int32_t best_id = -1;
    for (int32_t i = 0; i < vocab; ++i) {
      const float l = logits[static_cast<size_t>(i)];
      if (!(l < inf)) bad_logit(l, i);
      if (l == -inf) continue;
      const int32_t n = pen ? count[static_cast<size_t>(i)] : 0;
      const double v = n > 0 ? penalize(l, n) : double(l);
      if (best_id < 0 || v > best) {  // strict: the lowest id wins a tie
        best = v;
        best_id = i;
      }
    }
    if (best_id < 0) throw Error("logits: every token is -inf (nothing can be sampled)");
    return best_id;
  }

  bool greedy_scan_ok() const {
    // Penalties absent, or performed by the load itself.
    return !penalties_on || load_penalizes;
  }
};

Sampler::Sampler(SamplerParams p, int32_t vocab_size) : impl_(std::make_unique<Impl>()) {
  p.validate();
  if (vocab_size <= 0) throw Error("vocab_size: must be > 0, got " + std::to_string(vocab_size));
  Impl& m = *impl_;
  m.p = std::move(p);
  m.vocab = vocab_size;
  m.rng.reseed(m.p.seed);
  const auto& order = m.p.order;
  const bool listed = std::find(order.begin(), order.end(), SamplerStage::Penalties) != order.end();
  const bool neutral =
      m.p.repeat_penalty == 1.0f && m.p.frequency_penalty == 0.0f && m.p.presence_penalty == 0.0f;
  m.penalties_on = listed && !neutral && m.p.repeat_last_n != 0;
  if (m.first_stage < order.size() && order[m.first_stage] == SamplerStage::Penalties) {
    m.load_penalizes = true;
    ++m.first_stage;
  }
  if (m.first_stage < order.size() && order[m.first_stage] == SamplerStage::TopK) {
    m.load_top_k = true;
    ++m.first_stage;
  }
  if (m.penalties_on) {
    m.count.assign(static_cast<size_t>(vocab_size), 0);
    // The ring grows to the window as tokens arrive; reserving a bounded amount up front
    // avoids reallocations in the common windows without trusting a huge repeat_last_n.
    if (m.p.repeat_last_n > 0) m.ring.reserve(std::min<size_t>(size_t(m.p.repeat_last_n), 1u << 16));
  }
  m.work.reserve(static_cast<size_t>(vocab_size));
}

Sampler::~Sampler() = default;
Sampler::Sampler(Sampler&&) noexcept = default;
Sampler& Sampler::operator=(Sampler&&) noexcept = default;

int32_t Sampler::greedy(std::span<const float> logits) {
  Impl& m = *impl_;
  if (m.greedy_scan_ok()) return m.greedy_scan(logits);
  m.run_chain(logits, m.work, /*greedy=*/true);
  return Impl::argmax(m.work);
}

int32_t Sampler::sample(std::span<const float> logits) {
  Impl& m = *impl_;
  if (m.p.temperature <= 0.0f) return greedy(logits);
  m.run_chain(logits, m.work, /*greedy=*/false);
  // Inverse CDF over the candidates in (prob desc, id asc) order with one uniform draw.
  const double u = m.rng.next_float();
  return m.work.c[m.work.locate(u, /*strict=*/true)].id;
}

void Sampler::accept(int32_t token) {
  Impl& m = *impl_;
  if (token < 0 || token >= m.vocab)
    throw Error("accept: token " + std::to_string(token) + " is outside the vocabulary [0, " +
                std::to_string(m.vocab) + ")");
  if (!m.penalties_on) return;
  ++m.count[static_cast<size_t>(token)];
  if (m.p.repeat_last_n < 0) return;  // whole history: counts only ever grow
  const size_t n = static_cast<size_t>(m.p.repeat_last_n);
  if (m.ring.size() < n) {
    m.ring.push_back(token);
    return;
  }
  // Window full: the oldest token leaves it as the new one enters.
  --m.count[static_cast<size_t>(m.ring[m.ring_head])];
  m.ring[m.ring_head] = token;
  m.ring_head = (m.ring_head + 1) % n;
}

void Sampler::reset() {
  Impl& m = *impl_;
  std::fill(m.count.begin(), m.count.end(), 0);
  m.ring.clear();
  m.ring_head = 0;
  m.rng.reseed(m.p.seed);
}

std::vector<std::pair<int32_t, float>> Sampler::distribution(std::span<const float> logits) const {
  const Impl& m = *impl_;
  const bool greedy = m.p.temperature <= 0.0f;
  if (greedy && m.greedy_scan_ok()) return {{m.greedy_scan(logits), 1.0f}};
  Work w;
  w.reserve(static_cast<size_t>(m.vocab));
  m.run_chain(logits, w, greedy);
  if (greedy) return {{Impl::argmax(w), 1.0f}};
  w.extend_sorted(w.c.size());
  const double max = w.c[0].logit;
  double sum = 0.0;
  for (const Candidate& x : w.c) sum += std::exp(x.logit - max);
  std::vector<std::pair<int32_t, float>> out;
  out.reserve(w.c.size());
  for (const Candidate& x : w.c) out.emplace_back(x.id, float(std::exp(x.logit - max) / sum));
  return out;
}

const SamplerParams& Sampler::params() const { return impl_->p; }
int32_t Sampler::vocab_size() const { return impl_->vocab; }
const Rng& Sampler::rng() const { return impl_->rng; }

}  // namespace retnet
