// Helpers shared by the builtins of the Jinja subset (jinja_builtins.cpp: filters, tests, globals;
// jinja_methods.cpp: str and dict methods, attribute and item access): Python's str operations on
// UTF-8 text, and Python-style argument binding.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "jinja_render.hpp"

namespace retnet::serve::jinja {

inline constexpr const char* kSpace = " \t\n\r\f\v";  // what str.strip() and str.split() strip (ASCII)

// Byte offsets of the code points of UTF-8 text: code point k is s[offs[k], offs[k+1]); offs.back() == size.
std::vector<size_t> cp_offsets(const std::string& s);
// f applied to ASCII bytes only (upper/lower of ASCII letters).
std::string ascii_map(std::string s, int (*f)(int));
std::string capitalize(const std::string& s);
std::string title(const std::string& s);
std::string strip(const std::string& s, const std::string& chars, bool left, bool right);
// str.replace(from, to, count) (count < 0: all), failing past the output limit.
std::string replace_all(Renderer& r, const std::string& s, const std::string& from, const std::string& to,
                        int64_t count);
// str.split(sep, maxsplit) / str.rsplit (sep None or Undefined: runs of whitespace).
Array split(const std::string& s, const Value& sep, int64_t maxsplit, bool right);
// "'name'" for an Undefined, "a <type>" otherwise, for error messages.
std::string pretty_name(const Value& v);
// A dict's method bound to it ("items", "keys", "values", "get"), or Undefined.
Value dict_method(const Value& self, const std::string& name);

// Arguments by position or name, as Python binds them.
struct Args {
  Renderer& r;
  const std::string& fname;
  std::vector<Value>& pos;
  KwArgs& kw;
  Value get(size_t i, const char* name, Value def = Value::undefined("")) const {
    for (const auto& kv : kw)
      if (kv.first == name) return kv.second;
    if (i < pos.size()) return pos[i];
    return def;
  }
  void at_most(size_t n) const {
    if (pos.size() > n)
      r.fail(fname + ": takes at most " + std::to_string(n) + " arguments, got " + std::to_string(pos.size()));
  }
  const std::string& string(const Value& v, const char* what) const {
    if (!v.is_string()) r.fail(fname + ": " + what + " must be a string, got a " + type_name(v));
    return v.str();
  }
  int64_t integer(const Value& v, const char* what) const {
    if (v.kind == Value::Kind::Int) return v.i;
    if (v.kind == Value::Kind::Bool) return v.b;
    r.fail(fname + ": " + what + " must be an integer, got a " + type_name(v));
  }
};

}  // namespace retnet::serve::jinja
