// The values of the Jinja subset (jinja.hpp): Python's None, bool, int, float, str, list and dict,
// Jinja's Undefined, and callables (builtins, macros, bound methods). Lists and dicts are shared
// (copies alias, as Python references do) so that namespace() attribute assignment is seen by every
// holder; nothing else mutates them (HF renders in an immutable sandbox: no list.append).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "retnet/error.hpp"

namespace retnet::serve::jinja {

class Renderer;
struct Value;
using Array = std::vector<Value>;
using KwArgs = std::vector<std::pair<std::string, Value>>;
// A builtin, macro or bound method: positional and keyword arguments in, a value out.
using Function = std::function<Value(Renderer&, std::vector<Value>&, KwArgs&)>;

// The work left to a render: every evaluation step and every element a walk over a value visits
// (equality, repr, tojson) takes one unit, so that a list shared many times over (a DAG of 2^64
// paths, built in 64 cheap steps) cannot hang a render.
struct Budget {
  uint64_t left = 0;
  void take(uint64_t n = 1);  // RenderError once spent
};

// A dict with string keys in insertion order (Python's dict order, which tojson and items() show).
struct Object {
  std::vector<std::pair<std::string, Value>> items;
  bool is_namespace = false;  // namespace(): the only object a template may assign attributes to
  const Value* find(const std::string& key) const;
  void set(const std::string& key, Value v);
};

// Raised by the template itself (raise_exception(msg)): the request's fault, a 400.
struct RaisedError : Error {
  using Error::Error;
};
// Anything else that stops a render (a type error, an undefined attribute, a limit): the template's
// fault, a 500. Messages name the template's line.
struct RenderError : Error {
  using Error::Error;
};

struct Value {
  enum class Kind { Undefined, None, Bool, Int, Float, String, Array, Object, Function };
  Kind kind = Kind::Undefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::shared_ptr<const std::string> s;  // String (shared: values are copied freely)
  std::shared_ptr<const Array> a;
  std::shared_ptr<Object> o;
  std::shared_ptr<const Function> fn;
  std::string name;  // Undefined: what was looked up, for error messages; Function: its name
  // Lists and dicts: how deep they nest (bounded by kMaxValueDepth, so that walks and destructors
  // recurse boundedly), and whether a namespace is inside (a namespace may not hold one: no cycles).
  int depth = 0;
  bool has_ns = false;
  static constexpr int kMaxValueDepth = 100;

  static Value undefined(std::string what) {
    Value v;
    v.name = std::move(what);
    return v;
  }
  static Value none() { return make(Kind::None); }
  static Value boolean(bool x) {
    Value v = make(Kind::Bool);
    v.b = x;
    return v;
  }
  static Value integer(int64_t x) {
    Value v = make(Kind::Int);
    v.i = x;
    return v;
  }
  static Value number(double x) {
    Value v = make(Kind::Float);
    v.f = x;
    return v;
  }
  static Value string(std::string x) {
    Value v = make(Kind::String);
    v.s = std::make_shared<const std::string>(std::move(x));
    return v;
  }
  // Throw RenderError for values nesting deeper than kMaxValueDepth.
  static Value array(Array x);
  static Value object(Object x);
  static Value function(std::string fname, Function f) {
    Value v = make(Kind::Function);
    v.fn = std::make_shared<const Function>(std::move(f));
    v.name = std::move(fname);
    return v;
  }

  bool is_undefined() const { return kind == Kind::Undefined; }
  bool is_none() const { return kind == Kind::None; }
  bool is_string() const { return kind == Kind::String; }
  bool is_number() const { return kind == Kind::Int || kind == Kind::Float || kind == Kind::Bool; }
  bool is_array() const { return kind == Kind::Array; }
  bool is_object() const { return kind == Kind::Object; }
  const std::string& str() const { return *s; }
  double as_double() const { return kind == Kind::Float ? f : double(kind == Kind::Bool ? int64_t(b) : i); }

 private:
  static Value make(Kind k) {
    Value v;
    v.kind = k;
    return v;
  }
};

// Python's truth value (Undefined is false).
bool truthy(const Value& v);
// Python's == (1 == 1.0 == True; lists and dicts element-wise).
bool equal(const Value& a, const Value& b, Budget& budget);
// Python's str() as Jinja's output shows it: None → "None", True → "True", 1.0 → "1.0", a list
// → its repr ("['a', 1]"), Undefined → "". RenderError beyond max_bytes.
std::string to_str(const Value& v, Budget& budget, size_t max_bytes);
// Python's repr() (strings quoted as Python quotes them).
std::string repr(const Value& v, Budget& budget, size_t max_bytes);
// json.dumps(v, ensure_ascii=False, indent=indent, sort_keys=False) as HF's tojson filter calls it
// (indent < 0: None, the one-line form with ", " and ": " separators).
std::string to_json(const Value& v, int indent, Budget& budget, size_t max_bytes);
// The type's name as Python names it ("str", "list", ...), for error messages.
const char* type_name(const Value& v);
// Python's float repr (shortest round-trip, "1e+16", "inf").
std::string float_repr(double x);
// Number of Unicode code points in UTF-8 text (Python's len of a str).
size_t utf8_length(const std::string& s);

}  // namespace retnet::serve::jinja
