#!/usr/bin/env python3
"""Generate src/tokenizer/unicode_tables.cpp: the Unicode data the tokenizer needs, from Python's unicodedata.

The tokenizer re-implements, without a regex engine, the GPT-2 / Llama-3 pre-tokenizer patterns
(\\p{L}, \\p{N}, \\s), the added-token `single_word` test (\\w), the `Lowercase` normalizer and
NFC/NFD. Those need, per code point: a coarse general category, the simple lowercase mapping, the
canonical decomposition, the canonical combining class and the primary composites. Everything is
emitted as sorted integer arrays; src/tokenizer/unicode.cpp searches them.

    python3.13 tools/gen_unicode_tables.py         # rewrites src/tokenizer/unicode_tables.cpp

The output depends on the Python's Unicode version (printed into the file; the committed file came
from Python 3.13, Unicode 15.1). The Rust tokenizers library matches \\p{..} with Oniguruma's Unicode
16.0 tables; the letters and digits new in 16.0 are listed below so that the classes agree anyway
(checked against tokenizers 0.23.3 for every code point). Other 16.0 additions (new combining marks,
their compositions) are absent until the generator runs on a Python with Unicode 16.
"""
import pathlib
import sys
import unicodedata

MAX_CP = 0x10FFFF
OUT = pathlib.Path(__file__).resolve().parent.parent / "src" / "tokenizer" / "unicode_tables.cpp"

# Coarse classes; must match enum class UniClass in src/tokenizer/unicode.hpp.
OTHER, LETTER, DIGIT, NUMBER_LETTER, NUMBER_OTHER, SPACE, MARK, CONNECTOR = range(8)

# Unicode PropList.txt White_Space (stable since Unicode 6.3). unicodedata does not expose it, and
# str.isspace() also accepts U+001C..U+001F, which White_Space (regex \s, Rust is_whitespace) does not.
WHITE_SPACE = set(range(0x09, 0x0E)) | {0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000}
WHITE_SPACE |= set(range(0x2000, 0x200B))


# Letters and decimal digits new in Unicode 16.0. The Oniguruma inside the Rust tokenizers library
# (0.23) already classifies them, so they are added when this Python's unicodedata is older (< 3.14).
UNICODE_16_LETTERS = [(0x1C89, 0x1C8A), (0xA7CB, 0xA7CD), (0xA7DA, 0xA7DC), (0x105C0, 0x105F3),
                      (0x10D4A, 0x10D65), (0x10D6F, 0x10D85), (0x10EC2, 0x10EC4), (0x11380, 0x11389),
                      (0x1138B, 0x1138B), (0x1138E, 0x1138E), (0x11390, 0x113B5), (0x113B7, 0x113B7),
                      (0x113D1, 0x113D1), (0x113D3, 0x113D3), (0x11BC0, 0x11BE0), (0x13460, 0x143FA),
                      (0x16100, 0x1611D), (0x16D40, 0x16D6C), (0x18CFF, 0x18CFF), (0x1E5D0, 0x1E5ED),
                      (0x1E5F0, 0x1E5F0)]
UNICODE_16_DIGITS = [(0x10D40, 0x10D49), (0x116D0, 0x116E3), (0x11BF0, 0x11BF9), (0x16130, 0x16139),
                     (0x16D70, 0x16D79), (0x1CCF0, 0x1CCF9), (0x1E5F1, 0x1E5FA)]
# Numbers from Unicode 17.0 that Rust's char::is_numeric (the Digits pre-tokenizer) knows but the
# Oniguruma \p{N} of the split regexes does not yet: emitted separately, used only by Digits.
RUST_ONLY_NUMBERS = [(0x11DE0, 0x11DE9), (0x16FF4, 0x16FF6)]
OLD_UNICODE = tuple(int(x) for x in unicodedata.unidata_version.split(".")) < (16,)


def in_ranges(cp, ranges):
    return any(a <= cp <= b for a, b in ranges)


def classify(cp):
    if cp in WHITE_SPACE:
        return SPACE
    if OLD_UNICODE and unicodedata.category(chr(cp)) == "Cn":
        if in_ranges(cp, UNICODE_16_LETTERS):
            return LETTER
        if in_ranges(cp, UNICODE_16_DIGITS):
            return DIGIT
    cat = unicodedata.category(chr(cp))
    if cat[0] == "L":
        return LETTER
    if cat == "Nd":
        return DIGIT
    if cat == "Nl":
        return NUMBER_LETTER
    if cat == "No":
        return NUMBER_OTHER
    if cat[0] == "M":
        return MARK
    if cat == "Pc":
        return CONNECTOR
    return OTHER


def category_runs():
    runs = []
    prev = None
    for cp in range(MAX_CP + 1):
        c = classify(cp)
        if c != prev:
            runs.append((cp << 4) | c)
            prev = c
    return runs


# Case pairs newer than Python 3.13's Unicode 15.1 (from Unicode 16.0 and 17.0) that Rust's
# char::to_lowercase, which the Rust Lowercase normalizer uses, already applies: (first, last, offset)
# or (code point, code point, lowercase - code point). Checked against tokenizers 0.23.3.
NEW_LOWERCASE = [(0x1C89, 0x1C89, 1), (0xA7CB, 0xA7CB, 0x264 - 0xA7CB), (0xA7CC, 0xA7CC, 1), (0xA7CE, 0xA7CE, 1),
                 (0xA7D2, 0xA7D2, 1), (0xA7D4, 0xA7D4, 1), (0xA7DA, 0xA7DA, 1), (0xA7DC, 0xA7DC, 0x19B - 0xA7DC),
                 (0x10D50, 0x10D65, 0x20), (0x16EA0, 0x16EB8, 0x1B)]


def lowercase_pairs():
    pairs, special = [], []
    extra = {cp: cp + off for a, b, off in NEW_LOWERCASE for cp in range(a, b + 1)}
    for cp in range(MAX_CP + 1):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        low = chr(cp).lower()
        if low == chr(cp) and cp in extra:
            low = chr(extra[cp])
        if low == chr(cp):
            continue
        if len(low) == 1:
            pairs.append((cp, ord(low)))
        else:
            special.append((cp, low))
    # Only U+0130 (I with dot above -> "i" + U+0307) lowercases to more than one code point; the
    # C++ side handles it by hand, so fail loudly if a future Unicode adds another.
    assert [cp for cp, _ in special] == [0x130], special
    return pairs


# The Rust tokenizers library normalizes (NFC, NFD) with unicode-normalization-alignments, whose tables
# are Unicode 9.0: combining marks added later have combining class 0 there, and U+11938 (Unicode 13)
# has no decomposition. Copying that keeps NFC/NFD identical to it (checked against tokenizers 0.23.3
# for every code point and for random mark sequences).
MARKS_AFTER_UNICODE_9 = [(0x7FD, 0x7FD), (0x898, 0x89F), (0x8CA, 0x8D3), (0x9FE, 0x9FE), (0xC3C, 0xC3C),
                         (0xD3B, 0xD3C), (0xEBA, 0xEBA), (0x1715, 0x1715), (0x1ABF, 0x1ACE), (0x1DF6, 0x1DFA),
                         (0xA82C, 0xA82C), (0x10D24, 0x10D27), (0x10EAB, 0x10EAC), (0x10EFD, 0x10EFF),
                         (0x10F46, 0x10F50), (0x10F82, 0x10F85), (0x11070, 0x11070), (0x1133B, 0x1133B),
                         (0x1145E, 0x1145E), (0x11839, 0x1183A), (0x1193D, 0x1193E), (0x11943, 0x11943),
                         (0x119E0, 0x119E0), (0x11A34, 0x11A34), (0x11A47, 0x11A47), (0x11A99, 0x11A99),
                         (0x11D42, 0x11D42), (0x11D44, 0x11D45), (0x11D97, 0x11D97), (0x11F41, 0x11F42),
                         (0x16FF0, 0x16FF1), (0x1E08F, 0x1E08F), (0x1E130, 0x1E136), (0x1E2AE, 0x1E2AE),
                         (0x1E2EC, 0x1E2EF), (0x1E4EC, 0x1E4EF)]
DECOMPOSITIONS_AFTER_UNICODE_9 = {0x11938}


def combining_class(cp):
    return 0 if in_ranges(cp, MARKS_AFTER_UNICODE_9) else unicodedata.combining(chr(cp))


def canonical_decomposition(cp):
    if cp in DECOMPOSITIONS_AFTER_UNICODE_9:
        return None
    d = unicodedata.decomposition(chr(cp))
    if not d or d.startswith("<"):
        return None
    return [int(x, 16) for x in d.split()]


def nfc_tables():
    decomp, compose = [], []
    for cp in range(MAX_CP + 1):
        if 0xAC00 <= cp <= 0xD7A3:  # Hangul syllables are algorithmic
            continue
        d = canonical_decomposition(cp)
        if d is None:
            continue
        assert len(d) in (1, 2), (hex(cp), d)
        decomp.append((cp, d[0], d[1] if len(d) == 2 else 0))
        # A primary composite is a canonical pair NFC keeps: composition exclusions, singletons and
        # non-starter decompositions all come back decomposed from NFC.
        if len(d) == 2 and unicodedata.normalize("NFC", chr(cp)) == chr(cp):
            assert combining_class(d[0]) == 0, hex(cp)
            compose.append((d[0], d[1], cp))
    compose.sort()
    ccc_runs = []
    prev = None
    for cp in range(MAX_CP + 1):
        c = combining_class(cp)
        if c != prev:
            ccc_runs.append((cp << 8) | c)
            prev = c
    return decomp, compose, ccc_runs


def emit_array(name, values, per_line=10):
    lines = [f"extern const uint32_t {name}[] = {{"]
    for i in range(0, len(values), per_line):
        lines.append("    " + ", ".join(f"0x{v:X}" for v in values[i:i + per_line]) + ",")
    lines.append("};")
    lines.append(f"extern const size_t {name}Size = {len(values)};")
    return "\n".join(lines)


def main():
    runs = category_runs()
    lower = lowercase_pairs()
    decomp, compose, ccc = nfc_tables()
    parts = [
        "// GENERATED by tools/gen_unicode_tables.py from Python unicodedata "
        f"(Unicode {unicodedata.unidata_version}). Do not edit.",
        "// Layouts are documented in src/tokenizer/unicode_tables.hpp.",
        "#include \"tokenizer/unicode_tables.hpp\"",
        "",
        "namespace retnet::unicode {",
        "",
        emit_array("kCategoryRuns", runs),
        "",
        emit_array("kLowerPairs", [v for p in lower for v in p]),
        "",
        emit_array("kCanonDecomp", [v for t in decomp for v in t], per_line=12),
        "",
        emit_array("kComposePairs", [v for t in compose for v in t], per_line=12),
        "",
        emit_array("kCombiningRuns", ccc),
        "",
        emit_array("kRustOnlyNumbers", [v for r in RUST_ONLY_NUMBERS for v in r]),
        "",
        "}  // namespace retnet::unicode",
        "",
    ]
    OUT.write_text("\n".join(parts))
    print(f"{OUT}: {len(runs)} category runs, {len(lower)} lowercase pairs, {len(decomp)} decompositions, "
          f"{len(compose)} composites, {len(ccc)} combining-class runs (Unicode {unicodedata.unidata_version})",
          file=sys.stderr)


if __name__ == "__main__":
    main()
