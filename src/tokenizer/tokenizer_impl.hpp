// The state behind retnet::Tokenizer (shared by tokenizer.cpp and tokenizer_load.cpp).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "retnet/tokenizer.hpp"
#include "tokenizer/added_vocab.hpp"
#include "tokenizer/bpe.hpp"
#include "tokenizer/decoder.hpp"
#include "tokenizer/normalizer.hpp"
#include "tokenizer/pre_tokenizer.hpp"

namespace retnet {

struct Tokenizer::Impl {
  std::string path;  // tokenizer.json, for messages
  tok::Normalizer normalizer;
  tok::PreTokenizer pre_tokenizer;
  std::unique_ptr<tok::BpeModel> model;
  tok::DecoderSpec decoder;

  std::vector<tok::AddedToken> added;  // indexed by the matchers' token_index
  tok::AddedMatcher raw_matcher;       // normalized=false tokens, matched in the input
  tok::AddedMatcher norm_matcher;      // normalized=true tokens, matched in normalized pieces

  // By id: the string decode() starts from (added token first, else the model's) and whether that
  // string is a special token's content (what skip_special tests, as in the Rust library).
  std::vector<const std::string*> id_text;
  std::vector<uint8_t> id_special;
  int32_t vocab_size = 0;

  // What add_special puts around the ids (from tokenizer_config.json or the post_processor).
  std::vector<int32_t> prefix_ids, suffix_ids;
  int32_t bos = -1, eos = -1;

  const std::string* text_of(int32_t id) const {
    return id >= 0 && id < vocab_size ? id_text[size_t(id)] : nullptr;
  }
  void encode_into(std::string_view text, std::vector<int32_t>& out) const;

 private:
  void encode_segment(std::string_view seg, bool at_origin, std::vector<int32_t>& out) const;
  void encode_words(std::string text, bool at_origin, std::vector<int32_t>& out) const;
};

// Builds the Impl from tokenizer.json (+ tokenizer_config.json); defined in tokenizer_load.cpp.
std::shared_ptr<Tokenizer::Impl> load_tokenizer_impl(const std::string& path);

}  // namespace retnet
