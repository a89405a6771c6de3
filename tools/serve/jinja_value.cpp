// Python semantics of the Jinja subset's values (jinja_value.hpp): truth, equality, str(), repr()
// and json.dumps as HF's tojson filter calls it.
#include "jinja_value.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace retnet::serve::jinja {

void Budget::take(uint64_t n) {
  if (n > left) {
    left = 0;
    throw RenderError("the template ran out of its step budget (a runaway loop or recursion?)");
  }
  left -= n;
}

namespace {
void nest(Value& v, const Value& child) {
  v.depth = std::max(v.depth, child.depth + 1);
  v.has_ns = v.has_ns || child.has_ns;
  if (v.depth > Value::kMaxValueDepth)
    throw RenderError("lists and dicts nest deeper than " + std::to_string(Value::kMaxValueDepth) + " levels");
}
}  // namespace

Value Value::array(Array x) {
  Value v = make(Kind::Array);
  v.depth = 1;
  for (const Value& c : x) nest(v, c);
  v.a = std::make_shared<const Array>(std::move(x));
  return v;
}

Value Value::object(Object x) {
  Value v = make(Kind::Object);
  v.depth = 1;
  v.has_ns = x.is_namespace;
  for (const auto& kv : x.items) nest(v, kv.second);
  v.o = std::make_shared<Object>(std::move(x));
  return v;
}

const Value* Object::find(const std::string& key) const {
  for (const auto& kv : items)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

void Object::set(const std::string& key, Value v) {
  for (auto& kv : items)
    if (kv.first == key) {
      kv.second = std::move(v);
      return;
    }
  items.emplace_back(key, std::move(v));
}

bool truthy(const Value& v) {
  switch (v.kind) {
    case Value::Kind::Undefined:
    case Value::Kind::None:
      return false;
    case Value::Kind::Bool:
      return v.b;
    case Value::Kind::Int:
      return v.i != 0;
    case Value::Kind::Float:
      return v.f != 0;
    case Value::Kind::String:
      return !v.s->empty();
    case Value::Kind::Array:
      return !v.a->empty();
    case Value::Kind::Object:
      return !v.o->items.empty();
    case Value::Kind::Function:
      return true;
  }
  return false;
}

bool equal(const Value& a, const Value& b, Budget& budget) {
  budget.take();
  if (a.is_number() && b.is_number()) {
    if (a.kind != Value::Kind::Float && b.kind != Value::Kind::Float)
      return (a.kind == Value::Kind::Bool ? int64_t(a.b) : a.i) == (b.kind == Value::Kind::Bool ? int64_t(b.b) : b.i);
    return a.as_double() == b.as_double();
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Value::Kind::Undefined:
    case Value::Kind::None:
      return true;
    case Value::Kind::String:
      return *a.s == *b.s;
    case Value::Kind::Array:
      if (a.a->size() != b.a->size()) return false;
      for (size_t i = 0; i < a.a->size(); ++i)
        if (!equal((*a.a)[i], (*b.a)[i], budget)) return false;
      return true;
    case Value::Kind::Object: {
      if (a.o->items.size() != b.o->items.size()) return false;
      for (const auto& kv : a.o->items) {
        const Value* o = b.o->find(kv.first);
        if (!o || !equal(kv.second, *o, budget)) return false;
      }
      return true;
    }
    case Value::Kind::Function:
      return a.fn == b.fn;
    default:
      return false;
  }
}

std::string float_repr(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  // The shortest %.*e that reads back as x, then laid out as Python's repr does: positional for
  // exponents in [-4, 16), scientific ("1e+16", "1.5e-05") outside, ".0" on integral values.
  char buf[40];
  int prec = 0;
  for (prec = 0; prec < 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*e", prec, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  std::string s = buf;
  const size_t e = s.find('e');
  std::string mant = s.substr(0, e);
  const int exp = std::atoi(s.c_str() + e + 1);
  bool neg = mant[0] == '-';
  if (neg) mant.erase(0, 1);
  std::string digits;
  for (char c : mant)
    if (c != '.') digits += c;
  std::string out;
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out = "0." + std::string(size_t(-exp - 1), '0') + digits;
    } else {
      if (digits.size() <= size_t(exp) + 1) digits += std::string(size_t(exp) + 1 - digits.size(), '0');
      out = digits.substr(0, size_t(exp) + 1);
      const std::string frac = digits.substr(size_t(exp) + 1);
      out += "." + (frac.empty() ? std::string("0") : frac);
    }
  } else {
    out = digits.substr(0, 1) + (digits.size() > 1 ? "." + digits.substr(1) : "");
    char eb[8];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    out += eb;
  }
  return neg ? "-" + out : out;
}

namespace {

std::string py_quote(const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos, has_double = s.find('"') != std::string::npos;
  const char q = has_single && !has_double ? '"' : '\'';
  std::string out(1, q);
  for (unsigned char c : s) {
    if (c == static_cast<unsigned char>(q) || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    } else out += char(c);
  }
  return out + q;
}

void json_string(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          out += b;
        } else out += char(c);  // ensure_ascii=False: UTF-8 passes through
    }
  }
  out += '"';
}

struct Sink {
  std::string out;
  Budget& budget;
  size_t max_bytes;
  void check() const {
    if (out.size() > max_bytes)
      throw RenderError("a value's text is longer than " + std::to_string(max_bytes) + " bytes");
  }
};

void json_dump(Sink& sk, const Value& v, int indent, int level) {
  sk.budget.take();
  sk.check();
  std::string& out = sk.out;
  const auto newline = [&](int lv) {
    if (indent < 0) return;
    out += '\n';
    out.append(size_t(indent) * size_t(lv), ' ');
  };
  switch (v.kind) {
    case Value::Kind::Undefined:
    case Value::Kind::None:
      out += "null";
      return;
    case Value::Kind::Bool:
      out += v.b ? "true" : "false";
      return;
    case Value::Kind::Int:
      out += std::to_string(v.i);
      return;
    case Value::Kind::Float:
      out += std::isnan(v.f) ? "NaN" : std::isinf(v.f) ? (v.f > 0 ? "Infinity" : "-Infinity") : float_repr(v.f);
      return;
    case Value::Kind::String:
      json_string(out, *v.s);
      return;
    case Value::Kind::Array: {
      if (v.a->empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t i = 0; i < v.a->size(); ++i) {
        if (i) out += indent < 0 ? ", " : ",";
        newline(level + 1);
        json_dump(sk, (*v.a)[i], indent, level + 1);
      }
      newline(level);
      out += ']';
      return;
    }
    case Value::Kind::Object: {
      if (v.o->items.empty()) {
        out += "{}";
        return;
      }
      out += '{';
      bool first = true;
      for (const auto& kv : v.o->items) {
        if (!first) out += indent < 0 ? ", " : ",";
        first = false;
        newline(level + 1);
        json_string(out, kv.first);
        out += ": ";
        json_dump(sk, kv.second, indent, level + 1);
      }
      newline(level);
      out += '}';
      return;
    }
    case Value::Kind::Function:
      throw RenderError("tojson: a " + std::string(type_name(v)) + " is not JSON serializable");
  }
}

}  // namespace

namespace {
void repr_into(Sink& sk, const Value& v, bool quote) {
  sk.budget.take();
  sk.check();
  switch (v.kind) {
    case Value::Kind::Undefined:
      return;
    case Value::Kind::None:
      sk.out += "None";
      return;
    case Value::Kind::Bool:
      sk.out += v.b ? "True" : "False";
      return;
    case Value::Kind::Int:
      sk.out += std::to_string(v.i);
      return;
    case Value::Kind::Float:
      sk.out += float_repr(v.f);
      return;
    case Value::Kind::String:
      sk.out += quote ? py_quote(*v.s) : *v.s;
      return;
    case Value::Kind::Function:
      sk.out += "<function " + v.name + ">";
      return;
    case Value::Kind::Array:
      sk.out += '[';
      for (size_t i = 0; i < v.a->size(); ++i) {
        if (i) sk.out += ", ";
        repr_into(sk, (*v.a)[i], true);
      }
      sk.out += ']';
      return;
    case Value::Kind::Object: {
      sk.out += '{';
      bool first = true;
      for (const auto& kv : v.o->items) {
        sk.out += (first ? "" : ", ") + py_quote(kv.first) + ": ";
        first = false;
        repr_into(sk, kv.second, true);
      }
      sk.out += '}';
      return;
    }
  }
}
}  // namespace

std::string repr(const Value& v, Budget& budget, size_t max_bytes) {
  Sink sk{{}, budget, max_bytes};
  repr_into(sk, v, true);
  sk.check();
  return std::move(sk.out);
}

std::string to_str(const Value& v, Budget& budget, size_t max_bytes) {
  if (v.kind == Value::Kind::String) return *v.s;
  Sink sk{{}, budget, max_bytes};
  repr_into(sk, v, false);
  sk.check();
  return std::move(sk.out);
}

std::string to_json(const Value& v, int indent, Budget& budget, size_t max_bytes) {
  Sink sk{{}, budget, max_bytes};
  json_dump(sk, v, indent, 0);
  sk.check();
  return std::move(sk.out);
}

const char* type_name(const Value& v) {
  switch (v.kind) {
    case Value::Kind::Undefined:
      return "Undefined";
    case Value::Kind::None:
      return "NoneType";
    case Value::Kind::Bool:
      return "bool";
    case Value::Kind::Int:
      return "int";
    case Value::Kind::Float:
      return "float";
    case Value::Kind::String:
      return "str";
    case Value::Kind::Array:
      return "list";
    case Value::Kind::Object:
      return "dict";
    case Value::Kind::Function:
      return "function";
  }
  return "?";
}

size_t utf8_length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

}  // namespace retnet::serve::jinja
