// The --kl-save / --kl-base file of `retnet perplexity` and the statistics computed against it (format:
// kl_divergence.hpp).
#include "kl_divergence.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <new>

#include "retnet/atomic_write.hpp"
#include "retnet/error.hpp"
#include "retnet/system.hpp"

namespace retnet::cli {

static_assert(std::endian::native == std::endian::little, "the KL base file is read and written little-endian");

namespace {

constexpr char kMagic[8] = {'R', 'N', 'K', 'L', 'B', 'A', 'S', 'E'};
constexpr size_t kChecksumOffset = 88;

template <class T>
void put(uint8_t* p, size_t off, T v) {
  std::memcpy(p + off, &v, sizeof v);
}
template <class T>
T get(const uint8_t* p, size_t off) {
  T v;
  std::memcpy(&v, p + off, sizeof v);
  return v;
}

std::vector<uint8_t> encode_header(const KlHeader& h) {
  std::vector<uint8_t> b(kKlHeaderBytes, 0);
  std::memcpy(b.data(), kMagic, 8);
  put<uint32_t>(b.data(), 8, kKlFormatVersion);
  put<uint32_t>(b.data(), 12, uint32_t(kKlHeaderBytes));
  put<int64_t>(b.data(), 16, h.vocab);
  put<int64_t>(b.data(), 24, h.ctx);
  put<int64_t>(b.data(), 32, h.chunk);
  put<int64_t>(b.data(), 40, h.n_tokens);
  put<uint64_t>(b.data(), 48, h.ids_digest);
  put<int64_t>(b.data(), 56, h.n_positions);
  put<double>(b.data(), 64, h.base_nll);
  put<double>(b.data(), 72, h.base_ppl);
  put<uint32_t>(b.data(), 80, 0);  // fp32 log-probabilities
  put<uint64_t>(b.data(), kChecksumOffset, h.checksum);
  return b;
}

std::string ctx_str(int64_t ctx) { return ctx == 0 ? "one pass (no --ctx)" : "--ctx " + std::to_string(ctx); }

}  // namespace

void KlDigest::add(std::span<const uint32_t> words) {
  uint64_t h = h_;
  for (uint32_t w : words) {
    h = (h ^ w) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
  }
  h_ = h;
  n_ += words.size();
}

void KlDigest::add_bytes(std::span<const uint8_t> bytes) {
  // Whole words only (every piece hashed here is a multiple of 4 bytes); memcpy per block of words
  // keeps this free of alignment assumptions.
  uint32_t buf[1024];
  for (size_t i = 0; i + 4 <= bytes.size();) {
    const size_t n = std::min<size_t>(1024, (bytes.size() - i) / 4);
    std::memcpy(buf, bytes.data() + i, n * 4);
    add(std::span<const uint32_t>(buf, n));
    i += n * 4;
  }
}

uint64_t KlDigest::value() const {
  uint64_t h = h_ ^ (n_ * 0xff51afd7ed558ccdull);
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

uint64_t kl_digest_ids(std::span<const int32_t> ids) {
  KlDigest d;
  d.add_bytes(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(ids.data()), ids.size_bytes()));
  return d.value();
}

void log_softmax(std::span<const float> logits, std::span<float> out) {
  double mx = -INFINITY;
  for (float v : logits) mx = std::max(mx, double(v));
  double sum = 0;
  for (float v : logits) sum += std::exp(double(v) - mx);
  const double lse = mx + std::log(sum);
  for (size_t i = 0; i < logits.size(); ++i) out[i] = float(double(logits[i]) - lse);
}

int64_t kl_scored_positions(int64_t n_tokens, int64_t ctx) {
  if (n_tokens < 2) return 0;
  if (ctx == 0) return n_tokens - 1;
  int64_t n = 0;
  for (int64_t w = 0; w + 1 < n_tokens; w += ctx) n += std::min(n_tokens, w + ctx) - w - 1;
  return n;
}

// ---------------------------------------------------------------------------------------------------------
// saving

KlSaver::KlSaver(std::string path, int64_t vocab, int64_t n_positions)
    : path_(std::move(path)), vocab_(vocab), n_positions_(n_positions) {
  const double bytes = double(vocab) * double(n_positions) * 4.0;
  // The rows are held until the end (write_file_atomically takes the whole file): checked against the
  // memory available now, after the model loaded, so that a text too long is refused before the run
  // rather than killed by the OOM killer halfway (resize() touches every page).
  check_host_memory(uint64_t(bytes), "--kl-save: the fp32 log-probabilities of " + std::to_string(n_positions) +
                                         " positions x " + std::to_string(vocab));
  try {
    logp_.resize(size_t(vocab) * size_t(n_positions));
  } catch (const std::bad_alloc&) {
    throw Error("--kl-save: " + std::to_string(n_positions) + " positions x " + std::to_string(vocab) +
                " log-probabilities need " + std::to_string(bytes / 1073741824.0) +
                " GiB of memory, which could not be allocated; score a shorter text");
  }
}

void KlSaver::add(std::span<const float> logits) {
  if (added_ >= n_positions_) throw Error("--kl-save: more scored positions than planned (internal error)");
  log_softmax(logits, std::span<float>(logp_.data() + size_t(added_) * size_t(vocab_), size_t(vocab_)));
  ++added_;
}

void KlSaver::write(KlHeader h) const {
  if (added_ != n_positions_) throw Error("--kl-save: fewer scored positions than planned (internal error)");
  h.vocab = vocab_;
  h.n_positions = n_positions_;
  std::vector<uint8_t> head = encode_header(h);
  KlDigest d;
  d.add_bytes(std::span<const uint8_t>(head.data(), kChecksumOffset));
  const std::span<const uint8_t> payload(reinterpret_cast<const uint8_t*>(logp_.data()), logp_.size() * 4);
  d.add_bytes(payload);
  put<uint64_t>(head.data(), kChecksumOffset, d.value());
  const std::span<const uint8_t> parts[] = {std::span<const uint8_t>(head), payload};
  write_file_atomically(path_, parts, "KL-divergence base file");
}

// ---------------------------------------------------------------------------------------------------------
// reading and comparing

KlBaseReader::KlBaseReader(std::string path) : path_(std::move(path)) {
  std::error_code ec;
  if (std::filesystem::is_directory(path_, ec)) throw Error(path_ + ": is a directory, expected a --kl-save file");
  in_.open(path_, std::ios::binary);
  if (!in_) throw Error(path_ + ": cannot open the KL-divergence base file: " + std::strerror(errno));
  uint8_t b[kKlHeaderBytes] = {};
  in_.read(reinterpret_cast<char*>(b), std::streamsize(kKlHeaderBytes));
  const auto got = size_t(in_.gcount());
  if (got < 8 || std::memcmp(b, kMagic, 8) != 0)
    throw Error(path_ + ": not a KL-divergence base file (no RNKLBASE magic; make one with perplexity --kl-save)");
  if (got < 16) throw Error(path_ + ": truncated KL-divergence base file (" + std::to_string(got) + " bytes)");
  const auto version = get<uint32_t>(b, 8), hbytes = get<uint32_t>(b, 12);
  if (version != kKlFormatVersion)
    throw Error(path_ + ": KL-divergence base file format version " + std::to_string(version) +
                " is not supported (this build reads version " + std::to_string(kKlFormatVersion) + ")");
  if (got < kKlHeaderBytes)
    throw Error(path_ + ": truncated KL-divergence base file (" + std::to_string(got) + " bytes, the header alone is " +
                std::to_string(kKlHeaderBytes) + ")");
  if (hbytes != kKlHeaderBytes || get<uint32_t>(b, 80) != 0 || get<uint32_t>(b, 84) != 0)
    throw Error(path_ +
                ": corrupt KL-divergence base file header (header size or value type not as version 1 has them)");
  h_.vocab = get<int64_t>(b, 16);
  h_.ctx = get<int64_t>(b, 24);
  h_.chunk = get<int64_t>(b, 32);
  h_.n_tokens = get<int64_t>(b, 40);
  h_.ids_digest = get<uint64_t>(b, 48);
  h_.n_positions = get<int64_t>(b, 56);
  h_.base_nll = get<double>(b, 64);
  h_.base_ppl = get<double>(b, 72);
  h_.checksum = get<uint64_t>(b, kChecksumOffset);
  // 2^40 positions or vocabulary entries: far above anything real, small enough that the size below is exact.
  constexpr int64_t kMax = int64_t(1) << 40;
  if (h_.vocab < 1 || h_.vocab > (int64_t(1) << 24) || h_.n_positions < 1 || h_.n_positions > kMax || h_.n_tokens < 2 ||
      h_.n_tokens > kMax || h_.ctx < 0 || h_.ctx == 1 || h_.n_positions != kl_scored_positions(h_.n_tokens, h_.ctx) ||
      !(h_.base_ppl >= 1) || !std::isfinite(h_.base_ppl))
    throw Error(path_ + ": corrupt KL-divergence base file header (vocabulary " + std::to_string(h_.vocab) +
                ", tokens " + std::to_string(h_.n_tokens) + ", positions " + std::to_string(h_.n_positions) + ")");
  const auto file_bytes = std::filesystem::file_size(path_, ec);
  const double want = double(kKlHeaderBytes) + double(h_.n_positions) * double(h_.vocab) * 4.0;
  if (ec || double(file_bytes) != want)
    throw Error(path_ + ": " + (double(file_bytes) < want ? "truncated" : "over-long") +
                " KL-divergence base file: " + std::to_string(file_bytes) + " bytes, its header promises " +
                std::to_string(uint64_t(want)) + " (" + std::to_string(h_.n_positions) + " positions x " +
                std::to_string(h_.vocab) + " fp32 log-probabilities)");
  // The checksum, in one pass before any model runs: a damaged file is refused before it costs a run.
  KlDigest d;
  d.add_bytes(std::span<const uint8_t>(b, kChecksumOffset));
  std::vector<uint8_t> buf(size_t(1) << 20);
  for (;;) {
    in_.read(reinterpret_cast<char*>(buf.data()), std::streamsize(buf.size()));
    const auto n = size_t(in_.gcount());
    if (n == 0) break;
    if (n % 4) throw Error(path_ + ": reading the KL-divergence base file: short read");
    d.add_bytes(std::span<const uint8_t>(buf.data(), n));
  }
  if (in_.bad()) throw Error(path_ + ": reading the KL-divergence base file failed");
  if (d.value() != h_.checksum)
    throw Error(path_ +
                ": corrupt KL-divergence base file (checksum mismatch: the file was changed after it was written)");
  in_.clear();
  in_.seekg(std::streamoff(kKlHeaderBytes));
  base_.resize(size_t(h_.vocab));
  model_.resize(size_t(h_.vocab));
}

void KlBaseReader::check_run(int64_t vocab, int64_t ctx, std::span<const int32_t> ids, int64_t n_positions) const {
  if (h_.vocab != vocab)
    throw Error(path_ + ": saved from a model with vocabulary size " + std::to_string(h_.vocab) + ", this model has " +
                std::to_string(vocab));
  if (h_.ctx != ctx)
    throw Error(path_ + ": saved with " + ctx_str(h_.ctx) + ", this run uses " + ctx_str(ctx) +
                " (the scored positions must be the same)");
  if (h_.n_tokens != int64_t(ids.size()) || h_.ids_digest != kl_digest_ids(ids))
    throw Error(path_ + ": saved from other tokens (" + std::to_string(h_.n_tokens) +
                " tokens) than this run's text (" + std::to_string(ids.size()) + " tokens" +
                (h_.n_tokens == int64_t(ids.size()) ? ", different ids" : "") +
                "): use the same -f file and tokenizer");
  if (h_.n_positions != n_positions)
    throw Error(path_ + ": holds " + std::to_string(h_.n_positions) + " positions, this run scores " +
                std::to_string(n_positions));
}

void KlBaseReader::compare(std::span<const float> logits, KlStats& stats) {
  if (read_ >= h_.n_positions) throw Error(path_ + ": more positions scored than the file holds (internal error)");
  in_.read(reinterpret_cast<char*>(base_.data()), std::streamsize(base_.size() * 4));
  if (size_t(in_.gcount()) != base_.size() * 4)
    throw Error(path_ + ": reading the KL-divergence base file: it ended early (was it changed during the run?)");
  ++read_;
  log_softmax(logits, model_);
  // KL(base ‖ model) = Σ p_base (log p_base − log p_model), in double from the fp32 log-probabilities
  // (both rounded the same way, so a model against its own file gives exactly 0).
  double kl = 0;
  size_t arg_b = 0, arg_m = 0;
  for (size_t i = 0; i < base_.size(); ++i) {
    const double lb = base_[i];
    if (base_[i] > base_[arg_b]) arg_b = i;
    if (model_[i] > model_[arg_m]) arg_m = i;
    if (lb == -INFINITY) continue;  // p_base = 0 contributes nothing
    kl += std::exp(lb) * (lb - double(model_[i]));
  }
  stats.kl.push_back(kl);
  stats.top1_agree += arg_b == arg_m;
}

void KlStats::finish() {
  const size_t n = kl.size();
  if (n == 0) return;
  double s = 0;
  for (double v : kl) s += v;
  mean = s / double(n);
  double ss = 0;
  for (double v : kl) ss += (v - mean) * (v - mean);
  stderr_mean = n > 1 ? std::sqrt(ss / double(n - 1) / double(n)) : 0;
  std::vector<double> sorted = kl;
  std::sort(sorted.begin(), sorted.end());
  // nearest rank: the smallest value with at least q·n values at or below it
  auto pct = [&](double q) { return sorted[size_t(std::max(1.0, std::ceil(q * double(n)))) - 1]; };
  median = pct(0.5);
  p90 = pct(0.9);
  p99 = pct(0.99);
  max = sorted.back();
}

}  // namespace retnet::cli
