// retnet._retnet: the native half of the Python package (nanobind). The Python half (python/retnet/*.py)
// checks and converts arguments, holds the docstrings and gives the classes their Pythonic shape; this
// module only maps the library's public API (include/retnet) onto Python objects, releasing the GIL
// around everything that computes. This file: the module, errors, arrays, Model and Tokenizer.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstring>

#include "binding.hpp"
#include "retnet/system.hpp"

namespace retnet::py {

nb::object copy_floats(std::span<const float> data, std::initializer_list<size_t> shape) {
  // The array owns a heap copy, freed by the capsule when numpy drops the array.
  auto* buf = new float[data.size()];
  std::memcpy(buf, data.data(), data.size() * sizeof(float));
  nb::capsule owner(buf, [](void* p) noexcept { delete[] static_cast<float*>(p); });
  return nb::cast(nb::ndarray<nb::numpy, float>(buf, shape, owner));
}

nb::object view_floats(std::span<const float> data, std::initializer_list<size_t> shape, nb::handle owner) {
  // const float: numpy marks the array read-only (writing to it would change the session's buffer).
  return nb::cast(nb::ndarray<nb::numpy, const float>(data.data(), shape, owner));
}

PendingPyError::~PendingPyError() {
  if (!pending()) return;
  nb::gil_scoped_acquire gil;
  Py_XDECREF(type_);
  Py_XDECREF(value_);
  Py_XDECREF(trace_);
}

void PendingPyError::capture() {
  if (pending()) {  // keep the first one
    PyErr_Clear();
    return;
  }
  PyErr_Fetch(&type_, &value_, &trace_);
}

void PendingPyError::rethrow() {
  if (!pending()) return;
  PyErr_Restore(type_, value_, trace_);
  type_ = value_ = trace_ = nullptr;
  throw nb::python_error();
}

namespace {
unsigned long g_main_thread_ident = 0;  // threading.main_thread().ident, read at import
}  // namespace

InterruptCheck::InterruptCheck() { main_thread_ = PyThread_get_thread_ident() == g_main_thread_ident; }

bool InterruptCheck::interrupted() {
  if (!main_thread_) return false;
  if (err_.pending()) return true;
  nb::gil_scoped_acquire gil;
  if (PyErr_CheckSignals() != 0) err_.capture();
  return err_.pending();
}

Mode parse_mode(const std::string& s) {
  if (s == "parallel") return Mode::Parallel;
  if (s == "recurrent") return Mode::Recurrent;
  if (s == "chunkwise") return Mode::Chunkwise;
  throw Error("mode: '" + s + "' is not one of 'parallel', 'recurrent', 'chunkwise'");
}

namespace {

Device parse_device(const std::string& s) {
  if (s == "auto") return Device::Auto;
  if (s == "cpu") return Device::Cpu;
  if (s == "cuda") return Device::Cuda;
  throw Error("device: '" + s + "' is not one of 'auto', 'cpu', 'cuda'");
}

Angles parse_angles(const std::string& s) {
  if (s == "reference") return Angles::Reference;
  if (s == "exact") return Angles::Exact;
  throw Error("angles: '" + s + "' is not one of 'reference', 'exact'");
}

LoadOptions load_options(const std::string& device, int threads, const std::string& dtype, const std::string& angles,
                         bool check_weights, bool bf16_activations) {
  LoadOptions lo;
  lo.device = parse_device(device);
  if (threads < 0) throw Error("threads: must be >= 0 (0 = all hardware threads), got " + std::to_string(threads));
  lo.threads = threads;
  lo.dtype = dtype;
  lo.angles = parse_angles(angles);
  lo.check_weights = check_weights;
  lo.bf16_activations = bf16_activations;
  return lo;
}

// Runs `make` (Model::load or Model::random) with the GIL released. `progress` (None or a callable
// taking done, total and returning False to cancel) runs under the GIL; an exception it raises, or a
// Ctrl-C on the main thread, ends the load and is raised instead of the library's cancel Error.
template <class Make>
PyModel load_with_progress(LoadOptions lo, nb::object progress, std::string dir, Make make) {
  InterruptCheck ctrl_c;
  PendingPyError callback_error;
  if (!progress.is_none()) {
    lo.on_progress = [&](uint64_t done, uint64_t total) {
      nb::gil_scoped_acquire gil;
      try {
        nb::object r = progress(done, total);
        if (r.is(nb::bool_(false))) return false;
      } catch (nb::python_error& e) {
        e.restore();
        callback_error.capture();
        return false;
      }
      return true;
    };
  } else {
    lo.on_progress = [&](uint64_t, uint64_t) { return !ctrl_c.interrupted(); };
  }
  std::shared_ptr<const Model> model;
  try {
    nb::gil_scoped_release release;
    model = make(lo);
  } catch (const Error&) {
    callback_error.rethrow();
    ctrl_c.rethrow();
    throw;
  }
  return PyModel{std::move(model), std::move(dir)};
}

nb::dict info_dict(const ModelInfo& i) {
  nb::dict d;
  d["family"] = i.family;
  d["vocab_size"] = i.vocab_size;
  d["hidden_size"] = i.hidden_size;
  d["layers"] = i.layers;
  d["heads"] = i.heads;
  d["key_head_dim"] = i.key_head_dim;
  d["value_head_dim"] = i.value_head_dim;
  d["ffn_dim"] = i.ffn_dim;
  d["default_chunk_size"] = i.default_chunk_size;
  d["n_params"] = i.n_params;
  d["weight_bytes"] = i.weight_bytes;
  d["decode_weight_bytes"] = i.decode_weight_bytes;
  d["state_bytes"] = i.state_bytes;
  d["layer_matrix_params"] = i.layer_matrix_params;
  d["weight_dtype"] = i.weight_dtype;
  d["embedding_dtype"] = i.embedding_dtype;
  d["head_dtype"] = i.head_dtype;
  d["device"] = i.device;
  d["threads"] = i.threads;
  d["bf16_activations"] = i.bf16_activations;
  d["eos_token_ids"] = i.eos_token_ids;
  d["bos_token_id"] = i.bos_token_id;
  d["load_ms"] = i.load_ms;
  d["fingerprint"] = i.fingerprint;
  nb::dict g;
  g["do_sample"] = i.generation.do_sample;
  g["temperature"] = i.generation.temperature;
  g["top_k"] = i.generation.top_k;
  g["top_p"] = i.generation.top_p;
  d["generation"] = g;
  return d;
}

void bind_tokenizer(nb::module_& m) {
  nb::class_<Tokenizer>(m, "Tokenizer")
      .def_static(
          "load",
          [](const std::string& path) {
            nb::gil_scoped_release release;
            return Tokenizer::load(path);
          },
          nb::arg("path"))
      .def(
          "encode",
          [](const Tokenizer& t, nb::bytes text, bool add_special) {
            std::vector<int32_t> ids;
            {
              std::string_view sv(text.c_str(), text.size());
              nb::gil_scoped_release release;
              ids = t.encode(sv, add_special);
            }
            return ids;
          },
          nb::arg("text"), nb::arg("add_special"))
      .def(
          "decode",
          [](const Tokenizer& t, IdArray ids, bool skip_special) {
            std::string s;
            {
              nb::gil_scoped_release release;
              s = t.decode(ids_of(ids), skip_special);
            }
            return s;
          },
          nb::arg("ids"), nb::arg("skip_special"))
      .def(
          "token_bytes",
          [](const Tokenizer& t, int32_t id, bool first) {
            const std::string b = t.token_bytes(id, first);
            return nb::bytes(b.data(), b.size());
          },
          nb::arg("id"), nb::arg("first"))
      .def("token_text", &Tokenizer::token_text, nb::arg("id"))
      .def(
          "token_to_id", [](const Tokenizer& t, const std::string& s) { return t.token_to_id(s); }, nb::arg("token"))
      .def("is_special", &Tokenizer::is_special, nb::arg("id"))
      .def_prop_ro("vocab_size", &Tokenizer::vocab_size)
      .def_prop_ro("bos_id", &Tokenizer::bos_id)
      .def_prop_ro("eos_id", &Tokenizer::eos_id);
}

void bind_model_class(nb::module_& m) {
  nb::class_<PyModel>(m, "Model")
      .def_static(
          "load",
          [](const std::string& path, const std::string& device, int threads, const std::string& dtype,
             const std::string& angles, bool check_weights, bool bf16_activations, const std::string& quantize,
             nb::object progress) {
            LoadOptions lo = load_options(device, threads, dtype, angles, check_weights, bf16_activations);
            lo.quantize = quantize;
            return load_with_progress(std::move(lo), std::move(progress), path,
                                      [&](const LoadOptions& o) { return Model::load(path, o); });
          },
          nb::arg("path"), nb::arg("device"), nb::arg("threads"), nb::arg("dtype"), nb::arg("angles"),
          nb::arg("check_weights"), nb::arg("bf16_activations"), nb::arg("quantize"), nb::arg("progress").none())
      .def_static(
          "random",
          [](const std::string& family, int64_t vocab_size, int64_t hidden_size, int64_t layers, int64_t heads,
             int64_t value_dim, int64_t ffn_dim, const std::string& dtype, uint64_t seed, const std::string& device,
             int threads, const std::string& angles) {
            RandomModelSpec spec;
            spec.family = family;
            spec.vocab_size = vocab_size;
            spec.hidden_size = hidden_size;
            spec.layers = layers;
            spec.heads = heads;
            spec.value_dim = value_dim;
            spec.ffn_dim = ffn_dim;
            spec.dtype = dtype;
            spec.seed = seed;
            LoadOptions lo = load_options(device, threads, "", angles, false, false);
            return load_with_progress(std::move(lo), nb::none(), "",
                                      [&](const LoadOptions& o) { return Model::random(spec, o); });
          },
          nb::arg("family"), nb::arg("vocab_size"), nb::arg("hidden_size"), nb::arg("layers"), nb::arg("heads"),
          nb::arg("value_dim"), nb::arg("ffn_dim"), nb::arg("dtype"), nb::arg("seed"), nb::arg("device"),
          nb::arg("threads"), nb::arg("angles"))
      .def("info", [](const PyModel& pm) { return info_dict(pm.model->info()); })
      .def_prop_ro("dir", [](const PyModel& pm) { return pm.dir; });
}

}  // namespace

void bind_model(nb::module_& m) {
  bind_model_class(m);
  bind_tokenizer(m);
}

}  // namespace retnet::py

NB_MODULE(_retnet, m) {
  namespace nb = nanobind;
  using namespace retnet::py;
  m.doc() = "Native half of the retnet package: use `import retnet`, not this module.";
  // retnet::Error → retnet.Error (a RuntimeError), message unchanged.
  nb::exception<retnet::Error>(m, "Error", PyExc_RuntimeError);
  retnet::py::g_main_thread_ident =
      nb::cast<unsigned long>(nb::module_::import_("threading").attr("main_thread")().attr("ident"));
  bind_model(m);
  bind_session(m);
  bind_generate(m);
  bind_eval(m);
  m.def("set_log_level", [](const std::string& level) {
    using retnet::LogLevel;
    LogLevel l;
    if (level == "debug") l = LogLevel::Debug;
    else if (level == "info") l = LogLevel::Info;
    else if (level == "warn") l = LogLevel::Warn;
    else if (level == "error") l = LogLevel::Error;
    else if (level == "off") l = LogLevel::Off;
    else throw retnet::Error("log level: '" + level + "' is not one of debug, info, warn, error, off");
    retnet::set_log_level(l);
  });
  m.def("cuda_device_name", [] { return retnet::cuda_device_name(); });
  m.def("built_with_cuda", [] {
#ifdef RETNET_WITH_CUDA
    return true;
#else
    return false;
#endif
  });
}
