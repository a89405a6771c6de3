// Generated Unicode data (src/tokenizer/unicode_tables.cpp, written by tools/gen_unicode_tables.py).
// Only src/tokenizer/unicode.cpp reads these; everyone else uses the functions in unicode.hpp.
#pragma once
#include <cstddef>
#include <cstdint>

namespace retnet::unicode {

// Runs of one coarse class: entry = (first code point << 4) | UniClass; a run lasts until the next
// entry's first code point. The first entry starts at U+0000 and the table covers up to U+10FFFF.
extern const uint32_t kCategoryRuns[];
extern const size_t kCategoryRunsSize;

// Simple lowercase mappings as flat (code point, lowercase) pairs sorted by code point. U+0130 (the
// only code point whose lowercase is two code points) is absent and handled in code.
extern const uint32_t kLowerPairs[];
extern const size_t kLowerPairsSize;

// Canonical decompositions as flat (code point, first, second) triples sorted by code point; second
// is 0 for singleton decompositions. Hangul syllables are algorithmic and absent.
extern const uint32_t kCanonDecomp[];
extern const size_t kCanonDecompSize;

// Primary composites as flat (first, second, composite) triples sorted by (first, second).
extern const uint32_t kComposePairs[];
extern const size_t kComposePairsSize;

// Runs of one canonical combining class: entry = (first code point << 8) | ccc.
extern const uint32_t kCombiningRuns[];
extern const size_t kCombiningRunsSize;

// Inclusive (first, last) ranges that Rust's char::is_numeric counts as numbers in addition to the
// \p{N} classes of kCategoryRuns (a newer Unicode version than Oniguruma's).
extern const uint32_t kRustOnlyNumbers[];
extern const size_t kRustOnlyNumbersSize;

}  // namespace retnet::unicode
