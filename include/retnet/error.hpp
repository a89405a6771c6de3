// retnet::Error — the one exception type the library throws.
#pragma once
#include <stdexcept>
#include <string>

#include "retnet/export.h"

namespace retnet {

// Thrown for every failure the library detects (bad files, bad arguments, resource limits).
// The message names the file, tensor, key or argument concerned and is one line.
class RETNET_API Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace retnet
