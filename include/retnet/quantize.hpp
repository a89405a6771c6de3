// Quantizing a model directory into block weight types (q8_0, q4_0, q4_k): what `retnet quantize`
// runs. The result is an ordinary model directory that Model::load maps in place (docs/library.md,
// "Quantized models").
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "retnet/export.h"

namespace retnet {

struct QuantizeOptions {
  std::string type;  // "q8_0", "q4_0" or "q4_k"
  // What keeps its stored precision, comma-separated: embed, head, attn (= q,k,v,g,o), q, k, v, g, o,
  // ffn; "none" (or "") keeps nothing. The default keeps the embedding (decode reads one row of it
  // per token: quantizing it costs quality and saves no time; README.md, "Quantized weights").
  std::string keep = "embed";
  // The LM head's type: "q8_0" (default: it is read whole every token, and q8_0 halves bf16's bytes
  // at no measurable perplexity), "q4_0" or "q4_k", "same" (= type), or "keep" (as stored; so does
  // "head" in keep). A head tied to the embedding is the head: this decides it.
  std::string head_type = "q8_0";
  bool force = false;  // replace an existing output directory (else Error)
  int threads = 0;     // threads quantizing rows (0: all hardware threads); the bytes do not depend on it
  // Called with the weight bytes read so far and their total; false cancels (Error, nothing written).
  std::function<bool(uint64_t done, uint64_t total)> on_progress;
};

struct QuantizeResult {
  int quantized = 0;               // matrices quantized
  int copied = 0;                  // tensors written as they were stored
  uint64_t bytes_in = 0;           // weight bytes read
  uint64_t bytes_out = 0;          // weight bytes written
  std::vector<std::string> notes;  // matrices left unquantized by their shape, one line each
};

// Writes out_dir: in_dir's config.json, generation_config.json and tokenizer files copied, and its
// weights in safetensors (sharded as the input is) with every projection matrix (q, k, v, g, o,
// FFN) not kept quantized to options.type; norm vectors and kept matrices as they are stored. A
// matrix whose width is not a multiple of the block stays as it is (a note says so). in_dir may be
// any model Model::load reads (torchscale or fla, sharded or not, F32/F16/BF16). The directory is
// written whole under a temporary name beside it and renamed into place: a failure or a cancel
// leaves nothing (and an existing out_dir as it was). A symbolic link out_dir is followed to the
// directory it names; the link stays. Throws Error naming the file, tensor or argument.
RETNET_API QuantizeResult quantize_model(const std::string& in_dir, const std::string& out_dir,
                                         const QuantizeOptions& options);

}  // namespace retnet
