// generation_config.json (Hugging Face's file of generation defaults), read once, by Model::load.
#pragma once
#include <cstdint>
#include <string>

#include "retnet/retnet.hpp"

namespace retnet {

// Reads <dir>/generation_config.json when there is one: its eos_token_id (an integer or a list, each
// inside [0, vocab_size)) joins info.eos_token_ids, and its sampling values (do_sample, temperature,
// top_k, top_p) fill info.generation. A sampling key of another JSON type is ignored, as absent.
// Error naming the file when it cannot be read, is not a JSON object or has a bad eos_token_id.
void read_generation_config(const std::string& dir, int64_t vocab_size, ModelInfo& info);

}  // namespace retnet
