// Filters, tests and globals of the Jinja subset (jinja_builtins.hpp; str and dict methods:
// jinja_methods.cpp). Each does what jinja2 3.1 / Python 3 do for the types chat templates pass it,
// and fails with a RenderError naming itself for other types.
#include "jinja_builtins.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <ctime>
#include <map>
#include <optional>

#include "jinja_builtins_util.hpp"
#include "jinja_render.hpp"

namespace retnet::serve::jinja {

namespace {

int compare_values(Renderer& r, const Value& a, const Value& b, bool case_sensitive) {
  r.step();
  if (a.is_number() && b.is_number()) return a.as_double() < b.as_double() ? -1 : a.as_double() > b.as_double();
  if (a.is_string() && b.is_string()) {
    const std::string x = case_sensitive ? a.str() : ascii_map(a.str(), [](int c) { return std::tolower(c); });
    const std::string y = case_sensitive ? b.str() : ascii_map(b.str(), [](int c) { return std::tolower(c); });
    const int c = x.compare(y);
    return c < 0 ? -1 : c > 0;
  }
  r.fail(std::string("cannot compare a ") + type_name(a) + " with a " + type_name(b));
}

// attribute="a.b" of select/map/sort/...: item lookups, dot-separated, integers as indexes.
Value attribute_of(Renderer& r, const Value& v, const std::string& path) {
  Value cur = v;
  size_t pos = 0;
  while (true) {
    const size_t dot = path.find('.', pos);
    const std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    if (cur.is_undefined()) return cur;
    if (!part.empty() &&
        std::all_of(part.begin(), part.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }) &&
        cur.is_array())
      cur = get_item(r, cur, Value::integer(std::stoll(part.substr(0, 18))));
    else cur = get_item(r, cur, Value::string(part));
    if (dot == std::string::npos) return cur;
    pos = dot + 1;
  }
}

Value slice(Renderer& r, const Value& obj, const std::vector<Value>& parts) {
  const bool is_str = obj.is_string();
  if (!is_str && !obj.is_array()) r.fail(std::string("a ") + type_name(obj) + " cannot be sliced");
  std::vector<size_t> offs;
  int64_t n = 0;
  if (is_str) {
    offs = cp_offsets(obj.str());
    n = int64_t(offs.size()) - 1;
  } else n = int64_t(obj.a->size());
  const auto num = [&](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_undefined() || v.is_none()) return std::nullopt;
    if (v.kind != Value::Kind::Int) r.fail(std::string("slice ") + what + " must be an integer");
    return v.i;
  };
  const int64_t step = num(parts[2], "step").value_or(1);
  if (step == 0) r.fail("slice step cannot be zero");
  const auto clamp = [&](std::optional<int64_t> x, int64_t def) {
    if (!x) return def;
    int64_t v = *x;
    if (v < 0) v = std::max<int64_t>(v + n, step < 0 ? -1 : 0);
    else v = std::min<int64_t>(v, step < 0 ? n - 1 : n);
    return v;
  };
  const int64_t start = clamp(num(parts[0], "start"), step < 0 ? n - 1 : 0);
  const int64_t stop = clamp(num(parts[1], "stop"), step < 0 ? -1 : n);
  std::string s;
  Array a;
  for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) {
    r.step();
    if (is_str) s.append(obj.str(), offs[size_t(k)], offs[size_t(k) + 1] - offs[size_t(k)]);
    else a.push_back((*obj.a)[size_t(k)]);
  }
  return is_str ? r.make_string(std::move(s)) : Value::array(std::move(a));
}

}  // namespace

namespace {
const std::map<std::string, int>& filter_names() {
  static const std::map<std::string, int> names = [] {
    std::map<std::string, int> m;
    for (const char* n :
         {"abs",     "attr",    "capitalize", "count",  "d",      "default",    "dictsort",  "e",
          "escape",  "first",   "float",      "indent", "int",    "items",      "join",      "last",
          "length",  "list",    "lower",      "map",    "max",    "min",        "reject",    "rejectattr",
          "replace", "reverse", "round",      "safe",   "select", "selectattr", "sort",      "string",
          "sum",     "title",   "tojson",     "trim",   "unique", "upper",      "wordcount", "__slice__"})
      m[n] = 1;
    return m;
  }();
  return names;
}
const std::map<std::string, int>& test_names() {
  static const std::map<std::string, int> names = [] {
    std::map<std::string, int> m;
    for (const char* n :
         {"boolean",  "callable", "defined", "divisibleby", "eq",    "equalto",     "==",       "even",
          "false",    "float",    "ge",      "gt",          "in",    "integer",     "iterable", "le",
          "lower",    "lt",       "mapping", "ne",          "none",  "number",      "odd",      "sameas",
          "sequence", "string",   "true",    "undefined",   "upper", "greaterthan", "lessthan"})
      m[n] = 1;
    return m;
  }();
  return names;
}
}  // namespace

bool is_filter(const std::string& name) { return filter_names().count(name) > 0; }
bool is_test(const std::string& name) { return test_names().count(name) > 0; }

bool apply_test(Renderer& r, const std::string& name, const Value& v, std::vector<Value>& args) {
  const auto arg = [&]() -> const Value& {
    if (args.size() != 1) r.fail("test '" + name + "' takes one argument");
    return args[0];
  };
  const auto num = [&](const Value& x) {
    if (!x.is_number()) r.fail("test '" + name + "': expected a number, got " + pretty_name(x));
    return x;
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.kind == Value::Kind::Bool;
  if (name == "true") return v.kind == Value::Kind::Bool && v.b;
  if (name == "false") return v.kind == Value::Kind::Bool && !v.b;
  if (name == "integer") return v.kind == Value::Kind::Int;
  if (name == "float") return v.kind == Value::Kind::Float;
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_object();
  if (name == "iterable") return v.is_array() || v.is_object() || v.is_string();
  if (name == "sequence") return v.is_array() || v.is_object() || v.is_string();
  if (name == "callable") return v.kind == Value::Kind::Function;
  if (name == "lower") return v.is_string() && ascii_map(v.str(), [](int c) { return std::tolower(c); }) == v.str();
  if (name == "upper") return v.is_string() && ascii_map(v.str(), [](int c) { return std::toupper(c); }) == v.str();
  if (name == "even" || name == "odd") {
    const Value x = num(v);
    if (x.kind == Value::Kind::Float) r.fail("test '" + name + "': expected an integer");
    const int64_t i = x.kind == Value::Kind::Bool ? x.b : x.i;
    return (i % 2 == 0) == (name == "even");
  }
  if (name == "divisibleby") {
    const Value a = num(v), b = num(arg());
    if (b.as_double() == 0) r.fail("divisibleby 0");
    if (a.kind != Value::Kind::Float && b.kind != Value::Kind::Float) return (a.i % b.i) == 0;
    return std::fmod(a.as_double(), b.as_double()) == 0;
  }
  if (name == "eq" || name == "equalto" || name == "==") return r.eq(v, arg());
  if (name == "ne") return !r.eq(v, arg());
  if (name == "sameas") {
    const Value& b = arg();
    if (v.kind != b.kind) return false;
    if (v.kind == Value::Kind::None || v.kind == Value::Kind::Undefined) return true;
    if (v.kind == Value::Kind::Bool) return v.b == b.b;
    if (v.kind == Value::Kind::Int) return v.i == b.i && v.i >= -5 && v.i <= 256;  // CPython's cached ints
    return v.a == b.a && v.o == b.o && v.s == b.s && v.fn == b.fn;
  }
  if (name == "in") {
    std::vector<Value> one{arg()};
    KwArgs none;
    (void)none;
    const Value& c = one[0];
    if (c.is_string()) return v.is_string() && c.str().find(v.str()) != std::string::npos;
    if (c.is_object()) return v.is_string() && c.o->find(v.str());
    for (const Value& x : iterate(r, c, "test 'in'"))
      if (r.eq(v, x)) return true;
    return false;
  }
  // gt, ge, lt, le, greaterthan, lessthan
  const int c = compare_values(r, v, arg(), true);
  if (name == "gt" || name == "greaterthan") return c > 0;
  if (name == "ge") return c >= 0;
  if (name == "lt" || name == "lessthan") return c < 0;
  return c <= 0;
}

Value apply_filter(Renderer& r, const std::string& name, const Value& v, std::vector<Value>& pos, KwArgs& kw) {
  Args a{r, name, pos, kw};
  // String filters take any value as jinja2's do (soft_str: None → "None", Undefined → "").
  const auto need_string = [&]() { return r.str(v); };
  if (name == "__slice__") return slice(r, v, pos);
  if (name == "default" || name == "d") {
    a.at_most(2);
    const bool boolean = truthy(a.get(1, "boolean", Value::boolean(false)));
    if (v.is_undefined() || (boolean && !truthy(v))) return a.get(0, "default_value", Value::string(""));
    return v;
  }
  if (name == "length" || name == "count") {
    if (v.is_string()) return Value::integer(int64_t(utf8_length(v.str())));
    if (v.is_array()) return Value::integer(int64_t(v.a->size()));
    if (v.is_object()) return Value::integer(int64_t(v.o->items.size()));
    if (v.is_undefined()) return Value::integer(0);
    r.fail("filter 'length': a " + std::string(type_name(v)) + " has no length");
  }
  if (name == "string") return r.make_string(r.str(v));
  if (name == "safe" || name == "e" || name == "escape") {
    if (name == "safe") return v.is_string() ? v : r.make_string(r.str(v));
    std::string out;
    for (char c : r.str(v)) {
      switch (c) {
        case '&':
          out += "&amp;";
          break;
        case '<':
          out += "&lt;";
          break;
        case '>':
          out += "&gt;";
          break;
        case '"':
          out += "&#34;";
          break;
        case '\'':
          out += "&#39;";
          break;
        default:
          out += c;
      }
    }
    return r.make_string(std::move(out));
  }
  if (name == "tojson") {
    a.at_most(1);
    const Value ind = a.get(0, "indent", Value::none());
    int indent = -1;
    if (!ind.is_none()) indent = int(std::clamp<int64_t>(a.integer(ind, "indent"), 0, 64));
    for (const auto& kv : kw)
      if (kv.first != "indent" && kv.first != "ensure_ascii" && kv.first != "sort_keys" && kv.first != "separators")
        r.fail("tojson: unknown argument '" + kv.first + "'");
    if (truthy(a.get(9, "ensure_ascii")) || truthy(a.get(9, "sort_keys")) || truthy(a.get(9, "separators")))
      r.fail("tojson: ensure_ascii, sort_keys and separators are not supported");
    return r.make_string(to_json(v, indent, r.budget(), r.limits().max_output));
  }
  if (name == "trim") {
    a.at_most(1);
    const Value chars = a.get(0, "chars", Value::none());
    return r.make_string(strip(need_string(), chars.is_string() ? chars.str() : kSpace, true, true));
  }
  if (name == "upper") return r.make_string(ascii_map(need_string(), [](int c) { return std::toupper(c); }));
  if (name == "lower") return r.make_string(ascii_map(need_string(), [](int c) { return std::tolower(c); }));
  if (name == "capitalize") return r.make_string(capitalize(need_string()));
  if (name == "title") return r.make_string(title(need_string()));
  if (name == "replace") {
    a.at_most(3);
    const std::string s = r.str(v);
    return r.make_string(replace_all(r, s, a.string(a.get(0, "old"), "old"), a.string(a.get(1, "new"), "new"),
                                     a.integer(a.get(2, "count", Value::integer(-1)), "count")));
  }
  if (name == "wordcount") return Value::integer(int64_t(split(need_string(), Value::none(), -1, false).size()));
  if (name == "indent") {
    a.at_most(3);
    const Value w = a.get(0, "width", Value::integer(4));
    const std::string pad =
        w.is_string() ? w.str() : std::string(size_t(std::clamp<int64_t>(a.integer(w, "width"), 0, 256)), ' ');
    const bool first = truthy(a.get(1, "first", Value::boolean(false)));
    const bool blank = truthy(a.get(2, "blank", Value::boolean(false)));
    const std::string s = need_string();
    std::string out;
    size_t pos0 = 0;
    bool first_line = true;
    while (true) {
      const size_t nl = s.find('\n', pos0);
      const std::string line = s.substr(pos0, nl == std::string::npos ? std::string::npos : nl - pos0);
      if ((first_line ? first : true) && (blank || !strip(line, kSpace, true, true).empty())) out += pad;
      out += line;
      if (nl == std::string::npos) break;
      out += '\n';
      pos0 = nl + 1;
      first_line = false;
      if (out.size() > r.limits().max_output) r.fail("indent: the result is longer than the output limit");
    }
    return r.make_string(std::move(out));
  }
  if (name == "int") {
    a.at_most(2);
    if (v.kind == Value::Kind::Int) return v;
    if (v.kind == Value::Kind::Bool) return Value::integer(v.b);
    if (v.kind == Value::Kind::Float && std::isfinite(v.f) && std::fabs(v.f) < 9.2e18)
      return Value::integer(int64_t(v.f));
    if (v.is_string()) {
      const std::string t = strip(v.str(), kSpace, true, true);
      char* end = nullptr;
      errno = 0;
      const long long x = std::strtoll(t.c_str(), &end, 10);
      if (!t.empty() && end && *end == 0 && errno == 0) return Value::integer(x);
      const double d = std::strtod(t.c_str(), &end);
      if (!t.empty() && end && *end == 0 && std::isfinite(d) && std::fabs(d) < 9.2e18)
        return Value::integer(int64_t(d));
    }
    return a.get(0, "default", Value::integer(0));
  }
  if (name == "float") {
    a.at_most(1);
    if (v.is_number()) return Value::number(v.as_double());
    if (v.is_string()) {
      const std::string t = strip(v.str(), kSpace, true, true);
      char* end = nullptr;
      const double d = std::strtod(t.c_str(), &end);
      if (!t.empty() && end && *end == 0) return Value::number(d);
    }
    return a.get(0, "default", Value::number(0));
  }
  if (name == "abs") {
    if (v.kind == Value::Kind::Float) return Value::number(std::fabs(v.f));
    if (v.kind == Value::Kind::Int && v.i != INT64_MIN) return Value::integer(v.i < 0 ? -v.i : v.i);
    if (v.kind == Value::Kind::Bool) return Value::integer(v.b);
    r.fail("filter 'abs': expected a number, got " + pretty_name(v));
  }
  if (name == "round") {
    a.at_most(2);
    if (!v.is_number()) r.fail("filter 'round': expected a number, got " + pretty_name(v));
    const int64_t prec = std::clamp<int64_t>(a.integer(a.get(0, "precision", Value::integer(0)), "precision"), 0, 15);
    const Value m = a.get(1, "method", Value::string("common"));
    const double scale = std::pow(10.0, double(prec));
    const double x = v.as_double() * scale;
    const std::string& how = a.string(m, "method");
    double y = how == "ceil" ? std::ceil(x) : how == "floor" ? std::floor(x) : std::round(x);
    return Value::number(y / scale);
  }
  if (name == "items") {
    if (v.is_undefined()) return Value::array({});
    if (!v.is_object()) r.fail("filter 'items': expected a dict, got " + pretty_name(v));
    std::vector<Value> none;
    KwArgs nk;
    Value m = dict_method(v, "items");
    return r.call(m, none, nk);
  }
  if (name == "dictsort") {
    if (!v.is_object()) r.fail("filter 'dictsort': expected a dict, got " + pretty_name(v));
    const bool cs = truthy(a.get(0, "case_sensitive", Value::boolean(false)));
    const std::string by =
        a.get(1, "by", Value::string("key")).is_string() ? a.get(1, "by", Value::string("key")).str() : "key";
    const bool rev = truthy(a.get(2, "reverse", Value::boolean(false)));
    Array pairs;
    for (const auto& kv : v.o->items) pairs.push_back(Value::array({Value::string(kv.first), kv.second}));
    const size_t idx = by == "value" ? 1 : 0;
    std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& x, const Value& y) {
      const int c = compare_values(r, (*x.a)[idx], (*y.a)[idx], cs);
      return rev ? c > 0 : c < 0;
    });
    return Value::array(std::move(pairs));
  }
  if (name == "attr") {
    a.at_most(1);
    return get_attr(r, v, a.string(a.get(0, "name"), "name"));
  }
  // Filters over sequences.
  Array items = iterate(r, v, ("filter '" + name + "'").c_str());
  if (name == "list") return Value::array(std::move(items));
  if (name == "first") return items.empty() ? Value::undefined("first of an empty sequence") : items.front();
  if (name == "last") return items.empty() ? Value::undefined("last of an empty sequence") : items.back();
  if (name == "reverse") {
    if (v.is_string()) {
      std::string s;
      for (size_t k = items.size(); k-- > 0;) s += items[k].str();
      return r.make_string(std::move(s));
    }
    std::reverse(items.begin(), items.end());
    return Value::array(std::move(items));
  }
  if (name == "join") {
    a.at_most(2);
    const Value sep = a.get(0, "d", Value::string(""));
    const Value attr = a.get(1, "attribute", Value::none());
    const std::string d = r.str(sep);
    std::string out;
    for (size_t k = 0; k < items.size(); ++k) {
      if (k) out += d;
      out += r.str(attr.is_none() ? items[k] : attribute_of(r, items[k], r.str(attr)));
      if (out.size() > r.limits().max_output) r.fail("join: the result is longer than the output limit");
    }
    return r.make_string(std::move(out));
  }
  if (name == "sum") {
    const Value attr = a.get(0, "attribute", Value::none());
    Value acc = a.get(1, "start", Value::integer(0));
    for (const Value& x : items) {
      const Value y = attr.is_none() ? x : attribute_of(r, x, r.str(attr));
      if (!y.is_number() || !acc.is_number()) r.fail("filter 'sum': expected numbers");
      if (acc.kind == Value::Kind::Float || y.kind == Value::Kind::Float)
        acc = Value::number(acc.as_double() + y.as_double());
      else {
        int64_t s = 0;
        if (__builtin_add_overflow(acc.kind == Value::Kind::Bool ? int64_t(acc.b) : acc.i,
                                   y.kind == Value::Kind::Bool ? int64_t(y.b) : y.i, &s))
          r.fail("filter 'sum': integer overflow");
        acc = Value::integer(s);
      }
    }
    return acc;
  }
  if (name == "min" || name == "max" || name == "sort" || name == "unique") {
    const Value attr = a.get(name == "sort" ? 2 : name == "unique" ? 1 : 1, "attribute", Value::none());
    const bool cs = truthy(a.get(name == "sort" ? 1 : 0, "case_sensitive", Value::boolean(false)));
    const auto key = [&](const Value& x) { return attr.is_none() ? x : attribute_of(r, x, r.str(attr)); };
    if (name == "unique") {
      Array out;
      for (const Value& x : items) {
        bool seen = false;
        for (const Value& y : out) {
          const Value kx = key(x), ky = key(y);
          if (!cs && kx.is_string() && ky.is_string() ? compare_values(r, kx, ky, false) == 0 : r.eq(kx, ky)) {
            seen = true;
            break;
          }
        }
        if (!seen) out.push_back(x);
      }
      return Value::array(std::move(out));
    }
    if (name == "sort") {
      const bool rev = truthy(a.get(0, "reverse", Value::boolean(false)));
      std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
        const int c = compare_values(r, key(x), key(y), cs);
        return rev ? c > 0 : c < 0;
      });
      return Value::array(std::move(items));
    }
    if (items.empty()) return Value::undefined("the " + name + " of an empty sequence");
    size_t best = 0;
    for (size_t k = 1; k < items.size(); ++k) {
      const int c = compare_values(r, key(items[k]), key(items[best]), cs);
      if (name == "min" ? c < 0 : c > 0) best = k;
    }
    return items[best];
  }
  if (name == "map") {
    Array out;
    const Value attr = a.get(99, "attribute");
    if (!attr.is_undefined()) {
      const Value def = a.get(99, "default");
      for (const Value& x : items) {
        Value y = attribute_of(r, x, r.str(attr));
        out.push_back(y.is_undefined() && !def.is_undefined() ? def : y);
      }
      return Value::array(std::move(out));
    }
    if (pos.empty() || !pos[0].is_string()) r.fail("filter 'map': expected a filter name or attribute=");
    const std::string f = pos[0].str();
    if (!is_filter(f) || f == "__slice__") r.fail("filter 'map': unknown filter '" + f + "'");
    std::vector<Value> rest(pos.begin() + 1, pos.end());
    for (const Value& x : items) {
      std::vector<Value> args = rest;
      KwArgs k2 = kw;
      out.push_back(apply_filter(r, f, x, args, k2));
    }
    return Value::array(std::move(out));
  }
  if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
    const bool by_attr = name == "selectattr" || name == "rejectattr";
    const bool keep = name == "select" || name == "selectattr";
    size_t k0 = 0;
    std::string attr;
    if (by_attr) {
      if (pos.empty() || !pos[0].is_string()) r.fail("filter '" + name + "': expected an attribute name");
      attr = pos[0].str();
      k0 = 1;
    }
    std::string test;
    if (pos.size() > k0) {
      if (!pos[k0].is_string() || !is_test(pos[k0].str()))
        r.fail("filter '" + name + "': unknown test '" + r.str(pos[k0]) + "'");
      test = pos[k0].str();
    }
    std::vector<Value> targs(pos.begin() + std::min(pos.size(), k0 + 1), pos.end());
    Array out;
    for (const Value& x : items) {
      const Value y = by_attr ? attribute_of(r, x, attr) : x;
      std::vector<Value> ta = targs;
      const bool ok = test.empty() ? truthy(y) : apply_test(r, test, y, ta);
      if (ok == keep) out.push_back(x);
    }
    return Value::array(std::move(out));
  }
  r.fail("filter '" + name + "' is not implemented");
}

std::vector<std::pair<std::string, Value>> global_functions() {
  std::vector<std::pair<std::string, Value>> g;
  g.emplace_back("range", Value::function("range", [](Renderer& r, std::vector<Value>& pos, KwArgs& kw) {
                   Args a{r, "range", pos, kw};
                   if (pos.empty() || pos.size() > 3) r.fail("range: expected 1 to 3 arguments");
                   int64_t start = 0, stop = 0, step = 1;
                   if (pos.size() == 1) stop = a.integer(pos[0], "stop");
                   else {
                     start = a.integer(pos[0], "start");
                     stop = a.integer(pos[1], "stop");
                     if (pos.size() == 3) step = a.integer(pos[2], "step");
                   }
                   if (step == 0) r.fail("range: step must not be zero");
                   const long double n = std::max<long double>(
                       0, std::ceil((static_cast<long double>(stop) - start) / static_cast<long double>(step)));
                   // The same bound as jinja2's sandbox (MAX_RANGE = 100000).
                   if (n > 100000) r.fail("range: more than 100000 items");
                   r.step(uint64_t(n));
                   Array out;
                   for (int64_t k = 0; k < int64_t(n); ++k) out.push_back(Value::integer(start + k * step));
                   return Value::array(std::move(out));
                 }));
  g.emplace_back("namespace", Value::function("namespace", [](Renderer& r, std::vector<Value>& pos, KwArgs& kw) {
                   Object o;
                   o.is_namespace = true;
                   for (const Value& p : pos) {
                     if (!p.is_object()) r.fail("namespace: positional arguments must be dicts");
                     for (const auto& kv : p.o->items) o.set(kv.first, kv.second);
                   }
                   for (const auto& kv : kw) {
                     if (kv.second.has_ns) r.fail("a namespace cannot hold a namespace");
                     o.set(kv.first, kv.second);
                   }
                   Value v = Value::object(std::move(o));
                   return v;
                 }));
  g.emplace_back("dict", Value::function("dict", [](Renderer& r, std::vector<Value>& pos, KwArgs& kw) {
                   Object o;
                   if (pos.size() > 1 || (pos.size() == 1 && !pos[0].is_object()))
                     r.fail("dict: expected a dict or keyword arguments");
                   if (!pos.empty()) o.items = pos[0].o->items;
                   for (const auto& kv : kw) o.set(kv.first, kv.second);
                   return Value::object(std::move(o));
                 }));
  g.emplace_back("raise_exception",
                 Value::function("raise_exception", [](Renderer& r, std::vector<Value>& pos, KwArgs&) {
                   throw RaisedError(pos.empty() ? std::string("raise_exception") : r.str(pos[0]));
                   return Value();
                 }));
  g.emplace_back("strftime_now", Value::function("strftime_now", [](Renderer& r, std::vector<Value>& pos, KwArgs&) {
                   if (pos.size() != 1 || !pos[0].is_string()) r.fail("strftime_now: expected a format string");
                   const std::time_t t = std::time(nullptr);
                   std::tm tm{};
                   localtime_r(&t, &tm);
                   char buf[256];
                   const size_t n = std::strftime(buf, sizeof buf, pos[0].str().substr(0, 64).c_str(), &tm);
                   return r.make_string(std::string(buf, n));
                 }));
  return g;
}

}  // namespace retnet::serve::jinja