// What the four binding files of retnet._retnet share: the wrapped objects, the guard that keeps one
// thread at a time on a Session, array conversions and Ctrl-C checks. Public API of the library only.
#pragma once
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "retnet/retnet.hpp"

namespace retnet::py {

namespace nb = nanobind;

// Token ids as the Python layer passes them: a C-contiguous 1-D int32 numpy array (retnet/_ids.py
// converts and checks lists, other integer dtypes and shapes first, so these constraints only catch
// callers of the private module).
using IdArray = nb::ndarray<const int32_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
inline std::span<const int32_t> ids_of(const IdArray& a) { return {a.data(), a.shape(0)}; }

// A loaded model and where it came from (the Python Model loads its tokenizer from `dir` on demand).
struct PyModel {
  std::shared_ptr<const Model> model;
  std::string dir;  // "" for random models
};

// One Session plus a flag that makes a second thread's call on it fail with Error instead of racing
// (the library's Session is not thread-safe; a race would corrupt the state or crash). A streaming
// generate holds the flag until the stream ends.
struct PySession {
  explicit PySession(std::shared_ptr<const Model> m) : session(std::move(m)) {}
  explicit PySession(Session&& s) : session(std::move(s)) {}
  Session session;
  std::atomic<bool> busy{false};
};

// Holds PySession::busy for one call; throws Error when another call (another thread, or a stream
// still running) has it.
class BusyGuard {
 public:
  explicit BusyGuard(PySession& s) : s_(&s) {
    bool expected = false;
    if (!s.busy.compare_exchange_strong(expected, true))
      throw Error(
          "Session: in use by another call (another thread, or a generate(stream=True) that has not finished: "
          "exhaust or close it first); use one Session per thread");
  }
  BusyGuard(BusyGuard&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
  BusyGuard(const BusyGuard&) = delete;
  BusyGuard& operator=(const BusyGuard&) = delete;
  BusyGuard& operator=(BusyGuard&&) = delete;
  ~BusyGuard() {
    if (s_) s_->busy.store(false);
  }

 private:
  PySession* s_;
};

// float32 numpy arrays. `copy_floats`: an array that owns a copy. `view_floats`: a read-only array over
// memory kept alive by `owner` (no copy).
nb::object copy_floats(std::span<const float> data, std::initializer_list<size_t> shape);
nb::object view_floats(std::span<const float> data, std::initializer_list<size_t> shape, nb::handle owner);

// A Python exception raised inside a callback that runs while the GIL is released (a progress
// function, a signal handler): the callback captures it and tells the library to stop; once the call
// is back under the GIL, rethrow() raises it instead of the library's "cancelled" Error.
class PendingPyError {
 public:
  PendingPyError() = default;
  PendingPyError(const PendingPyError&) = delete;
  PendingPyError& operator=(const PendingPyError&) = delete;
  ~PendingPyError();  // drops an exception never rethrown (GIL taken for it)
  void capture();     // GIL held, a Python error set: takes it (clears the error indicator)
  bool pending() const { return type_ != nullptr; }
  void rethrow();  // GIL held: raises the captured exception, if any (throws nb::python_error)

 private:
  PyObject *type_ = nullptr, *value_ = nullptr, *trace_ = nullptr;
};

// Ctrl-C while compute runs with the GIL released: a call made on the main thread checks for
// pending signals from its progress/token callbacks (taking the GIL for a moment; only on the main
// thread, the only one Python runs signal handlers on, so other threads never wait for the GIL) and
// stops the computation when a handler raised (KeyboardInterrupt), which rethrow() then raises.
class InterruptCheck {
 public:
  InterruptCheck();                   // GIL held
  bool interrupted();                 // GIL released, from a callback: true once a signal handler raised
  void rethrow() { err_.rethrow(); }  // GIL held

 private:
  bool main_thread_ = false;
  PendingPyError err_;
};

Mode parse_mode(const std::string& s);

void bind_model(nb::module_& m);
void bind_session(nb::module_& m);
void bind_generate(nb::module_& m);
void bind_eval(nb::module_& m);

}  // namespace retnet::py
