// retnet._retnet.Session: prefill/decode returning numpy logits, decode_batch, state snapshots.
// Every call holds the session's BusyGuard and releases the GIL while it computes.
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <algorithm>

#include "binding.hpp"

namespace retnet::py {

namespace {

// The logits `lg` of `s` as numpy: a copy, or (copy = false) a read-only view into the session's own
// buffer that keeps the session alive and is overwritten by its next prefill/decode/reset/load_state.
nb::object logits_array(PySession& s, std::span<const float> lg, size_t rows, bool copy) {
  const size_t V = size_t(s.session.model().info().vocab_size);
  if (rows == 0) {  // [V]
    if (copy) return copy_floats(lg, {V});
    return view_floats(lg, {V}, nb::find(&s));
  }
  if (copy) return copy_floats(lg, {rows, V});
  return view_floats(lg, {rows, V}, nb::find(&s));
}

nb::object prefill(PySession& s, IdArray ids, const std::string& mode, int64_t chunk_size, bool all_logits, bool copy) {
  BusyGuard busy(s);
  PrefillOptions po;
  po.mode = parse_mode(mode);
  po.chunk_size = chunk_size;
  po.all_logits = all_logits;
  InterruptCheck ctrl_c;
  po.on_progress = [&](int64_t, int64_t) { return !ctrl_c.interrupted(); };
  std::span<const float> lg;
  {
    nb::gil_scoped_release release;
    lg = s.session.prefill(ids_of(ids), po);
  }
  ctrl_c.rethrow();  // a Ctrl-C stopped it between blocks (whole blocks absorbed, as documented)
  return logits_array(s, lg, all_logits ? ids.shape(0) : 0, copy);
}

nb::object decode(PySession& s, int32_t id, bool copy) {
  BusyGuard busy(s);
  std::span<const float> lg;
  {
    nb::gil_scoped_release release;
    lg = s.session.decode(id);
  }
  return logits_array(s, lg, 0, copy);
}

nb::object last_logits(PySession& s, bool copy) {
  BusyGuard busy(s);
  std::span<const float> lg = s.session.logits();
  if (lg.empty()) return nb::none();
  const size_t V = size_t(s.session.model().info().vocab_size);
  return logits_array(s, lg, lg.size() == V ? 0 : lg.size() / V, copy);
}

// [B, V] logits of one batched step (a copy: B sessions' rows live in B buffers).
nb::object decode_batch(std::vector<PySession*> sessions, IdArray ids) {
  for (PySession* p : sessions)
    if (!p) throw Error("decode_batch: sessions must be retnet.Session objects, got None");
  // One guard per distinct session: the library reports a session listed twice itself.
  std::vector<PySession*> distinct = sessions;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  std::vector<BusyGuard> guards;
  guards.reserve(distinct.size());
  for (PySession* p : distinct) guards.emplace_back(*p);
  std::vector<Session*> raw;
  raw.reserve(sessions.size());
  for (PySession* p : sessions) raw.push_back(&p->session);
  {
    nb::gil_scoped_release release;
    Session::decode_batch(raw, ids_of(ids));
  }
  if (sessions.empty()) return copy_floats({}, {0, 0});
  const size_t V = size_t(raw[0]->model().info().vocab_size);
  std::vector<float> all(sessions.size() * V);
  for (size_t b = 0; b < raw.size(); ++b) std::copy_n(raw[b]->logits().data(), V, all.begin() + b * V);
  return copy_floats(all, {sessions.size(), V});
}

nb::dict stats_dict(const SessionStats& st) {
  nb::dict d;
  d["prompt_tokens"] = st.prompt_tokens;
  d["eval_tokens"] = st.eval_tokens;
  d["prompt_ms"] = st.prompt_ms;
  d["eval_ms"] = st.eval_ms;
  d["load_ms"] = st.load_ms;
  return d;
}

}  // namespace

void bind_session(nb::module_& m) {
  nb::class_<PySession>(m, "Session")
      .def(
          "__init__", [](PySession* self, const PyModel& pm) { new (self) PySession(pm.model); }, nb::arg("model"))
      .def("prefill", &prefill, nb::arg("ids"), nb::arg("mode"), nb::arg("chunk_size"), nb::arg("all_logits"),
           nb::arg("copy"))
      .def("decode", &decode, nb::arg("id"), nb::arg("copy"))
      .def("logits", &last_logits, nb::arg("copy"))
      .def("save_state",
           [](PySession& s) {
             BusyGuard busy(s);
             std::vector<uint8_t> b;
             {
               nb::gil_scoped_release release;
               b = s.session.save_state();
             }
             return nb::bytes(reinterpret_cast<const char*>(b.data()), b.size());
           })
      .def(
          "load_state",
          [](PySession& s, nb::bytes data) {
            BusyGuard busy(s);
            std::span<const uint8_t> view(reinterpret_cast<const uint8_t*>(data.c_str()), data.size());
            nb::gil_scoped_release release;  // `data` stays referenced by the caller's frame
            s.session.load_state(view);
          },
          nb::arg("data"))
      .def(
          "save_state_file",
          [](PySession& s, const std::string& path) {
            BusyGuard busy(s);
            nb::gil_scoped_release release;
            s.session.save_state_file(path);
          },
          nb::arg("path"))
      .def(
          "load_state_file",
          [](PySession& s, const std::string& path) {
            BusyGuard busy(s);
            nb::gil_scoped_release release;
            s.session.load_state_file(path);
          },
          nb::arg("path"))
      .def("clone",
           [](PySession& s) {
             BusyGuard busy(s);
             nb::gil_scoped_release release;
             return new PySession(s.session.clone());
           })
      .def("reset",
           [](PySession& s) {
             BusyGuard busy(s);
             s.session.reset();
           })
      .def_prop_ro("position",
                   [](PySession& s) {
                     BusyGuard busy(s);
                     return s.session.position();
                   })
      .def(
          "history_matches",
          [](PySession& s, IdArray ids) {
            BusyGuard busy(s);
            return s.session.history_matches(ids_of(ids));
          },
          nb::arg("ids"))
      .def("stats", [](PySession& s) {
        BusyGuard busy(s);
        return stats_dict(s.session.stats());
      });
  m.def("decode_batch", &decode_batch, nb::arg("sessions"), nb::arg("ids"));
}

}  // namespace retnet::py
