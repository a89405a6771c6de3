// str and dict methods, attribute and item access, iteration of the Jinja subset (jinja_builtins.hpp),
// and the str helpers the filters share (jinja_builtins_util.hpp). Strings are UTF-8; case changes
// and strip() work on ASCII only (chat templates strip spaces and newlines).
#include <algorithm>
#include <cctype>
#include <functional>

#include "jinja_builtins.hpp"
#include "jinja_builtins_util.hpp"

namespace retnet::serve::jinja {

// Code points of UTF-8 text as byte offsets: begin of code point k is offs[k]; offs.back() == size.
std::vector<size_t> cp_offsets(const std::string& s) {
  std::vector<size_t> offs;
  for (size_t k = 0; k < s.size(); ++k)
    if ((static_cast<unsigned char>(s[k]) & 0xC0) != 0x80) offs.push_back(k);
  offs.push_back(s.size());
  return offs;
}

std::string ascii_map(std::string s, int (*f)(int)) {
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x80) c = char(f(static_cast<unsigned char>(c)));
  return s;
}

std::string capitalize(const std::string& s) {
  std::string r = ascii_map(s, [](int c) { return std::tolower(c); });
  if (!r.empty() && static_cast<unsigned char>(r[0]) < 0x80)
    r[0] = char(std::toupper(static_cast<unsigned char>(r[0])));
  return r;
}

std::string title(const std::string& s) {
  std::string r = s;
  bool prev_alpha = false;
  for (char& c : r) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x80 && std::isalpha(u)) {
      c = char(prev_alpha ? std::tolower(u) : std::toupper(u));
      prev_alpha = true;
    } else {
      prev_alpha = u >= 0x80;  // letters outside ASCII continue a word
    }
  }
  return r;
}

std::string strip(const std::string& s, const std::string& chars, bool left, bool right) {
  size_t b = 0, e = s.size();
  if (left) b = s.find_first_not_of(chars);
  if (b == std::string::npos) return "";
  if (right) e = s.find_last_not_of(chars) + 1;
  return s.substr(b, e - b);
}

std::string replace_all(Renderer& r, const std::string& s, const std::string& from, const std::string& to,
                        int64_t count) {
  std::string out;
  size_t pos = 0;
  int64_t n = 0;
  if (from.empty()) {
    // Python inserts `to` between characters and at both ends.
    const auto offs = cp_offsets(s);
    for (size_t k = 0; k + 1 < offs.size() && (count < 0 || n < count); ++k, ++n) {
      out += to;
      out += s.substr(offs[k], offs[k + 1] - offs[k]);
      pos = offs[k + 1];
      if (out.size() > r.limits().max_output) r.fail("replace: the result is longer than the output limit");
    }
    if (count < 0 || n < count) out += to;
    return out + s.substr(pos);
  }
  while (count < 0 || n < count) {
    const size_t f = s.find(from, pos);
    if (f == std::string::npos) break;
    out.append(s, pos, f - pos);
    out += to;
    pos = f + from.size();
    ++n;
    if (out.size() > r.limits().max_output) r.fail("replace: the result is longer than the output limit");
  }
  return out + s.substr(pos);
}

Array split(const std::string& s, const Value& sep, int64_t maxsplit, bool right) {
  Array out;
  std::vector<std::string> parts;
  if (sep.is_none() || sep.is_undefined()) {
    // Runs of whitespace separate; leading and trailing whitespace gives no empty parts.
    if (!right) {
      size_t pos = s.find_first_not_of(kSpace);
      while (pos != std::string::npos) {
        if (maxsplit >= 0 && int64_t(parts.size()) == maxsplit) {
          parts.push_back(strip(s.substr(pos), kSpace, false, true));
          break;
        }
        const size_t e = s.find_first_of(kSpace, pos);
        parts.push_back(s.substr(pos, e == std::string::npos ? std::string::npos : e - pos));
        pos = e == std::string::npos ? e : s.find_first_not_of(kSpace, e);
      }
    } else {
      std::string rest = strip(s, kSpace, false, true);
      while (!rest.empty()) {
        if (maxsplit >= 0 && int64_t(parts.size()) == maxsplit) {
          parts.push_back(strip(rest, kSpace, true, false));
          break;
        }
        const size_t e = rest.find_last_of(kSpace);
        parts.push_back(e == std::string::npos ? rest : rest.substr(e + 1));
        rest = e == std::string::npos ? "" : strip(rest.substr(0, e), kSpace, false, true);
      }
      std::reverse(parts.begin(), parts.end());
    }
  } else {
    const std::string& d = sep.str();
    if (!right) {
      size_t pos = 0;
      while (maxsplit < 0 || int64_t(parts.size()) < maxsplit) {
        const size_t f = s.find(d, pos);
        if (f == std::string::npos) break;
        parts.push_back(s.substr(pos, f - pos));
        pos = f + d.size();
      }
      parts.push_back(s.substr(pos));
    } else {
      size_t end = s.size();
      while (maxsplit < 0 || int64_t(parts.size()) < maxsplit) {
        if (end < d.size()) break;
        const size_t f = s.rfind(d, end - d.size());
        if (f == std::string::npos) break;
        parts.push_back(s.substr(f + d.size(), end - f - d.size()));
        end = f;
      }
      parts.push_back(s.substr(0, end));
      std::reverse(parts.begin(), parts.end());
    }
  }
  for (auto& p : parts) out.push_back(Value::string(std::move(p)));
  return out;
}

// Arguments by position or name, as Python binds them.

std::string pretty_name(const Value& v) {
  return v.is_undefined() ? "'" + v.name + "'" : std::string("a ") + type_name(v);
}

namespace {

Value method(const std::string& mname, Value self, std::function<Value(Args&)> f) {
  return Value::function(
      mname, [self = std::move(self), mname, f = std::move(f)](Renderer& r, std::vector<Value>& pos, KwArgs& kw) {
        Args a{r, mname, pos, kw};
        return f(a);
      });
}

Value string_method(const Value& self, const std::string& name) {
  const std::string& s = self.str();
  const auto strip_method = [&](bool left, bool right) {
    return method(name, self, [s, left, right](Args& a) {
      a.at_most(1);
      const Value chars = a.get(0, "chars");
      const std::string set = chars.is_string() ? chars.str() : kSpace;
      return a.r.make_string(strip(s, set, left, right));
    });
  };
  if (name == "strip") return strip_method(true, true);
  if (name == "lstrip") return strip_method(true, false);
  if (name == "rstrip") return strip_method(false, true);
  if (name == "startswith" || name == "endswith") {
    const bool start = name == "startswith";
    return method(name, self, [s, start](Args& a) {
      a.at_most(1);
      const Value p = a.get(0, "prefix");
      Array cands = p.is_array() ? *p.a : Array{p};
      for (const Value& c : cands) {
        const std::string& x = a.string(c, "the prefix");
        if (x.size() <= s.size() &&
            (start ? s.compare(0, x.size(), x) : s.compare(s.size() - x.size(), x.size(), x)) == 0)
          return Value::boolean(true);
      }
      return Value::boolean(false);
    });
  }
  if (name == "split" || name == "rsplit") {
    const bool right = name == "rsplit";
    return method(name, self, [s, right](Args& a) {
      a.at_most(2);
      const Value sep = a.get(0, "sep", Value::none());
      if (!sep.is_none() && (!sep.is_string() || sep.str().empty()))
        a.r.fail("split: the separator must be a non-empty string");
      const Value m = a.get(1, "maxsplit", Value::integer(-1));
      a.r.step(s.size() / 16);
      return Value::array(split(s, sep, a.integer(m, "maxsplit"), right));
    });
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
    return method(name, self, [s, name](Args& a) {
      a.at_most(0);
      if (name == "upper") return a.r.make_string(ascii_map(s, [](int c) { return std::toupper(c); }));
      if (name == "lower") return a.r.make_string(ascii_map(s, [](int c) { return std::tolower(c); }));
      if (name == "title") return a.r.make_string(title(s));
      return a.r.make_string(capitalize(s));
    });
  }
  if (name == "replace") {
    return method(name, self, [s](Args& a) {
      a.at_most(3);
      const std::string& from = a.string(a.get(0, "old"), "old");
      const std::string& to = a.string(a.get(1, "new"), "new");
      const int64_t count = a.integer(a.get(2, "count", Value::integer(-1)), "count");
      return a.r.make_string(replace_all(a.r, s, from, to, count));
    });
  }
  if (name == "find" || name == "rfind" || name == "count") {
    return method(name, self, [s, name](Args& a) {
      a.at_most(1);
      const std::string& sub = a.string(a.get(0, "sub"), "the substring");
      a.r.step(s.size() / 16);
      const auto cp = [&](size_t byte) { return int64_t(utf8_length(s.substr(0, byte))); };
      if (name == "find") {
        const size_t f = s.find(sub);
        return Value::integer(f == std::string::npos ? -1 : cp(f));
      }
      if (name == "rfind") {
        const size_t f = s.rfind(sub);
        return Value::integer(f == std::string::npos ? -1 : cp(f));
      }
      if (sub.empty()) return Value::integer(int64_t(utf8_length(s)) + 1);
      int64_t n = 0;
      for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
      return Value::integer(n);
    });
  }
  if (name == "join") {
    return method(name, self, [s](Args& a) {
      a.at_most(1);
      std::string out;
      const Array items = iterate(a.r, a.get(0, "iterable"), "join");
      for (size_t k = 0; k < items.size(); ++k) {
        if (k) out += s;
        out += a.string(items[k], "each item");
        if (out.size() > a.r.limits().max_output) a.r.fail("join: the result is longer than the output limit");
      }
      return a.r.make_string(std::move(out));
    });
  }
  if (name == "isdigit" || name == "isspace" || name == "isalpha" || name == "isalnum" || name == "isupper" ||
      name == "islower") {
    return method(name, self, [s, name](Args& a) {
      a.at_most(0);
      if (s.empty()) return Value::boolean(false);
      bool any_cased = false, ok = true;
      for (unsigned char c : s) {
        if (name == "isdigit") ok = ok && std::isdigit(c);
        else if (name == "isspace") ok = ok && std::isspace(c);
        else if (name == "isalpha") ok = ok && std::isalpha(c);
        else if (name == "isalnum") ok = ok && std::isalnum(c);
        else if (name == "isupper") {
          ok = ok && !std::islower(c);
          any_cased = any_cased || std::isupper(c);
        } else {
          ok = ok && !std::isupper(c);
          any_cased = any_cased || std::islower(c);
        }
      }
      return Value::boolean(ok && (name == "isupper" || name == "islower" ? any_cased : true));
    });
  }
  return Value::undefined(name);
}

}  // namespace

Value dict_method(const Value& self, const std::string& name) {
  if (name == "items" || name == "keys" || name == "values") {
    return method(name, self, [self, name](Args& a) {
      a.at_most(0);
      a.r.step(self.o->items.size());
      Array out;
      for (const auto& kv : self.o->items) {
        if (name == "items") out.push_back(Value::array({Value::string(kv.first), kv.second}));
        else if (name == "keys") out.push_back(Value::string(kv.first));
        else out.push_back(kv.second);
      }
      return Value::array(std::move(out));
    });
  }
  if (name == "get") {
    return method(name, self, [self](Args& a) {
      a.at_most(2);
      const Value key = a.get(0, "key");
      const Value* v = key.is_string() ? self.o->find(key.str()) : nullptr;
      return v ? *v : a.get(1, "default", Value::none());
    });
  }
  return Value::undefined(name);
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) out += char(cp);
  else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

Array iterate(Renderer& r, const Value& v, const char* what) {
  switch (v.kind) {
    case Value::Kind::Undefined:
      return {};
    case Value::Kind::Array:
      r.step(v.a->size());
      return *v.a;
    case Value::Kind::Object: {
      r.step(v.o->items.size());
      Array keys;
      for (const auto& kv : v.o->items) keys.push_back(Value::string(kv.first));
      return keys;
    }
    case Value::Kind::String: {
      const auto offs = cp_offsets(v.str());
      r.step(offs.size());
      Array chars;
      for (size_t k = 0; k + 1 < offs.size(); ++k)
        chars.push_back(Value::string(v.str().substr(offs[k], offs[k + 1] - offs[k])));
      return chars;
    }
    default:
      r.fail(std::string(what) + ": a " + type_name(v) + " is not iterable");
  }
}

Value get_attr(Renderer& r, const Value& obj, const std::string& name) {
  (void)r;
  if (obj.is_object()) {
    Value m = dict_method(obj, name);
    if (!m.is_undefined()) return m;
    if (const Value* v = obj.o->find(name)) return *v;
    return Value::undefined(name);
  }
  if (obj.is_string()) return string_method(obj, name);
  return Value::undefined(name);
}

Value get_item(Renderer& r, const Value& obj, const Value& key) {
  if (obj.is_object()) {
    if (key.is_string()) {
      if (const Value* v = obj.o->find(key.str())) return *v;
      return get_attr(r, obj, key.str());
    }
    return Value::undefined(r.str(key));
  }
  if ((obj.is_array() || obj.is_string()) && (key.kind == Value::Kind::Int || key.kind == Value::Kind::Bool)) {
    int64_t k = key.kind == Value::Kind::Bool ? key.b : key.i;
    if (obj.is_array()) {
      const int64_t n = int64_t(obj.a->size());
      if (k < 0) k += n;
      if (k < 0 || k >= n) return Value::undefined("an index out of range");
      return (*obj.a)[size_t(k)];
    }
    const auto offs = cp_offsets(obj.str());
    const int64_t n = int64_t(offs.size()) - 1;
    if (k < 0) k += n;
    if (k < 0 || k >= n) return Value::undefined("an index out of range");
    return Value::string(obj.str().substr(offs[size_t(k)], offs[size_t(k) + 1] - offs[size_t(k)]));
  }
  if (obj.is_string() && key.is_string()) return string_method(obj, key.str());
  return Value::undefined("an item of " + pretty_name(obj));
}

}  // namespace retnet::serve::jinja
