// `retnet serve` in a build without cpp-httplib (CMake found no libcpp-httplib-dev): the command
// exists and says what is missing.
#include "serve.hpp"

namespace retnet::serve {

bool serve_available() { return false; }

int run_serve(const ServeOptions&) {
  throw Error(
      "serve: this build has no HTTP server: cpp-httplib was not found when it was configured (install "
      "libcpp-httplib-dev, e.g. with tools/install-deps.sh, and configure again)");
}

}  // namespace retnet::serve
