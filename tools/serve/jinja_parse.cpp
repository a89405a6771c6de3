// Jinja source → AST (jinja.hpp, jinja_ast.hpp). Two passes, as jinja2's lexer and parser: the
// source is cut into text and tags with the whitespace rules HF renders with (trim_blocks,
// lstrip_blocks, "-" and "+" markers, one trailing newline dropped), each tag's inside into tokens;
// then a recursive-descent parser with jinja2's operator precedence builds statements and
// expressions. Every error names the line and column.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <set>

#include "jinja.hpp"
#include "jinja_ast.hpp"
#include "jinja_builtins.hpp"

namespace retnet::serve::jinja {

namespace {

constexpr int kMaxDepth = 128;      // nesting of blocks: bounds the parser's and the renderer's recursion
constexpr int kMaxExprDepth = 512;  // the parser's recursion for one expression (about 11 per bracket)
constexpr int kMaxTreeDepth = 256;  // an expression tree's depth ("a ~ b ~ c ..." and "x|f|f..." too)

struct Token {
  enum class Type { Name, Int, Float, String, Op, End } type = Type::End;
  std::string text;  // Name, String (unescaped), Op
  int64_t i = 0;
  double f = 0;
  size_t pos = 0;
};

// A piece of the source: text, or a tag's tokens (kind '{' for {{ }}, '%' for {% %}).
struct Piece {
  char kind = 0;  // 0: text
  std::string text;
  std::vector<Token> tokens;
  size_t pos = 0;
};

class Parser {
 public:
  Parser(std::string src, std::string name) : src_(std::move(src)), name_(std::move(name)) {
    for (size_t i = 0; i < src_.size(); ++i)
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
  }

  Body parse() {
    lex();
    size_t i = 0;
    Body body = parse_body(i, {}, 0);
    return body;
  }

 private:
  [[noreturn]] void fail(size_t pos, const std::string& what) const {
    const size_t line = size_t(std::upper_bound(line_starts_.begin(), line_starts_.end(), pos) - line_starts_.begin());
    const size_t col = pos - line_starts_[line - 1] + 1;
    throw Error(name_ + ": line " + std::to_string(line) + ", column " + std::to_string(col) + ": " + what);
  }
  int line_of(size_t pos) const {
    return int(std::upper_bound(line_starts_.begin(), line_starts_.end(), pos) - line_starts_.begin());
  }

  // ---- pass 1: text and tags ----

  void lex() {
    size_t pos = 0, text_start = 0;
    while (true) {
      size_t p = src_.find('{', pos);
      while (p != std::string::npos && p + 1 < src_.size() && !std::strchr("{%#", src_[p + 1]))
        p = src_.find('{', p + 1);
      if (p == std::string::npos || p + 1 >= src_.size()) break;
      const char kind = src_[p + 1];
      const char mod = p + 2 < src_.size() && (src_[p + 2] == '-' || src_[p + 2] == '+') ? src_[p + 2] : 0;
      std::string text = src_.substr(text_start, p - text_start);
      if (mod == '-') {
        text.erase(text.find_last_not_of(" \t\n\r\f\v") + 1);
      } else if (mod != '+' && kind != '{') {
        // lstrip_blocks: spaces and tabs between the line's start and a block or comment tag go.
        const size_t l = text.rfind('\n') + 1;  // npos + 1 == 0
        const bool line_starting = text_start == 0 || src_[text_start - 1] == '\n';
        if ((l > 0 || line_starting) && text.find_first_not_of(" \t\f\v\r", l) == std::string::npos) text.erase(l);
      }
      if (!text.empty()) pieces_.push_back(Piece{0, std::move(text), {}, text_start});
      size_t q = p + 2 + (mod ? 1 : 0);
      char end_mod = 0;
      if (kind == '#') {
        const size_t e = src_.find("#}", q);
        if (e == std::string::npos) fail(p, "unterminated comment ('{#' without '#}')");
        if (e > q && (src_[e - 1] == '-' || src_[e - 1] == '+')) end_mod = src_[e - 1];
        q = e + 2;
      } else {
        Piece piece;
        piece.kind = kind;
        piece.pos = p;
        q = lex_tag(q, kind, p, piece.tokens, end_mod);
        pieces_.push_back(std::move(piece));
      }
      // After the tag: "-" strips all following whitespace; trim_blocks drops one newline after a
      // block or comment tag ("+" keeps it).
      if (end_mod == '-') {
        while (q < src_.size() && std::strchr(" \t\n\r\f\v", src_[q])) ++q;
      } else if (end_mod != '+' && kind != '{' && q < src_.size() && src_[q] == '\n') {
        ++q;
      }
      pos = text_start = q;
    }
    if (text_start < src_.size()) pieces_.push_back(Piece{0, src_.substr(text_start), {}, text_start});
  }

  // Tokens of one tag from `q` to its closing "}}" or "%}"; returns the position after it.
  size_t lex_tag(size_t q, char kind, size_t open, std::vector<Token>& out, char& end_mod) {
    const char close = kind == '{' ? '}' : '%';
    int brackets = 0;
    while (true) {
      while (q < src_.size() && std::strchr(" \t\n\r\f\v", src_[q])) ++q;
      if (q >= src_.size())
        fail(open, std::string("unterminated tag ('") + (kind == '{' ? "{{" : "{%") + "' without '" + close + "}')");
      const char c = src_[q];
      // The end, with an optional "-" or "+" marker before it; not inside brackets, where "}}" closes
      // two dicts ({'a': {'b': 1}}), as jinja2's lexer balances them.
      if (brackets == 0 && (c == '-' || c == '+') && q + 2 < src_.size() && src_[q + 1] == close &&
          src_[q + 2] == '}') {
        end_mod = c;
        return q + 3;
      }
      if (brackets == 0 && c == close && q + 1 < src_.size() && src_[q + 1] == '}') return q + 2;
      Token t;
      t.pos = q;
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t e = q;
        while (e < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) ++e;
        t.type = Token::Type::Name;
        t.text = src_.substr(q, e - q);
        q = e;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        size_t e = q;
        while (e < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) ++e;
        bool is_float = false;
        if (e + 1 < src_.size() && src_[e] == '.' && std::isdigit(static_cast<unsigned char>(src_[e + 1]))) {
          is_float = true;
          ++e;
          while (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) ++e;
        }
        if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
          size_t k = e + 1;
          if (k < src_.size() && (src_[k] == '+' || src_[k] == '-')) ++k;
          if (k < src_.size() && std::isdigit(static_cast<unsigned char>(src_[k]))) {
            is_float = true;
            e = k;
            while (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) ++e;
          }
        }
        std::string digits;
        for (size_t k = q; k < e; ++k)
          if (src_[k] != '_') digits += src_[k];
        if (is_float) {
          t.type = Token::Type::Float;
          t.f = std::strtod(digits.c_str(), nullptr);
        } else {
          t.type = Token::Type::Int;
          errno = 0;
          t.i = std::strtoll(digits.c_str(), nullptr, 10);
          if (errno == ERANGE) fail(q, "integer literal out of range");
        }
        q = e;
      } else if (c == '\'' || c == '"') {
        t.type = Token::Type::String;
        q = lex_string(q, t.text);
      } else {
        static const char* const ops[] = {"**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<",
                                          ">",  "=",  "(",  ")",  "[",  "]",  "{", "}", ",", ".", ":", "|"};
        const char* found = nullptr;
        for (const char* op : ops)
          if (src_.compare(q, std::strlen(op), op) == 0) {
            found = op;
            break;
          }
        if (!found) fail(q, std::string("unexpected character '") + c + "'");
        t.type = Token::Type::Op;
        t.text = found;
        q += t.text.size();
        if (t.text == "(" || t.text == "[" || t.text == "{") ++brackets;
        else if ((t.text == ")" || t.text == "]" || t.text == "}") && brackets > 0) --brackets;
      }
      out.push_back(std::move(t));
    }
  }

  // A Python string literal's value (escapes \n \t \r \\ \' \" \xNN \uNNNN \UNNNNNNNN; others kept).
  size_t lex_string(size_t q, std::string& out) {
    const char quote = src_[q];
    size_t k = q + 1;
    while (true) {
      if (k >= src_.size()) fail(q, "unterminated string literal");
      const char c = src_[k];
      if (c == quote) return k + 1;
      if (c != '\\') {
        out += c;
        ++k;
        continue;
      }
      if (k + 1 >= src_.size()) fail(q, "unterminated string literal");
      const char e = src_[k + 1];
      k += 2;
      switch (e) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case '\\':
        case '\'':
        case '"':
          out += e;
          break;
        case '\n':
          break;
        case 'x':
        case 'u':
        case 'U': {
          const size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (k + n > src_.size()) fail(k - 2, "truncated escape in a string literal");
          uint32_t cp = 0;
          for (size_t j = 0; j < n; ++j) {
            const char h = src_[k + j];
            if (!std::isxdigit(static_cast<unsigned char>(h))) fail(k - 2, "bad escape in a string literal");
            cp = cp * 16 +
                 uint32_t(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
          }
          k += n;
          if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) fail(k - n - 2, "bad code point in a string literal");
          append_utf8(out, cp);
          break;
        }
        default:
          out += '\\';
          out += e;
      }
    }
  }

  // ---- pass 2: statements ----

  // Statements until a block tag whose first word is in `ends` (left at pieces_[i]) or the end.
  Body parse_body(size_t& i, const std::set<std::string>& ends, int depth) {
    if (depth > kMaxDepth) fail(pieces_[i - 1].pos, "blocks nest deeper than " + std::to_string(kMaxDepth));
    Body body;
    while (i < pieces_.size()) {
      Piece& p = pieces_[i];
      if (p.kind == 0) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::Text;
        s->text = std::move(p.text);
        s->line = line_of(p.pos);
        body.push_back(std::move(s));
        ++i;
        continue;
      }
      toks_ = &p.tokens;
      t_ = 0;
      tag_pos_ = p.pos;
      if (p.kind == '{') {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::Output;
        s->line = line_of(p.pos);
        if (p.tokens.empty()) fail(p.pos, "empty expression '{{ }}'");
        s->expr = expr(0);
        expect_end();
        body.push_back(std::move(s));
        ++i;
        continue;
      }
      if (p.tokens.empty() || p.tokens[0].type != Token::Type::Name) fail(p.pos, "expected a statement after '{%'");
      const std::string kw = p.tokens[0].text;
      if (ends.count(kw)) return body;
      ++t_;
      ++i;
      body.push_back(statement(kw, i, depth, p.pos));
    }
    if (!ends.empty()) {
      std::string want;
      for (const auto& e : ends) want += (want.empty() ? "" : " or ") + e;
      fail(src_.size(), "unexpected end of template: expected {% " + want + " %}");
    }
    return body;
  }

  // Moves the token cursor to pieces_[i] (a block tag whose keyword is the first token).
  void enter(size_t i) {
    toks_ = &pieces_[i].tokens;
    t_ = 1;
    tag_pos_ = pieces_[i].pos;
  }

  std::unique_ptr<Stmt> statement(const std::string& kw, size_t& i, int depth, size_t pos) {
    auto s = std::make_unique<Stmt>();
    s->line = line_of(pos);
    if (kw == "if") {
      s->kind = Stmt::Kind::If;
      ExprP c = expr(0);
      expect_end();
      while (true) {
        Body b = parse_body(i, {"elif", "else", "endif"}, depth + 1);
        s->branches.emplace_back(std::move(c), std::move(b));
        const std::string k = pieces_[i].tokens[0].text;
        enter(i++);
        if (k == "elif") {
          c = expr(0);
          expect_end();
          continue;
        }
        expect_end();
        if (k == "else") {
          s->else_body = parse_body(i, {"endif"}, depth + 1);
          enter(i++);
          expect_end();
        }
        break;
      }
    } else if (kw == "for") {
      s->kind = Stmt::Kind::For;
      do {
        s->targets.push_back(name_token("a loop variable"));
      } while (accept(","));
      if (!accept_name("in")) fail(cur_pos(), "expected 'in' in the for statement");
      s->expr = expr(0, /*no_cond=*/true);
      if (accept_name("if")) s->cond = expr(0, true);
      if (accept_name("recursive")) fail(cur_pos(), "recursive loops are not supported");
      expect_end();
      s->body = parse_body(i, {"else", "endfor"}, depth + 1);
      const std::string k = pieces_[i].tokens[0].text;
      enter(i++);
      expect_end();
      if (k == "else") {
        s->else_body = parse_body(i, {"endfor"}, depth + 1);
        enter(i++);
        expect_end();
      }
    } else if (kw == "set") {
      s->targets.push_back(name_token("a variable name"));
      if (accept(".")) s->attr = name_token("an attribute name");
      while (s->attr.empty() && accept(",")) s->targets.push_back(name_token("a variable name"));
      if (accept("=")) {
        s->kind = Stmt::Kind::Set;
        s->expr = expr(0);
        expect_end();
      } else {
        if (s->targets.size() != 1 || !s->attr.empty()) fail(cur_pos(), "expected '=' in the set statement");
        s->kind = Stmt::Kind::SetBlock;
        expect_end();
        s->body = parse_body(i, {"endset"}, depth + 1);
        enter(i++);
        expect_end();
      }
    } else if (kw == "macro") {
      s->kind = Stmt::Kind::Macro;
      s->targets.push_back(name_token("a macro name"));
      expect("(");
      if (!accept(")")) {
        do {
          std::string pname = name_token("a parameter name");
          ExprP def;
          if (accept("=")) def = expr(0);
          s->params.emplace_back(std::move(pname), std::move(def));
        } while (accept(","));
        expect(")");
      }
      expect_end();
      s->body = parse_body(i, {"endmacro"}, depth + 1);
      enter(i++);
      expect_end();
    } else if (kw == "break" || kw == "continue") {
      s->kind = kw == "break" ? Stmt::Kind::Break : Stmt::Kind::Continue;
      expect_end();
    } else if (kw == "generation") {
      s->kind = Stmt::Kind::Block;
      expect_end();
      s->body = parse_body(i, {"endgeneration"}, depth + 1);
      enter(i++);
      expect_end();
    } else {
      static const std::set<std::string> stray = {"elif",   "else",     "endif",        "endfor",
                                                  "endset", "endmacro", "endgeneration"};
      if (stray.count(kw)) fail(pos, "unexpected '{% " + kw + " %}' (no block open to end)");
      fail(pos, "unknown or unsupported statement '" + kw + "'");
    }
    return s;
  }

  // ---- expressions (jinja2's precedence: or, and, not, comparisons, + -, ~, * / // %, **, unary,
  // then postfix: .attr [item] (call) | filter, is test) ----

  const Token& cur() const {
    static const Token end;
    return t_ < toks_->size() ? (*toks_)[t_] : end;
  }
  size_t cur_pos() const { return t_ < toks_->size() ? (*toks_)[t_].pos : tag_pos_; }
  bool is_op(const char* op) const { return cur().type == Token::Type::Op && cur().text == op; }
  bool is_name(const char* n) const { return cur().type == Token::Type::Name && cur().text == n; }
  bool accept(const char* op) {
    if (!is_op(op)) return false;
    ++t_;
    return true;
  }
  bool accept_name(const char* n) {
    if (!is_name(n)) return false;
    ++t_;
    return true;
  }
  void expect(const char* op) {
    if (!accept(op)) fail(cur_pos(), std::string("expected '") + op + "'" + got());
  }
  std::string got() const {
    if (cur().type == Token::Type::End) return " before the end of the tag";
    return ", got '" + (cur().type == Token::Type::String ? "\"" + cur().text + "\"" : cur().text) + "'";
  }
  void expect_end() {
    if (t_ < toks_->size()) fail(cur_pos(), "unexpected '" + cur().text + "' (expected the end of the tag)");
  }
  std::string name_token(const char* what) {
    if (cur().type != Token::Type::Name) fail(cur_pos(), std::string("expected ") + what + got());
    return (*toks_)[t_++].text;
  }

  ExprP node(Expr::Kind k, size_t pos) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->line = line_of(pos);
    return e;
  }
  void guard(int depth) {
    if (depth > kMaxExprDepth) fail(cur_pos(), "the expression nests deeper than " + std::to_string(kMaxExprDepth));
  }
  // Sets n's tree depth from its children's, refusing trees deeper than kMaxTreeDepth.
  ExprP fin(ExprP n) {
    int d = 0;
    for (const auto& c : n->args)
      if (c) d = std::max(d, c->depth);
    for (const auto& kv : n->kwargs) d = std::max(d, kv.second->depth);
    n->depth = d + 1;
    if (n->depth > kMaxTreeDepth)
      fail(cur_pos(), "the expression nests deeper than " + std::to_string(kMaxTreeDepth) + " operations");
    return n;
  }

  // no_cond: a for loop's iterable, where "if" starts the loop filter rather than a conditional.
  ExprP expr(int depth, bool no_cond = false) {
    guard(depth);
    const size_t pos = cur_pos();
    ExprP e = or_expr(depth + 1);
    if (!no_cond && accept_name("if")) {
      ExprP c = node(Expr::Kind::Cond, pos);
      c->args.push_back(std::move(e));
      c->args.push_back(or_expr(depth + 1));
      if (accept_name("else")) c->args.push_back(expr(depth + 1));
      else c->args.push_back(nullptr);
      return fin(std::move(c));
    }
    return e;
  }
  ExprP binary(Expr::Kind k, const std::string& op, ExprP a, ExprP b, size_t pos) {
    ExprP n = node(k, pos);
    n->name = op;
    n->args.push_back(std::move(a));
    n->args.push_back(std::move(b));
    return fin(std::move(n));
  }
  ExprP or_expr(int depth) {
    guard(depth);
    const size_t pos = cur_pos();
    ExprP e = and_expr(depth + 1);
    while (accept_name("or")) e = binary(Expr::Kind::Or, "or", std::move(e), and_expr(depth + 1), pos);
    return e;
  }
  ExprP and_expr(int depth) {
    guard(depth);
    const size_t pos = cur_pos();
    ExprP e = not_expr(depth + 1);
    while (accept_name("and")) e = binary(Expr::Kind::And, "and", std::move(e), not_expr(depth + 1), pos);
    return e;
  }
  ExprP not_expr(int depth) {
    guard(depth);
    const size_t pos = cur_pos();
    if (accept_name("not")) {
      ExprP n = node(Expr::Kind::Unary, pos);
      n->name = "not";
      n->args.push_back(not_expr(depth + 1));
      return fin(std::move(n));
    }
    return compare(depth + 1);
  }
  ExprP compare(int depth) {
    guard(depth);
    const size_t pos = cur_pos();
    ExprP e = add(depth + 1);
    bool compared = false;
    while (true) {
      std::string op;
      for (const char* o : {"==", "!=", "<=", ">=", "<", ">"})
        if (is_op(o)) op = o;
      if (!op.empty()) ++t_;
      else if (accept_name("in")) op = "in";
      else if (is_name("not") && t_ + 1 < toks_->size() && (*toks_)[t_ + 1].text == "in" &&
               (*toks_)[t_ + 1].type == Token::Type::Name) {
        t_ += 2;
        op = "not in";
      } else return e;
      // Python chains comparisons (a < b < c); chat templates never do, so a chain is refused.
      if (compared) fail(pos, "chained comparisons are not supported: add parentheses");
      compared = true;
      e = binary(Expr::Kind::Binary, op, std::move(e), add(depth + 1), pos);
    }
  }
  ExprP add(int depth) {
    guard(depth);
    const size_t pos = cur_pos();
    ExprP e = concat(depth + 1);
    while (is_op("+") || is_op("-")) {
      const std::string op = (*toks_)[t_++].text;
      e = binary(Expr::Kind::Binary, op, std::move(e), concat(depth + 1), pos);
    }
    return e;
  }
  ExprP concat(int depth) {
    guard(depth);
    const size_t pos = cur_pos();
    ExprP e = mul(depth + 1);
    while (accept("~")) e = binary(Expr::Kind::Binary, "~", std::move(e), mul(depth + 1), pos);
    return e;
  }
  ExprP mul(int depth) {
    guard(depth);
    const size_t pos = cur_pos();
    ExprP e = pow(depth + 1);
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const std::string op = (*toks_)[t_++].text;
      e = binary(Expr::Kind::Binary, op, std::move(e), pow(depth + 1), pos);
    }
    return e;
  }
  ExprP pow(int depth) {
    guard(depth);
    const size_t pos = cur_pos();
    ExprP e = unary(depth + 1);
    while (accept("**")) e = binary(Expr::Kind::Binary, "**", std::move(e), unary(depth + 1), pos);
    return e;
  }
  ExprP unary(int depth) {
    guard(depth);
    const size_t pos = cur_pos();
    if (is_op("-") || is_op("+")) {
      ExprP n = node(Expr::Kind::Unary, pos);
      n->name = (*toks_)[t_++].text;
      n->args.push_back(unary(depth + 1));
      return postfix(fin(std::move(n)), depth + 1, /*filters_only=*/true);
    }
    return postfix(primary(depth + 1), depth + 1, false);
  }

  ExprP primary(int depth) {
    guard(depth);
    const Token& tk = cur();
    const size_t pos = cur_pos();
    switch (tk.type) {
      case Token::Type::End:
        fail(pos, "expected an expression before the end of the tag");
      case Token::Type::Int: {
        ExprP n = node(Expr::Kind::Literal, pos);
        n->lit = Value::integer(tk.i);
        ++t_;
        return n;
      }
      case Token::Type::Float: {
        ExprP n = node(Expr::Kind::Literal, pos);
        n->lit = Value::number(tk.f);
        ++t_;
        return n;
      }
      case Token::Type::String: {
        std::string s;
        // Adjacent literals concatenate, as in Python.
        while (cur().type == Token::Type::String) s += (*toks_)[t_++].text;
        ExprP n = node(Expr::Kind::Literal, pos);
        n->lit = Value::string(std::move(s));
        return n;
      }
      case Token::Type::Name: {
        ExprP n = node(Expr::Kind::Literal, pos);
        const std::string& w = tk.text;
        if (w == "true" || w == "True") n->lit = Value::boolean(true);
        else if (w == "false" || w == "False") n->lit = Value::boolean(false);
        else if (w == "none" || w == "None") n->lit = Value::none();
        else {
          n->kind = Expr::Kind::Name;
          n->name = w;
        }
        ++t_;
        return n;
      }
      case Token::Type::Op:
        break;
    }
    if (accept("(")) {
      if (accept(")")) return node(Expr::Kind::Tuple, pos);
      ExprP first = expr(depth + 1);
      if (accept(")")) return first;  // parenthesised
      ExprP tup = node(Expr::Kind::Tuple, pos);
      tup->args.push_back(std::move(first));
      while (accept(",")) {
        if (is_op(")")) break;
        tup->args.push_back(expr(depth + 1));
      }
      expect(")");
      return fin(std::move(tup));
    }
    if (accept("[")) {
      ExprP l = node(Expr::Kind::List, pos);
      while (!accept("]")) {
        if (!l->args.empty()) {
          expect(",");
          if (accept("]")) break;
        }
        l->args.push_back(expr(depth + 1));
      }
      return fin(std::move(l));
    }
    if (accept("{")) {
      ExprP d = node(Expr::Kind::Dict, pos);
      while (!accept("}")) {
        if (!d->args.empty()) {
          expect(",");
          if (accept("}")) break;
        }
        d->args.push_back(expr(depth + 1));
        expect(":");
        d->args.push_back(expr(depth + 1));
      }
      return fin(std::move(d));
    }
    fail(pos, "unexpected '" + tk.text + "'");
  }

  void call_args(Expr& n, int depth, bool allow_kwargs = true) {
    // After "(": positional arguments, then name=value ones (n.args already holds the callee or subject).
    bool first = true;
    while (!accept(")")) {
      if (!first) {
        expect(",");
        if (accept(")")) break;
      }
      if (allow_kwargs && cur().type == Token::Type::Name && t_ + 1 < toks_->size() &&
          (*toks_)[t_ + 1].type == Token::Type::Op && (*toks_)[t_ + 1].text == "=") {
        std::string k = (*toks_)[t_].text;
        t_ += 2;
        n.kwargs.emplace_back(std::move(k), expr(depth + 1));
      } else {
        if (!n.kwargs.empty()) fail(cur_pos(), "a positional argument after a keyword argument");
        n.args.push_back(expr(depth + 1));
      }
      first = false;
    }
  }

  ExprP postfix(ExprP e, int depth, bool filters_only) {
    guard(depth);
    while (true) {
      const size_t pos = cur_pos();
      if (!filters_only && accept(".")) {
        ExprP n = node(Expr::Kind::Attr, pos);
        if (cur().type == Token::Type::Int) {
          n->kind = Expr::Kind::Item;  // x.0: the item 0
          ExprP idx = node(Expr::Kind::Literal, pos);
          idx->lit = Value::integer(cur().i);
          ++t_;
          n->args.push_back(std::move(e));
          n->args.push_back(std::move(idx));
        } else {
          n->name = name_token("an attribute name after '.'");
          n->args.push_back(std::move(e));
        }
        e = fin(std::move(n));
      } else if (!filters_only && accept("[")) {
        ExprP parts[3];
        bool slice = false;
        for (int k = 0; k < 3; ++k) {
          if (!is_op(":") && !is_op("]")) parts[k] = expr(depth + 1);
          if (k < 2 && accept(":")) {
            slice = true;
            continue;
          }
          break;
        }
        expect("]");
        ExprP n = node(slice ? Expr::Kind::Slice : Expr::Kind::Item, pos);
        n->args.push_back(std::move(e));
        if (!slice && !parts[0]) fail(pos, "expected an index inside '[]'");
        n->args.push_back(std::move(parts[0]));
        if (slice) {
          n->args.push_back(std::move(parts[1]));
          n->args.push_back(std::move(parts[2]));
        }
        e = fin(std::move(n));
      } else if (!filters_only && accept("(")) {
        ExprP n = node(Expr::Kind::Call, pos);
        n->args.push_back(std::move(e));
        call_args(*n, depth + 1);
        e = fin(std::move(n));
      } else if (accept("|")) {
        ExprP n = node(Expr::Kind::Filter, pos);
        const size_t name_pos = cur_pos();
        n->name = name_token("a filter name after '|'");
        if (!is_filter(n->name) || n->name == "__slice__") fail(name_pos, "unknown filter '" + n->name + "'");
        n->args.push_back(std::move(e));
        if (accept("(")) call_args(*n, depth + 1);
        e = fin(std::move(n));
      } else if (accept_name("is")) {
        ExprP n = node(Expr::Kind::Test, pos);
        n->negated = accept_name("not");
        if (cur().type == Token::Type::Name) n->name = (*toks_)[t_++].text;
        else if (accept("==")) n->name = "==";
        else fail(cur_pos(), "expected a test name after 'is'" + got());
        if (n->name == "none" || n->name == "None") n->name = "none";
        if (n->name == "true" || n->name == "True") n->name = "true";
        if (n->name == "false" || n->name == "False") n->name = "false";
        if (!is_test(n->name)) fail(pos, "unknown test '" + n->name + "'");
        n->args.push_back(std::move(e));
        if (accept("(")) {
          call_args(*n, depth + 1, false);
        } else if ((cur().type == Token::Type::Name && !is_name("and") && !is_name("or") && !is_name("else") &&
                    !is_name("if") && !is_name("in") && !is_name("is") && !is_name("not")) ||
                   cur().type == Token::Type::String || cur().type == Token::Type::Int ||
                   cur().type == Token::Type::Float || is_op("[") || is_op("{")) {
          // "x is divisibleby 3", "x is sameas false": one argument without parentheses (jinja2's rule).
          n->args.push_back(primary(depth + 1));
        }
        e = fin(std::move(n));
      } else {
        return e;
      }
    }
  }

  std::string src_, name_;
  std::vector<size_t> line_starts_{0};
  std::vector<Piece> pieces_;
  const std::vector<Token>* toks_ = nullptr;
  size_t t_ = 0, tag_pos_ = 0;
};

}  // namespace

Template Template::parse(const std::string& source, const std::string& name) {
  // jinja2 reads "\r\n" and "\r" as "\n", and drops one trailing newline (keep_trailing_newline=False).
  std::string src;
  src.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      src += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else src += source[i];
  }
  if (!src.empty() && src.back() == '\n') src.pop_back();
  Template t;
  t.name_ = name;
  t.body_ = std::make_shared<const Body>(Parser(std::move(src), name).parse());
  return t;
}

}  // namespace retnet::serve::jinja
