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
// A Tokenizer is immutable after load() and cheap to copy; encode/decode may run concurrently. A
// StreamDecoder belongs to one stream (one thread at a time).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace retnet {

class Tokenizer {
 public:
  // `path` is a directory holding tokenizer.json (and optionally tokenizer_config.json, whose
  // add_bos_token / add_eos_token / bos_token / eos_token are honoured), or a tokenizer.json file.
  static Tokenizer load(const std::string& path);

  // add_special: add what the model expects around a sequence. When tokenizer_config.json sets
  // add_bos_token / add_eos_token, those decide (as transformers' Llama tokenizers do); otherwise the
  // tokenizer.json post_processor does (TemplateProcessing, RobertaProcessing, BertProcessing).
  std::vector<int32_t> encode(std::string_view text, bool add_special = true) const;
  // Exactly the Rust/Python decode(ids, skip_special_tokens=skip_special). Unknown ids are skipped.
  std::string decode(std::span<const int32_t> ids, bool skip_special = true) const;

  std::string token_text(int32_t id) const;  // the token's string in the vocab; throws for unknown ids
  int32_t vocab_size() const;                // max id + 1 over vocab and added tokens
  int32_t bos_id() const;                    // -1 if none
  int32_t eos_id() const;                    // -1 if none
  bool is_special(int32_t id) const;
  std::optional<int32_t> token_to_id(std::string_view token) const;

  struct Impl;

  // Incremental decode for streaming generation. The concatenation of everything push() and flush()
  // return equals decode() of all the pushed ids. push() returns only complete characters; text that
  // later ids could still change is held back: a multi-byte character split across byte-level tokens
  // (an emoji comes out whole once its last byte arrives), and a run of <0xNN> byte-fallback tokens
  // (released with the next ordinary token or by flush(), because the Rust decoder turns a run that is
  // invalid as a whole into one U+FFFD per byte). flush() ends the stream: incomplete trailing bytes
  // become U+FFFD, and the decoder starts afresh.
  class StreamDecoder {
   public:
    StreamDecoder(StreamDecoder&&) noexcept;
    StreamDecoder& operator=(StreamDecoder&&) noexcept;
    ~StreamDecoder();
    std::string push(int32_t id);
    std::string flush();

   private:
    friend class Tokenizer;
    struct State;
    StreamDecoder(std::shared_ptr<const Impl> impl, bool skip_special);
    std::shared_ptr<const Impl> impl_;
    std::unique_ptr<State> state_;
  };
  StreamDecoder stream_decoder(bool skip_special = true) const;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace retnet
