// The parsed form of a Jinja template (jinja_parse.cpp builds it, jinja_render.cpp walks it).
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "jinja_value.hpp"

namespace retnet::serve::jinja {

struct Expr;
using ExprP = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    Literal,  // lit
    Name,     // name
    Attr,     // args[0].name
    Item,     // args[0][args[1]]
    Slice,    // args[0][args[1]:args[2]:args[3]] (null: omitted)
    Call,     // args[0](args[1:], kwargs)
    Filter,   // args[0] | name(args[1:], kwargs)
    Test,     // args[0] is [not] name(args[1:])
    Unary,    // name ("-", "+", "not") args[0]
    Binary,   // args[0] name args[1]: + - * / // % ** ~ == != < <= > >= in "not in"
    And,
    Or,
    Cond,  // args[0] if args[1] else args[2] (args[2] null: Undefined)
    List,
    Tuple,
    Dict,  // args: key, value, key, value...
  };
  Kind kind = Kind::Literal;
  Value lit;
  std::string name;
  std::vector<ExprP> args;
  std::vector<std::pair<std::string, ExprP>> kwargs;
  bool negated = false;  // Test: "is not"
  int line = 0;
  int depth = 1;  // of the tree below: bounded by the parser, so that evaluation recursion is bounded
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

struct Stmt {
  enum class Kind {
    Text,      // text
    Output,    // {{ expr }}
    If,        // branches (cond, body)..., else_body
    For,       // for targets in expr [if cond]: body, else_body
    Set,       // set targets[0] (or targets[0].attr) = expr; several targets: tuple unpacking
    SetBlock,  // {% set targets[0] %}body{% endset %}
    Macro,     // {% macro targets[0](params) %}body{% endmacro %}
    Break,
    Continue,
    Block,  // a body rendered as is ({% generation %} of HF's assistant-mask extension)
  };
  Kind kind = Kind::Text;
  std::string text;
  ExprP expr, cond;
  std::vector<std::string> targets;
  std::string attr;
  std::vector<std::pair<ExprP, Body>> branches;
  Body body, else_body;
  std::vector<std::pair<std::string, ExprP>> params;  // Macro: name, default (null: none)
  int line = 0;
};

}  // namespace retnet::serve::jinja
