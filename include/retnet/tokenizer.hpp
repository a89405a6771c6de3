// retnet::Tokenizer — Hugging Face tokenizer.json (BPE models) without Python.
//
// Supported tokenizer.json components:
//   model          BPE: byte_fallback, unk_token + fuse_unk, ignore_merges, merges as "a b" strings or
//                  ["a", "b"] pairs (dropout must be null, no continuing_subword_prefix/end_of_word_suffix)
//   normalizer     Sequence, NFC, NFD, Lowercase, Prepend, Replace (string pattern), Strip
//   pre_tokenizer  Sequence, ByteLevel, Metaspace (prepend_scheme / legacy add_prefix_space, split),
//                  Split (string patterns, or the GPT-2, Llama-3 and Qwen2 regexes, matched by hand),
//                  Digits, WhitespaceSplit
//   decoder        Sequence, ByteLevel, Metaspace, Replace (string pattern), ByteFallback, Fuse, Strip
//   post_processor TemplateProcessing, RobertaProcessing, BertProcessing, ByteLevel, Sequence
//   added_tokens   special or not, single_word, lstrip, rstrip, normalized
// That covers GPT-2 / GPT-NeoX / Llama-3 / Qwen2 byte-level and Llama / Mistral SentencePiece-style
// files. Anything else (WordPiece / Unigram / WordLevel models, other regexes, NFKC, ...) makes load()
// throw retnet::Error naming the file and the type. "truncation" and "padding" are ignored.
//
// encode() and decode() reproduce the Rust `tokenizers` library (checked against 0.23.3).
// Invalid UTF-8 input: the Python API only accepts str, so the rule is "decode the bytes as Python's
// bytes.decode('utf-8', 'replace') does, then encode": each maximal ill-formed subsequence (a stray
// continuation byte, a truncated sequence, an overlong form, an encoded surrogate, a byte F5..FF)
// becomes one U+FFFD. NUL bytes are ordinary characters.
//
// Threads and ownership: a Tokenizer is immutable after load(); copies share that state (cheap,
// reference-counted) and every const member function may run concurrently on one Tokenizer from
// any number of threads. Every function returns values the caller owns. A StreamDecoder is mutable
// state for one stream: use it from one thread at a time (it keeps the tokenizer's shared state
// alive, so it may outlive the Tokenizer it came from). A moved-from Tokenizer or StreamDecoder holds
// nothing: its member functions throw Error saying so (assigning to it or destroying it is fine).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "retnet/export.h"

namespace retnet {

class RETNET_API Tokenizer {
 public:
  // `path` is a directory holding tokenizer.json (and optionally tokenizer_config.json, whose
  // add_bos_token / add_eos_token / bos_token / eos_token are honoured), or a tokenizer.json file.
  // Throws Error naming the file and the key or type on any problem. Thread-safe.
  static Tokenizer load(const std::string& path);

  // add_special: add what the model expects around a sequence. When tokenizer_config.json sets
  // add_bos_token / add_eos_token, those decide (as transformers' Llama tokenizers do); otherwise the
  // tokenizer.json post_processor does (TemplateProcessing, RobertaProcessing, BertProcessing).
  // Never throws for any input bytes (invalid UTF-8 is repaired as described above).
  std::vector<int32_t> encode(std::string_view text, bool add_special = true) const;
  // Exactly the Rust/Python decode(ids, skip_special_tokens=skip_special): valid UTF-8 always
  // (ill-formed byte sequences come out as U+FFFD). Unknown ids are skipped.
  std::string decode(std::span<const int32_t> ids, bool skip_special = true) const;

  // The raw bytes token `id` contributes to decode(): byte-level BPE tokens map back through the
  // byte alphabet (so one token may hold part of a multi-byte character: an emoji split over three
  // tokens gives its 4 bytes spread over them), a byte-fallback "<0xNN>" token is that one byte, a
  // SentencePiece "▁" is a space, and special and added tokens give their content as the decoder
  // renders it ("</s>"). The result need not be valid UTF-8. This ignores skip_special: decode() and
  // a StreamDecoder with skip_special drop special tokens, so a caller mirroring them skips ids for
  // which is_special() is true.
  // `first`: the token opens the decoded sequence, where decoders apply start-of-text rules
  // (SentencePiece-style decoders drop its leading space; with no decoder, tokens after the first
  // are preceded by a space). Concatenating token_bytes(ids[0], true), token_bytes(ids[1]), ...
  // gives exactly the bytes of decode(ids, false) whenever that concatenation is valid UTF-8,
  // except with decoders whose rules span tokens: a Replace of a multi-character pattern or a Strip
  // of trailing characters after Fuse (never used by Llama, Mistral, GPT-2/NeoX, Llama-3 or Qwen2).
  // Throws Error for an id outside the vocabulary.
  std::string token_bytes(int32_t id, bool first = false) const;
  // The token's string in the vocab (byte-level tokens in their alphabet, e.g. "Ġthe"); throws
  // Error for an id outside the vocabulary.
  std::string token_text(int32_t id) const;
  int32_t vocab_size() const;  // max id + 1 over vocab and added tokens
  int32_t bos_id() const;      // -1 if none
  int32_t eos_id() const;      // -1 if none
  bool is_special(int32_t id) const;  // false for ids outside the vocabulary
  // The id of a vocab or added token string (exact match, no normalisation), if any.
  std::optional<int32_t> token_to_id(std::string_view token) const;

  struct RETNET_LOCAL Impl;

  // Incremental decode for streaming generation. The concatenation of everything push() and flush()
  // return equals decode() of all the pushed ids. push() returns only complete characters; text that
  // later ids could still change is held back: a multi-byte character split across byte-level tokens
  // (an emoji comes out whole once its last byte arrives), and a run of <0xNN> byte-fallback tokens
  // (released with the next ordinary token or by flush(), because the Rust decoder turns a run that is
  // invalid as a whole into one U+FFFD per byte). flush() ends the stream: incomplete trailing bytes
  // become U+FFFD, and the decoder starts afresh.
  // Not thread-safe: one stream, one thread at a time. Movable; never throws for unknown ids (they
  // are skipped, as decode() skips them).
  class RETNET_API StreamDecoder {
   public:
    StreamDecoder(StreamDecoder&&) noexcept;
    StreamDecoder& operator=(StreamDecoder&&) noexcept;
    ~StreamDecoder();
    std::string push(int32_t id);  // the text `id` completes; "" while it is held back
    std::string flush();           // what was held back, repaired; then ready for a new stream

   private:
    friend class Tokenizer;
    struct RETNET_LOCAL State;
    RETNET_LOCAL StreamDecoder(std::shared_ptr<const Impl> impl, bool skip_special);
    RETNET_LOCAL State& live();  // *state_, or Error when moved from
    std::shared_ptr<const Impl> impl_;
    std::unique_ptr<State> state_;
  };
  // A new stream over this tokenizer; skip_special as in decode(). Thread-safe.
  StreamDecoder stream_decoder(bool skip_special = true) const;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  RETNET_LOCAL const Impl& live() const;  // *impl_, or Error when moved from
  std::shared_ptr<const Impl> impl_;
};

}  // namespace retnet
