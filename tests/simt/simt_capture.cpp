// Stream capture in the SIMT emulator (simt.hpp): work is recorded per host thread while a capture is
// open and replayed in order later, which is what CUDA graphs do with a stream's work.
#include "simt.hpp"

namespace simt {

namespace {
thread_local std::unique_ptr<Graph> g_capture;
}

void begin_capture() {
  if (g_capture) throw Error("simt: begin_capture while this thread is already capturing");
  g_capture = std::make_unique<Graph>();
}

std::unique_ptr<Graph> end_capture() {
  if (!g_capture) throw Error("simt: end_capture without a capture");
  return std::move(g_capture);
}

bool capturing() { return g_capture != nullptr; }

void submit(std::function<void()> work) {
  if (g_capture) g_capture->work_.push_back(std::move(work));
  else work();
}

void Graph::replay() const {
  if (g_capture) throw Error("simt: a graph cannot be replayed into a capture");
  for (const auto& w : work_) w();
}

}  // namespace simt
