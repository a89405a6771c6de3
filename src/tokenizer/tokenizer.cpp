// retnet::Tokenizer: the encode pipeline (added tokens -> normalizer -> pre-tokenizer -> BPE ->
// specials) and decoding through the streaming decoder stages.
#include "retnet/tokenizer.hpp"

#include "retnet/error.hpp"
#include "tokenizer/tokenizer_impl.hpp"
#include "tokenizer/unicode.hpp"

namespace retnet {

void Tokenizer::Impl::encode_into(std::string_view input, std::vector<int32_t>& out) const {
  std::string repaired;
  std::string_view text = input;
  if (!unicode::is_valid_utf8(input)) {
    repaired = unicode::sanitize_utf8(input);
    text = repaired;
  }
  // 1. Added tokens that are not normalized are cut out of the raw text.
  if (raw_matcher.empty()) {
    encode_segment(text, true, out);
    return;
  }
  std::vector<tok::AddedMatcher::Span> spans;
  raw_matcher.split(text, added, spans);
  for (const auto& sp : spans) {
    if (sp.token_index >= 0) out.push_back(added[size_t(sp.token_index)].id);
    else encode_segment(text.substr(sp.begin, sp.end - sp.begin), sp.begin == 0, out);
  }
}

void Tokenizer::Impl::encode_segment(std::string_view seg, bool at_origin, std::vector<int32_t>& out) const {
  // 2. Normalize each remaining piece, then cut out the normalized added tokens.
  std::string norm = normalizer.empty() ? std::string(seg) : normalizer.apply(seg);
  if (norm_matcher.empty()) {
    encode_words(std::move(norm), at_origin, out);
    return;
  }
  std::vector<tok::AddedMatcher::Span> spans;
  norm_matcher.split(norm, added, spans);
  for (const auto& sp : spans) {
    if (sp.token_index >= 0) out.push_back(added[size_t(sp.token_index)].id);
    else encode_words(norm.substr(sp.begin, sp.end - sp.begin), at_origin && sp.begin == 0, out);
  }
}

void Tokenizer::Impl::encode_words(std::string text, bool at_origin, std::vector<int32_t>& out) const {
  // 3. Pre-tokenize into words, 4. merge each word with BPE.
  std::vector<tok::Piece> words;
  pre_tokenizer.apply(tok::Piece{std::move(text), at_origin}, words);
  for (const tok::Piece& w : words) model->tokenize(w.text, out);
}

Tokenizer Tokenizer::load(const std::string& path) { return Tokenizer(load_tokenizer_impl(path)); }

const Tokenizer::Impl& Tokenizer::live() const {
  if (!impl_) throw Error("Tokenizer: this tokenizer was moved from (assign a loaded one to it before using it)");
  return *impl_;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special) const {
  const Impl& im = live();
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special) ids = im.prefix_ids;
  im.encode_into(text, ids);
  if (add_special) ids.insert(ids.end(), im.suffix_ids.begin(), im.suffix_ids.end());
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  const Impl& im = live();
  tok::DecodeRun run(im.decoder);
  for (const int32_t id : ids) {
    const std::string* t = im.text_of(id);
    if (!t || (skip_special && im.id_special[size_t(id)])) continue;
    run.push(*t);
  }
  run.finish();
  return run.take();
}

std::string Tokenizer::token_text(int32_t id) const {
  const Impl& im = live();
  const std::string* t = im.text_of(id);
  if (!t) throw Error("token id " + std::to_string(id) + " is not in the vocabulary of " + im.path);
  return *t;
}

std::string Tokenizer::token_bytes(int32_t id, bool first) const {
  const Impl& im = live();
  const std::string* t = im.text_of(id);
  if (!t) throw Error("token id " + std::to_string(id) + " is not in the vocabulary of " + im.path);
  return tok::token_bytes(im.decoder, *t, first);
}

int32_t Tokenizer::vocab_size() const { return live().vocab_size; }
int32_t Tokenizer::bos_id() const { return live().bos; }
int32_t Tokenizer::eos_id() const { return live().eos; }

bool Tokenizer::is_special(int32_t id) const {
  const Impl& im = live();
  return id >= 0 && id < im.vocab_size && im.id_special[size_t(id)];
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  const Impl& im = live();
  for (auto it = im.added.rbegin(); it != im.added.rend(); ++it)
    if (it->content == token) return it->id;
  return im.model->token_to_id(token);
}

// ---- streaming -----------------------------------------------------------------------------

struct Tokenizer::StreamDecoder::State {
  tok::DecodeRun run;
  bool skip_special;
};

Tokenizer::StreamDecoder::StreamDecoder(std::shared_ptr<const Impl> impl, bool skip_special)
    : impl_(std::move(impl)), state_(std::make_unique<State>(State{tok::DecodeRun(impl_->decoder), skip_special})) {}
Tokenizer::StreamDecoder::StreamDecoder(StreamDecoder&&) noexcept = default;
Tokenizer::StreamDecoder& Tokenizer::StreamDecoder::operator=(StreamDecoder&&) noexcept = default;
Tokenizer::StreamDecoder::~StreamDecoder() = default;

Tokenizer::StreamDecoder::State& Tokenizer::StreamDecoder::live() {
  if (!state_) throw Error("Tokenizer::StreamDecoder: this stream decoder was moved from");
  return *state_;
}

std::string Tokenizer::StreamDecoder::push(int32_t id) {
  State& st = live();
  const std::string* t = impl_->text_of(id);
  if (!t || (st.skip_special && impl_->id_special[size_t(id)])) return {};
  st.run.push(*t);
  return st.run.take();
}

std::string Tokenizer::StreamDecoder::flush() {
  State& st = live();
  st.run.finish();
  std::string rest = st.run.take();
  st.run = tok::DecodeRun(impl_->decoder);
  return rest;
}

Tokenizer::StreamDecoder Tokenizer::stream_decoder(bool skip_special) const {
  live();
  return StreamDecoder(impl_, skip_special);
}

}  // namespace retnet
