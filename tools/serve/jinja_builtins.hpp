// Filters, tests, global functions and Python methods of the Jinja subset (jinja.hpp), with the
// semantics jinja2 3.1 and Python give them.
#pragma once
#include <string>
#include <vector>

#include "jinja_value.hpp"

namespace retnet::serve::jinja {

bool is_filter(const std::string& name);
bool is_test(const std::string& name);
Value apply_filter(Renderer& r, const std::string& name, const Value& v, std::vector<Value>& args, KwArgs& kwargs);
bool apply_test(Renderer& r, const std::string& name, const Value& v, std::vector<Value>& args);
// range, namespace, dict, raise_exception, strftime_now.
std::vector<std::pair<std::string, Value>> global_functions();
// obj.name: a dict's methods first, then its key (jinja2's getattr); a str's methods.
Value get_attr(Renderer& r, const Value& obj, const std::string& name);
// obj[key]: a dict's key, a list's or str's index (negative from the end), then get_attr for strings.
Value get_item(Renderer& r, const Value& obj, const Value& key);
// Python's iteration: a list's items, a dict's keys, a str's characters; Undefined: nothing.
Array iterate(Renderer& r, const Value& v, const char* what);
void append_utf8(std::string& out, uint32_t cp);

}  // namespace retnet::serve::jinja
