#!/usr/bin/env bash
# The shared libretnet exports its public API and nothing else (include/retnet/export.h). Reads its
# dynamic symbols (nm -D --defined-only, demangled) and fails, listing them, for any symbol that is not
#   * a function of the C API declared in include/retnet/retnet.h (retnet_*);
#   * a retnet:: name of the C++ API: every scope after retnet:: is a class or struct that
#     include/retnet defines (not one it only declares, such as the Impl types), and the last part is
#     a function declared there, or such a class (constructors, destructors, typeinfo, vtables);
#   * one of the symbols the linker defines in a shared object (_init, _fini, _edata, _end, __bss_start).
# So nothing of nlohmann_json, fmt, spdlog, CLI11 or std::, and no internal retnet:: class or function.
# It also checks that every C API function and retnet::Error's typeinfo (to catch it by type) are
# exported. Exits 77 (ctest: skipped) when libretnet is a static library.
# Usage: exported_symbols_test.sh LIBRETNET INCLUDE_DIR
set -euo pipefail
lib=$1
inc=$2
case $lib in
  *.so | *.so.*) ;;
  *)
    echo "exported_symbols: SKIPPED: $lib is not a shared library (RETNET_SHARED=OFF)"
    exit 77
    ;;
esac

strip_comments() { perl -0777 -pe 's{/\*.*?\*/}{}gs; s{//[^\n]*}{}g' "$@"; }
headers=$(strip_comments "$inc"/retnet/*.h "$inc"/retnet/*.hpp)
# Classes and structs the headers define: a head followed by a base clause or a body.
classes=$(grep -oE '\b(class|struct) +(RETNET_API +)?[A-Za-z_][A-Za-z0-9_]*( +final)? *[:{]' <<<"$headers" |
  sed -E 's/^(class|struct) +(RETNET_API +)?//; s/( +final)? *[:{]$//' | sort -u)
# Every name followed by '(': the declared functions (and some keywords, which are harmless here).
functions=$(grep -oE '[A-Za-z_][A-Za-z0-9_]* *\(' <<<"$headers" | sed -E 's/ *\($//' | sort -u)
c_api=$(strip_comments "$inc"/retnet/retnet.h | grep -oE '\bretnet_[a-z0-9_]+ *\(' | sed -E 's/ *\($//' | sort -u)

in_list() { grep -qxF -- "$1" <<<"$2"; }

allowed() {
  local sym=$1 special=0 name rest
  case $sym in
    _init | _fini | _edata | _end | __bss_start) return 0 ;;
    retnet_*) in_list "$sym" "$c_api"; return ;;
    "typeinfo name for "* | "typeinfo for "* | "vtable for "*) special=1; sym=${sym#* for } ;;
  esac
  [[ $sym == retnet::* ]] || return 1
  name=${sym%%(*}                                # the qualified name, without the parameters
  name=$(sed -E 's/\[abi:[^]]*\]//g' <<<"$name") # std::string results carry [abi:cxx11]
  rest=${name#retnet::}
  [ -n "$rest" ] || return 1
  local -a parts
  IFS=$'\n' read -r -d '' -a parts < <(sed 's/::/\n/g' <<<"$rest" && printf '\0')
  local n=${#parts[@]} i
  for ((i = 0; i < n - 1; i++)); do
    in_list "${parts[i]}" "$classes" || return 1
  done
  local last=${parts[n - 1]}
  if ((special)); then
    in_list "$last" "$classes"
    return
  fi
  [[ $last == operator* ]] && return 0
  in_list "${last#\~}" "$classes" || in_list "$last" "$functions"
}

symbols=$(nm -D --defined-only -C "$lib" | sed -E 's/^[0-9a-fA-F]* *[A-Za-z] //')
total=$(wc -l <<<"$symbols")
bad=()
while IFS= read -r s; do
  [ -n "$s" ] || continue
  allowed "$s" || bad+=("$s")
done <<<"$symbols"

missing=()
for f in $c_api; do
  in_list "$f" "$symbols" || missing+=("$f")
done
in_list "typeinfo for retnet::Error" "$symbols" || missing+=("typeinfo for retnet::Error")

status=0
if ((${#bad[@]})); then
  echo "FAIL: $lib exports ${#bad[@]} symbols outside the public API (of $total):" >&2
  printf '  %s\n' "${bad[@]}" >&2
  status=1
fi
if ((${#missing[@]})); then
  echo "FAIL: $lib does not export these public symbols:" >&2
  printf '  %s\n' "${missing[@]}" >&2
  status=1
fi
((status)) || echo "exported_symbols: $lib exports $total symbols, all of the public API"
exit $status
