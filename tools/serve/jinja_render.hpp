// The evaluator of the Jinja subset (jinja.hpp): walks the AST with a scope stack, charging every
// step and every string built against RenderLimits. Builtins (jinja_builtins.cpp) call back into it.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "jinja.hpp"
#include "jinja_ast.hpp"

namespace retnet::serve::jinja {

class Renderer {
 public:
  Renderer(const RenderLimits& limits, const Object& globals, std::string template_name);
  std::string run(const Body& body);

  // Budgets: one unit per evaluation or iteration; `bytes` for every string a builtin builds.
  void step(uint64_t n = 1);
  void charge(size_t bytes);
  Value make_string(std::string s);  // charged, and refused beyond max_output
  Value call(const Value& f, std::vector<Value>& args, KwArgs& kwargs);
  // RenderError naming the template and the line being evaluated.
  [[noreturn]] void fail(const std::string& what) const;
  const RenderLimits& limits() const { return limits_; }
  Budget& budget() { return budget_; }
  // The walks of jinja_value.hpp with this render's budget and size bound.
  bool eq(const Value& a, const Value& b) { return equal(a, b, budget_); }
  std::string str(const Value& v) { return to_str(v, budget_, limits_.max_output); }
  Value call_macro(const Stmt& m, std::vector<Value>& args, KwArgs& kwargs);

 private:
  enum class Flow { Normal, Break, Continue };
  using Frame = std::vector<std::pair<std::string, Value>>;

  Flow exec(const Body& body, std::string& out);
  Flow exec_for(const Stmt& s, std::string& out);
  void emit(std::string& out, const std::string& text);
  Value eval(const Expr& e);
  void eval_arguments(const Expr& e, std::vector<Value>& args, KwArgs& kw);
  Value eval_binary(const std::string& op, const Value& a, const Value& b);
  Value lookup(const std::string& name) const;
  void assign(const std::string& name, Value v);
  void unpack(const std::vector<std::string>& targets, const Value& v);

  RenderLimits limits_;
  std::string name_;
  std::vector<Frame> scopes_;  // [0]: builtins and globals (top-level sets go to [1])
  size_t frame_base_ = 1;      // a macro sees scopes_[frame_base_..] and the root frames [0..1]
  int call_depth_ = 0;
  int line_ = 0;
  Budget budget_;
  uint64_t bytes_ = 0;
};

}  // namespace retnet::serve::jinja
