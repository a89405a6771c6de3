// The Jinja subset's evaluator (jinja_render.hpp): statements, expressions and operators with
// Python's semantics, scopes as jinja2 has them (a for loop's sets stay in the loop, hence
// namespace()), and every step charged to the render's budget.
#include "jinja_render.hpp"

#include <cmath>
#include <limits>

#include "jinja_builtins.hpp"

namespace retnet::serve::jinja {

Renderer::Renderer(const RenderLimits& limits, const Object& globals, std::string template_name)
    : limits_(limits), name_(std::move(template_name)) {
  budget_.left = limits.max_steps;
  Frame root = global_functions();
  for (const auto& kv : globals.items) {
    bool replaced = false;
    for (auto& r : root)
      if (r.first == kv.first) {
        r.second = kv.second;
        replaced = true;
      }
    if (!replaced) root.push_back(kv);
  }
  scopes_.push_back(std::move(root));
  scopes_.emplace_back();  // the template's own top-level variables
}

void Renderer::fail(const std::string& what) const {
  throw RenderError(name_ + ": line " + std::to_string(line_) + ": " + what);
}

void Renderer::step(uint64_t n) {
  try {
    budget_.take(n);
  } catch (const RenderError& e) {
    fail(e.what());
  }
}

void Renderer::charge(size_t bytes) {
  bytes_ += bytes;
  if (bytes_ > limits_.max_string_bytes)
    fail("the template built more than " + std::to_string(limits_.max_string_bytes >> 20) +
         " MiB of strings (a runaway loop?)");
}

Value Renderer::make_string(std::string s) {
  if (s.size() > limits_.max_output)
    fail("a string longer than the output limit (" + std::to_string(limits_.max_output) + " bytes)");
  charge(s.size());
  return Value::string(std::move(s));
}

void Renderer::emit(std::string& out, const std::string& text) {
  if (out.size() + text.size() > limits_.max_output)
    fail("the rendered text is longer than " + std::to_string(limits_.max_output) + " bytes");
  charge(text.size());
  out += text;
}

std::string Renderer::run(const Body& body) {
  std::string out;
  try {
    if (exec(body, out) != Flow::Normal) fail("'break' or 'continue' outside a loop");
  } catch (const RaisedError&) {
    throw;
  } catch (const RenderError& e) {
    // Errors of the value walks (jinja_value.cpp) come without the template's name and line.
    const std::string what = e.what();
    if (what.rfind(name_ + ": line ", 0) == 0) throw;
    fail(what);
  }
  return out;
}

Value Renderer::lookup(const std::string& name) const {
  for (size_t k = scopes_.size(); k-- > frame_base_;)
    for (const auto& kv : scopes_[k])
      if (kv.first == name) return kv.second;
  for (size_t k = std::min<size_t>(frame_base_, 2); k-- > 0;)
    for (const auto& kv : scopes_[k])
      if (kv.first == name) return kv.second;
  return Value::undefined(name);
}

void Renderer::assign(const std::string& name, Value v) {
  for (auto& kv : scopes_.back())
    if (kv.first == name) {
      kv.second = std::move(v);
      return;
    }
  scopes_.back().emplace_back(name, std::move(v));
}

void Renderer::unpack(const std::vector<std::string>& targets, const Value& v) {
  if (targets.size() == 1) return assign(targets[0], v);
  Array items = iterate(*this, v, "unpacking");
  if (items.size() != targets.size())
    fail("cannot unpack " + std::to_string(items.size()) + " values into " + std::to_string(targets.size()) +
         " variables");
  for (size_t k = 0; k < targets.size(); ++k) assign(targets[k], items[k]);
}

Renderer::Flow Renderer::exec(const Body& body, std::string& out) {
  for (const auto& sp : body) {
    const Stmt& s = *sp;
    line_ = s.line;
    step();
    switch (s.kind) {
      case Stmt::Kind::Text:
        emit(out, s.text);
        break;
      case Stmt::Kind::Output: {
        const Value v = eval(*s.expr);
        emit(out, str(v));
        break;
      }
      case Stmt::Kind::If: {
        const Body* chosen = &s.else_body;
        for (const auto& br : s.branches) {
          line_ = br.first->line;
          if (truthy(eval(*br.first))) {
            chosen = &br.second;
            break;
          }
        }
        const Flow f = exec(*chosen, out);
        if (f != Flow::Normal) return f;
        break;
      }
      case Stmt::Kind::For: {
        const Flow f = exec_for(s, out);
        if (f != Flow::Normal) return f;
        break;
      }
      case Stmt::Kind::Set: {
        Value v = eval(*s.expr);
        line_ = s.line;
        if (!s.attr.empty()) {
          const Value target = lookup(s.targets[0]);
          if (!target.is_object() || !target.o->is_namespace)
            fail("cannot assign to '" + s.targets[0] + "." + s.attr + "': only namespace() objects take attributes");
          if (v.has_ns) fail("a namespace cannot hold a namespace");
          if (v.depth + 1 > Value::kMaxValueDepth) fail("values nest too deeply");
          target.o->set(s.attr, std::move(v));
        } else {
          unpack(s.targets, v);
        }
        break;
      }
      case Stmt::Kind::SetBlock: {
        std::string captured;
        exec(s.body, captured);
        assign(s.targets[0], make_string(std::move(captured)));
        break;
      }
      case Stmt::Kind::Macro: {
        const Stmt* m = &s;
        assign(s.targets[0], Value::function(s.targets[0], [m](Renderer& r, std::vector<Value>& args, KwArgs& kw) {
                 return r.call_macro(*m, args, kw);
               }));
        break;
      }
      case Stmt::Kind::Break:
        return Flow::Break;
      case Stmt::Kind::Continue:
        return Flow::Continue;
      case Stmt::Kind::Block: {
        const Flow f = exec(s.body, out);
        if (f != Flow::Normal) return f;
        break;
      }
    }
  }
  return Flow::Normal;
}

Renderer::Flow Renderer::exec_for(const Stmt& s, std::string& out) {
  const Value seq = eval(*s.expr);
  line_ = s.line;
  Array items = iterate(*this, seq, "a for loop");
  scopes_.emplace_back();
  // The loop filter ("for x in xs if cond") drops items before loop.index and loop.length count them.
  if (s.cond) {
    Array kept;
    for (auto& it : items) {
      step();
      unpack(s.targets, it);
      if (truthy(eval(*s.cond))) kept.push_back(std::move(it));
    }
    items = std::move(kept);
  }
  const int64_t n = int64_t(items.size());
  for (int64_t k = 0; k < n; ++k) {
    step();
    unpack(s.targets, items[size_t(k)]);
    Object loop;
    loop.items = {{"index", Value::integer(k + 1)},
                  {"index0", Value::integer(k)},
                  {"revindex", Value::integer(n - k)},
                  {"revindex0", Value::integer(n - k - 1)},
                  {"first", Value::boolean(k == 0)},
                  {"last", Value::boolean(k == n - 1)},
                  {"length", Value::integer(n)},
                  {"depth", Value::integer(1)},
                  {"depth0", Value::integer(0)},
                  {"previtem", k > 0 ? items[size_t(k - 1)] : Value::undefined("loop.previtem")},
                  {"nextitem", k + 1 < n ? items[size_t(k + 1)] : Value::undefined("loop.nextitem")},
                  {"cycle", Value::function("loop.cycle", [k](Renderer& r, std::vector<Value>& args, KwArgs&) {
                     if (args.empty()) r.fail("loop.cycle: no items");
                     return args[size_t(k) % args.size()];
                   })}};
    assign("loop", Value::object(std::move(loop)));
    const Flow f = exec(s.body, out);
    if (f == Flow::Break) break;
  }
  scopes_.pop_back();
  if (n == 0) {
    const Flow f = exec(s.else_body, out);
    if (f != Flow::Normal) return f;
  }
  return Flow::Normal;
}

Value Renderer::call(const Value& f, std::vector<Value>& args, KwArgs& kwargs) {
  if (f.is_undefined()) fail("'" + f.name + "' is undefined");
  if (f.kind != Value::Kind::Function) fail("a " + std::string(type_name(f)) + " is not callable");
  return (*f.fn)(*this, args, kwargs);
}

Value Renderer::call_macro(const Stmt& m, std::vector<Value>& args, KwArgs& kwargs) {
  if (call_depth_ >= limits_.max_call_depth)
    fail("macro calls nest deeper than " + std::to_string(limits_.max_call_depth) + " (runaway recursion?)");
  if (args.size() > m.params.size())
    fail("macro '" + m.targets[0] + "' takes " + std::to_string(m.params.size()) + " arguments, got " +
         std::to_string(args.size()));
  Frame frame;
  for (size_t k = 0; k < m.params.size(); ++k) {
    const std::string& pname = m.params[k].first;
    Value v = Value::undefined(pname);
    if (k < args.size()) v = args[k];
    else {
      bool found = false;
      for (auto& kv : kwargs)
        if (kv.first == pname) {
          v = kv.second;
          found = true;
        }
      if (!found && m.params[k].second) v = eval(*m.params[k].second);
    }
    frame.emplace_back(pname, std::move(v));
  }
  for (auto& kv : kwargs) {
    bool known = false;
    for (const auto& p : m.params) known = known || p.first == kv.first;
    if (!known) fail("macro '" + m.targets[0] + "' has no parameter '" + kv.first + "'");
  }
  const size_t saved_base = frame_base_;
  const int saved_line = line_;
  scopes_.push_back(std::move(frame));
  frame_base_ = scopes_.size() - 1;
  ++call_depth_;
  std::string out;
  try {
    exec(m.body, out);
  } catch (...) {
    --call_depth_;
    frame_base_ = saved_base;
    scopes_.pop_back();
    throw;
  }
  --call_depth_;
  frame_base_ = saved_base;
  scopes_.pop_back();
  line_ = saved_line;
  return Value::string(std::move(out));
}

// The arguments of a call or filter node (args[0] is the callee or the filtered value), evaluated in
// order; the node's line is then current, so that an error in the call names it.
void Renderer::eval_arguments(const Expr& e, std::vector<Value>& args, KwArgs& kw) {
  for (size_t k = 1; k < e.args.size(); ++k) args.push_back(eval(*e.args[k]));
  for (const auto& kv : e.kwargs) kw.emplace_back(kv.first, eval(*kv.second));
  line_ = e.line;
}

Value Renderer::eval(const Expr& e) {
  step();
  switch (e.kind) {
    case Expr::Kind::Literal:
      return e.lit;
    case Expr::Kind::Name:
      return lookup(e.name);
    case Expr::Kind::Attr: {
      const Value obj = eval(*e.args[0]);
      if (obj.is_undefined()) fail("'" + obj.name + "' is undefined (reading its attribute '" + e.name + "')");
      return get_attr(*this, obj, e.name);
    }
    case Expr::Kind::Item: {
      const Value obj = eval(*e.args[0]);
      const Value key = eval(*e.args[1]);
      if (obj.is_undefined()) fail("'" + obj.name + "' is undefined (reading an item of it)");
      return get_item(*this, obj, key);
    }
    case Expr::Kind::Slice: {
      const Value obj = eval(*e.args[0]);
      Value parts[3];
      for (int k = 0; k < 3; ++k)
        if (e.args[size_t(k) + 1]) parts[k] = eval(*e.args[size_t(k) + 1]);
      if (obj.is_undefined()) fail("'" + obj.name + "' is undefined (slicing it)");
      std::vector<Value> args(parts, parts + 3);
      KwArgs none;
      return apply_filter(*this, "__slice__", obj, args, none);
    }
    case Expr::Kind::Call: {
      const Value f = eval(*e.args[0]);
      std::vector<Value> args;
      KwArgs kw;
      eval_arguments(e, args, kw);
      return call(f, args, kw);
    }
    case Expr::Kind::Filter: {
      const Value v = eval(*e.args[0]);
      std::vector<Value> args;
      KwArgs kw;
      eval_arguments(e, args, kw);
      return apply_filter(*this, e.name, v, args, kw);
    }
    case Expr::Kind::Test: {
      const Value v = eval(*e.args[0]);
      std::vector<Value> args;
      for (size_t k = 1; k < e.args.size(); ++k) args.push_back(eval(*e.args[k]));
      line_ = e.line;
      return Value::boolean(apply_test(*this, e.name, v, args) != e.negated);
    }
    case Expr::Kind::Unary: {
      const Value v = eval(*e.args[0]);
      if (e.name == "not") return Value::boolean(!truthy(v));
      line_ = e.line;
      if (v.kind == Value::Kind::Int || v.kind == Value::Kind::Bool) {
        const int64_t x = v.kind == Value::Kind::Bool ? int64_t(v.b) : v.i;
        if (e.name == "+") return Value::integer(x);
        if (x == std::numeric_limits<int64_t>::min()) fail("integer overflow");
        return Value::integer(-x);
      }
      if (v.kind == Value::Kind::Float) return Value::number(e.name == "-" ? -v.f : v.f);
      fail("bad operand type for unary " + e.name + ": '" + type_name(v) + "'");
    }
    case Expr::Kind::Binary: {
      const Value a = eval(*e.args[0]);
      const Value b = eval(*e.args[1]);
      line_ = e.line;
      return eval_binary(e.name, a, b);
    }
    case Expr::Kind::And: {
      Value a = eval(*e.args[0]);
      return truthy(a) ? eval(*e.args[1]) : a;
    }
    case Expr::Kind::Or: {
      Value a = eval(*e.args[0]);
      return truthy(a) ? a : eval(*e.args[1]);
    }
    case Expr::Kind::Cond:
      if (truthy(eval(*e.args[1]))) return eval(*e.args[0]);
      return e.args[2] ? eval(*e.args[2]) : Value::undefined("the missing else branch");
    case Expr::Kind::List:
    case Expr::Kind::Tuple: {
      Array a;
      for (const auto& x : e.args) a.push_back(eval(*x));
      line_ = e.line;
      return Value::array(std::move(a));
    }
    case Expr::Kind::Dict: {
      Object o;
      for (size_t k = 0; k + 1 < e.args.size(); k += 2) {
        const Value key = eval(*e.args[k]);
        if (!key.is_string()) fail("dict keys must be strings here, got a " + std::string(type_name(key)));
        o.set(key.str(), eval(*e.args[k + 1]));
      }
      line_ = e.line;
      return Value::object(std::move(o));
    }
  }
  fail("unknown expression");
}

namespace {
bool is_int(const Value& v) { return v.kind == Value::Kind::Int || v.kind == Value::Kind::Bool; }
int64_t int_of(const Value& v) { return v.kind == Value::Kind::Bool ? int64_t(v.b) : v.i; }
}  // namespace

Value Renderer::eval_binary(const std::string& op, const Value& a, const Value& b) {
  const auto unsupported = [&]() {
    if (a.is_undefined()) fail("'" + a.name + "' is undefined");
    if (b.is_undefined()) fail("'" + b.name + "' is undefined");
    fail("unsupported operand types for " + op + ": '" + type_name(a) + "' and '" + type_name(b) + "'");
  };
  if (op == "~") {
    std::string s = str(a);
    s += str(b);
    return make_string(std::move(s));
  }
  if (op == "==") return Value::boolean(eq(a, b));
  if (op == "!=") return Value::boolean(!eq(a, b));
  if (op == "in" || op == "not in") {
    bool found = false;
    if (b.is_string()) {
      if (!a.is_string()) fail("'in <string>' requires a string on the left, not a " + std::string(type_name(a)));
      found = b.str().find(a.str()) != std::string::npos;
    } else if (b.is_array()) {
      for (const Value& x : *b.a)
        if (eq(a, x)) {
          found = true;
          break;
        }
    } else if (b.is_object()) {
      found = a.is_string() && b.o->find(a.str()) != nullptr;
    } else if (!b.is_undefined()) {
      fail("argument of type '" + std::string(type_name(b)) + "' is not iterable");
    }
    return Value::boolean(found == (op == "in"));
  }
  if (op == "<" || op == ">" || op == "<=" || op == ">=") {
    int c = 0;
    if (a.is_number() && b.is_number()) {
      if (is_int(a) && is_int(b)) c = int_of(a) < int_of(b) ? -1 : int_of(a) > int_of(b);
      else c = a.as_double() < b.as_double() ? -1 : a.as_double() > b.as_double();
    } else if (a.is_string() && b.is_string()) {
      c = a.str().compare(b.str());  // UTF-8 byte order is code point order, as Python compares
      c = c < 0 ? -1 : c > 0;
    } else {
      fail("'" + op + "' not supported between '" + type_name(a) + "' and '" + type_name(b) + "'");
    }
    if (op == "<") return Value::boolean(c < 0);
    if (op == ">") return Value::boolean(c > 0);
    if (op == "<=") return Value::boolean(c <= 0);
    return Value::boolean(c >= 0);
  }
  if (op == "+") {
    if (a.is_string() && b.is_string()) return make_string(a.str() + b.str());
    if (a.is_array() && b.is_array()) {
      Array r = *a.a;
      step(b.a->size());
      r.insert(r.end(), b.a->begin(), b.a->end());
      return Value::array(std::move(r));
    }
  }
  if (op == "*") {
    // str * int and list * int repeat, bounded by the output limit.
    const Value* seq = a.is_string() || a.is_array() ? &a : b.is_string() || b.is_array() ? &b : nullptr;
    const Value* times = seq == &a ? &b : &a;
    if (seq && is_int(*times)) {
      const int64_t n = std::max<int64_t>(0, int_of(*times));
      if (seq->is_string()) {
        if (!seq->str().empty() && uint64_t(n) > limits_.max_output / seq->str().size())
          fail("a repeated string longer than the output limit");
        std::string r;
        for (int64_t k = 0; k < n; ++k) r += seq->str();
        return make_string(std::move(r));
      }
      if (!seq->a->empty() && uint64_t(n) > limits_.max_steps / seq->a->size()) fail("a repeated list too long");
      step(uint64_t(n) * seq->a->size());
      Array r;
      for (int64_t k = 0; k < n; ++k) r.insert(r.end(), seq->a->begin(), seq->a->end());
      return Value::array(std::move(r));
    }
  }
  if (!a.is_number() || !b.is_number()) unsupported();
  if (op == "/") {
    if (b.as_double() == 0) fail("division by zero");
    return Value::number(a.as_double() / b.as_double());
  }
  if (is_int(a) && is_int(b)) {
    const int64_t x = int_of(a), y = int_of(b);
    int64_t r = 0;
    if (op == "+" && !__builtin_add_overflow(x, y, &r)) return Value::integer(r);
    if (op == "-" && !__builtin_sub_overflow(x, y, &r)) return Value::integer(r);
    if (op == "*" && !__builtin_mul_overflow(x, y, &r)) return Value::integer(r);
    if (op == "//" || op == "%") {
      if (y == 0) fail("integer division or modulo by zero");
      if (x == std::numeric_limits<int64_t>::min() && y == -1) fail("integer overflow");
      int64_t q = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {  // Python floors
        --q;
        m += y;
      }
      return Value::integer(op == "//" ? q : m);
    }
    if (op == "**" && y >= 0) {
      int64_t p = 1;
      for (int64_t k = 0; k < y; ++k) {
        if (__builtin_mul_overflow(p, x, &p)) fail("integer overflow");
        if (p == 0 || p == 1) break;
      }
      if (p == 1 && x == -1) p = (y % 2) ? -1 : 1;
      return Value::integer(p);
    }
    if (op != "**") fail("integer overflow");
  }
  const double x = a.as_double(), y = b.as_double();
  if (op == "+") return Value::number(x + y);
  if (op == "-") return Value::number(x - y);
  if (op == "*") return Value::number(x * y);
  if (op == "**") return Value::number(std::pow(x, y));
  if (op == "//" || op == "%") {
    if (y == 0) fail("float division or modulo by zero");
    const double q = std::floor(x / y);
    return Value::number(op == "//" ? q : x - q * y);
  }
  unsupported();
  return Value();
}

std::string Template::render(const Object& globals, const RenderLimits& limits) const {
  Renderer r(limits, globals, name_);
  return r.run(*body_);
}

}  // namespace retnet::serve::jinja
