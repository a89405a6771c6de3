#!/usr/bin/env python3
"""Tokenizer conformance fixtures: small tokenizers trained with the Rust `tokenizers` library, plus the
ids and strings that library produces for a fixed set of inputs.

    /tmp/venv/bin/python tools/make_tokenizer_fixtures.py      # needs `tokenizers` (0.23.3 here) and `bible`

Writes tests/data/tokenizers/<name>/{tokenizer.json,tokenizer_config.json?,cases.json}, and
tests/data/tokenizers/kjv_cases.json for models/kjv-retnet/tokenizer.json when that file exists (with
an FNV-1a fingerprint of it: the C++ test skips those cases if the model's tokenizer has changed since,
so rerun this script after retraining the bundled model).
Nothing is downloaded: the tokenizers are trained here, deterministically (one thread, fixed corpus),
on the KJV Bible (`bible Gen1:1-Rev22:21`) plus the code and multilingual lines below.

| name           | what it exercises |
|----------------|-------------------|
| bytelevel      | GPT-2 style: ByteLevel pre-tokenizer (GPT-2 regex) + decoder, <|endoftext|>, added tokens with single_word / lstrip / normalized, a non-special token with a space |
| spm_llama      | Llama/Mistral tokenizer.json: Prepend+Replace normalizer, byte_fallback, fuse_unk, <unk>/<s>/</s>, Replace/ByteFallback/Fuse/Strip decoder, merges as pairs, tokenizer_config add_bos_token |
| spm_metaspace  | same vocab, legacy Metaspace pre-tokenizer (add_prefix_space) + ByteFallback/Metaspace decoder, merges as "a b" strings, TemplateProcessing <s> $A </s> |
| spm_first      | same vocab, modern Llama conversion: Metaspace prepend_scheme "first", split false |
| neox_llama3    | bytelevel's vocab with NFC + Split(Llama-3 regex) + ByteLevel(use_regex false), ignore_merges, Sequence[ByteLevel, TemplateProcessing] |
| misc           | bytelevel's vocab with NFD+Lowercase, Split(Qwen2 regex) + Digits + ByteLevel, no decoder (tokens joined by spaces) |
| spm_fused      | spm vocab with an unusual decoder chain: per-token Strip, then Replace / Strip after Fuse (patterns and trailing characters that straddle tokens) |

cases.json ("decoded" is null where the Rust decoder panics): {"roundtrip": bool (decode(encode(text)) == text for every case without the lstrip <mask>), "cases": [{"text", "ids", "decoded", "decoded_raw", ["ids_special"]}],
"invalid_utf8": [{"hex", "ids"}] (ids of bytes.decode("utf-8", "replace")), "decode": [{"ids",
"skip_special", "text"}] (random id sequences, including byte tokens that make invalid UTF-8).
"""
import argparse
import json
import os
import pathlib
import random
import subprocess

os.environ["RAYON_NUM_THREADS"] = "1"  # deterministic training, and polite on a shared machine
os.environ["TOKENIZERS_PARALLELISM"] = "false"

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "tokenizers"
KJV_MODEL = ROOT / "models" / "kjv-retnet"

LLAMA3_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
             r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_RE = LLAMA3_RE.replace(r"\p{N}{1,3}", r"\p{N}")

CODE = '''def fibonacci(n):
    """Return the n-th Fibonacci number."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a

class Stack:
    def __init__(self):
        self.items = []

    def push(self, item):
        self.items.append(item)

#include <stdio.h>
int main(int argc, char** argv) {
\tfor (int i = 0; i < argc; ++i) {
\t\tprintf("%d: %s\\n", i, argv[i]);
\t}
\treturn 0;
}

const x = {"key": [1, 2, 3], "other": null};
if (a && b || !c) { x += 1; } else { y -= 2; }
SELECT name, COUNT(*) FROM users WHERE age >= 18 GROUP BY name;
<html><body><p class="intro">Hello, world!</p></body></html>
'''

MULTILINGUAL = [
    "Ἐν ἀρχῇ ἦν ὁ λόγος, καὶ ὁ λόγος ἦν πρὸς τὸν θεόν, καὶ θεὸς ἦν ὁ λόγος.",
    "В начале было Слово, и Слово было у Бога, и Слово было Бог.",
    "في البدء كان الكلمة، والكلمة كان عند الله، وكان الكلمة الله.",
    "आदि में वचन था, और वचन परमेश्वर के साथ था, और वचन परमेश्वर था।",
    "太初有道，道与神同在，道就是神。",
    "初めに言があった。言は神と共にあった。言は神であった。",
    "태초에 말씀이 계시니라 이 말씀이 하나님과 함께 계셨으니 이 말씀은 곧 하나님이시니라",
    "Au commencement était la Parole, et la Parole était avec Dieu. Déjà naïve café résumé",
    "Im Anfang war das Wort, und das Wort war bei Gott. Straße Übermäßig",
    "Emoji: 😀 😂 🙏 👍 ❤️ 🎉 🔥 ✨",
]

CASES = [
    "", " ", "   ", " " * 10, "\t", "\t\tx", "\n", "\n\n\n", "a\nb", "line1\r\nline2\r\n", "\r\n\r\n",
    "  leading spaces", "trailing spaces  ", " both ", "mixed\t \n \t\n end", "word\n\n  next",
    "In the beginning God created the heaven and the earth.",
    "And God said, Let there be light: and there was light.",
    "Jesus wept.", "Selah. Amen, amen; and Selah!",
    "it's don't they're we've I'm you'll he'd", "IT'S DON'T THEY'RE WE'VE I'M YOU'LL HE'D",
    "O'Brien's 'quoted' ''double'' it''s", "ſ's long-s", "the LORD's house 'Tis",
    "café naïve résumé", "cafe\u0301 nai\u0308ve re\u0301sume\u0301", "\u212b \u00c5 \u2126 \u03a9 A\u030a",
    "a\u0323\u0302 a\u0302\u0323 \u1e69 s\u0307\u0323", "한국어 \u1112\u1161\u11ab\u1100\u116e\u11a8",
    "Ἐν ἀρχῇ ἦν ὁ λόγος", "В начале было Слово", "في البدء كان الكلمة", "आदि में वचन था",
    "太初有道，道与神同在", "初めに言があった。カタカナ ひらがな", "태초에 말씀이 계시니라",
    "Mixed: English, Ελληνικά, Русский, العربية, हिन्दी, 中文, 日本語, 한국어.",
    "😀", "👍🏽 👍🏿", "👨\u200d👩\u200d👧\u200d👦 family", "🏳\ufe0f\u200d🌈", "🇺🇸🇬🇧🇯🇵", "❤️ love",
    "12345678901234567890", "3.14159 2,000,000 1e-10 -42", "٣٤٥ ①②③ ²³ Ⅻ ½",
    "def foo(x):\n    return x * 2\n", "int main() {\n\tprintf(\"hi\\n\");\n}",
    "    indented\n        more\n\t\ttabs", "if (a && b || !c) { x += 1; }", "<html><body>Hi</body></html>",
    '{"key": [1, 2, 3], "nested": {"a": null}}',
    "antidisestablishmentarianism" * 18, "x" * 500, " " * 200 + "end",
    "Hello<|endoftext|>World", "<|endoftext|><|endoftext|>", " <|endoftext|> ", "<|user|>hi <|user|>",
    "a <mask> b", "a   <mask>b", "Amen amen Amen. xAmen Amenx _Amen", "<s>Hello</s>", " <s> x </s> ",
    "Selah and Selah", "the <unk> token", "<0x41> literal", "in the beginning was in the beginning",
    "ẞ ŧ Ɛ ꙮ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "ℌ𝔢𝔩𝔩𝔬 𝕏𐍈", "\u0000NUL\u0000", "\x7f\x01 control \x1b[0m", "zero\u200bwidth\ufeffbom",
    "nbsp\u00a0here", "ideographic\u3000space", "line\u2028sep\u2029para", "\u0085nel", "private\ue000use",
    "‘smart’ “quotes” — dashes … ellipsis", "tab\there", "ends with newline\n",
]
SPECIAL_CASES = ["Hello world", "", "<s>x", "In the beginning"]

INVALID_UTF8 = [b"\x80", b"abc\xffdef", b"\xc3", b"x\xe2\x82", b"\xf0\x9f\x98", b"\xc0\xaf", b"\xe0\x80\xaf",
                b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80", b"ok\xe2\x82\xacok\xe2\x82",
                b"\xf0\x9f\x98\x80\xf0\x9f", b"a\x80\x80\x80b", b"\xfe\xff", b"<|endoftext|>\xff"]


def corpus():
    kjv = subprocess.run(["bible", "Gen1:1-Rev22:21"], check=True, capture_output=True, text=True).stdout
    lines = [l for l in kjv.splitlines() if l.strip()]
    lines += CODE.splitlines() * 20
    lines += MULTILINGUAL * 3
    return lines


def save(tok, name, config=None, edit=None):
    d = OUT / name
    d.mkdir(parents=True, exist_ok=True)
    j = json.loads(tok.to_str())
    if edit:
        edit(j)
    (d / "tokenizer.json").write_text(json.dumps(j, ensure_ascii=False, separators=(",", ":")) + "\n")
    if config is not None:
        (d / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    # Cases come from the file as written (after any edit), loaded back by the library.
    return Tokenizer.from_file(str(d / "tokenizer.json"))


def random_decodes(tok, rng, n=40):
    """Random id sequences and their decode (both skip_special settings alternate)."""
    vocab = tok.get_vocab(with_added_tokens=True)
    ids = sorted(vocab.values())
    # get_vocab() is a hash map: sort everything drawn from it so the fixtures are reproducible.
    byte_ids = sorted(vocab[t] for t in vocab if len(t) == 6 and t.startswith("<0x"))
    if not byte_ids:  # byte-level: the single-character tokens are the byte alphabet
        byte_ids = sorted(i for t, i in vocab.items() if len(t) == 1)
    specials = sorted(i for t, i in vocab.items()
                      if t.startswith("<") and t.endswith(">") and len(t) > 2 and not t.startswith("<0x"))
    out = []
    for k in range(n):
        seq = []
        for _ in range(rng.randint(1, 24)):
            r = rng.random()
            if r < 0.45:
                seq.append(rng.choice(byte_ids))
            elif r < 0.55 and specials:
                seq.append(rng.choice(specials))
            elif r < 0.57:
                seq.append(max(ids) + 5)  # unknown id: skipped
            else:
                seq.append(rng.choice(ids))
        # Valid multi-byte characters spelled with byte tokens, for the byte-fallback path.
        if k % 4 == 0 and len(byte_ids) >= 256:
            names = {i: t for t, i in vocab.items()}
            by_byte = {int(names[i][3:5], 16): i for i in byte_ids if names[i].startswith("<0x")}
            if by_byte:
                seq += [by_byte[b] for b in "é😀".encode()]
        skip = k % 2 == 0
        text = try_decode(tok, seq, skip)
        if text is None:
            continue
        out.append({"ids": seq, "skip_special": skip, "text": text})
    return out


def try_decode(tok, ids, skip):
    """decode(), or None where the Rust Strip decoder panics (text shorter than what it strips)."""
    try:
        return tok.decode(ids, skip_special_tokens=skip)
    except BaseException:
        return None


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def with_specials(tok, config, text):
    """encode(text, add_special=True) as retnet defines it: tokenizer_config.json's add_bos_token /
    add_eos_token when present (transformers rebuilds the post-processor from them), else the
    tokenizer.json post_processor (what the tokenizers library applies)."""
    if config and ("add_bos_token" in config or "add_eos_token" in config):
        def tid(key):
            v = config.get(key)
            return tok.token_to_id(v["content"] if isinstance(v, dict) else v)
        ids = tok.encode(text, add_special_tokens=False).ids
        return ([tid("bos_token")] if config.get("add_bos_token") else []) + ids + \
            ([tid("eos_token")] if config.get("add_eos_token") else [])
    return tok.encode(text, add_special_tokens=True).ids


def write_cases(tok, path, extra=None, config=None):
    cases, roundtrip = [], True
    for text in CASES:
        enc = tok.encode(text, add_special_tokens=False)
        c = {"text": text, "ids": enc.ids, "decoded": try_decode(tok, enc.ids, True),
             "decoded_raw": try_decode(tok, enc.ids, False)}
        # <mask> is lstrip: it swallows the spaces before it, so those texts cannot come back.
        roundtrip = roundtrip and (c["decoded_raw"] == text or "<mask>" in text)
        if text in SPECIAL_CASES:
            c["ids_special"] = with_specials(tok, config, text)
        cases.append(c)
    for text in SPECIAL_CASES:
        if text not in CASES:
            enc = tok.encode(text, add_special_tokens=False)
            cases.append({"text": text, "ids": enc.ids, "decoded": try_decode(tok, enc.ids, True),
                          "decoded_raw": try_decode(tok, enc.ids, False),
                          "ids_special": with_specials(tok, config, text)})
    invalid = [{"hex": b.hex(), "ids": tok.encode(b.decode("utf-8", "replace"), add_special_tokens=False).ids}
               for b in INVALID_UTF8]
    data = {"roundtrip": roundtrip, "cases": cases, "invalid_utf8": invalid,
            "decode": random_decodes(tok, random.Random(path.parent.name if extra is None else "kjv"))}
    if extra:
        data.update(extra)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=0) + "\n")
    return roundtrip


def train_bytelevel(lines):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=2000, min_frequency=2, show_progress=False,
                                  special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(lines, trainer)
    tok.add_tokens([AddedToken("<|user|>", normalized=True, special=False),
                    AddedToken("Amen", single_word=True, normalized=False, special=False),
                    AddedToken("in the beginning", normalized=False, special=False)])
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, normalized=False, special=True)])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def train_spm_vocab(lines):
    """A Llama-like vocab: <unk> <s> </s>, the 256 <0xNN> byte tokens, then BPE pieces (~1000 in all)."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=1000 - 259, show_progress=False, limit_alphabet=100)
    tok.train_from_iterator(lines, trainer)
    model = json.loads(tok.to_str())["model"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = 3 + b
    for t, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1]):
        vocab.setdefault(t, len(vocab))
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    return vocab, merges


def spm_tokenizer(vocab, merges):
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in ("<unk>", "<s>", "</s>")])
    return tok


SPM_DECODER = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                 decoders.Strip(" ", 1, 0)])


def merges_as_strings(j):
    j["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in j["model"]["merges"]]


def merges_as_pairs(j):
    j["model"]["merges"] = [m if isinstance(m, list) else m.split(" ") for m in j["model"]["merges"]]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.parse_args()
    lines = corpus()
    written = {}

    bl = train_bytelevel(lines)
    written["bytelevel"] = save(bl, "bytelevel", edit=merges_as_pairs)

    vocab, merges = train_spm_vocab(lines)
    llama = spm_tokenizer(vocab, merges)
    llama.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    llama.decoder = SPM_DECODER
    llama.add_tokens([AddedToken("Selah", normalized=True, special=False)])
    llama.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    written["spm_llama"] = save(llama, "spm_llama", edit=merges_as_pairs,
                                config={"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>",
                                        "eos_token": "</s>", "unk_token": "<unk>"})

    meta = spm_tokenizer(vocab, merges)
    meta.pre_tokenizer = pre_tokenizers.Metaspace()
    meta.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace()])
    meta.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)])

    def legacy_metaspace(j):
        merges_as_strings(j)
        j["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "add_prefix_space": True}
        j["decoder"]["decoders"][1] = {"type": "Metaspace", "replacement": "▁", "add_prefix_space": True}
    written["spm_metaspace"] = save(meta, "spm_metaspace", edit=legacy_metaspace)

    first = spm_tokenizer(vocab, merges)
    first.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    first.decoder = SPM_DECODER
    written["spm_first"] = save(first, "spm_first", edit=merges_as_pairs)

    bl_json = json.loads(bl.to_str())
    neox = Tokenizer.from_str(json.dumps(bl_json))
    neox.normalizer = normalizers.NFC()
    neox.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(pattern=__import__("tokenizers").Regex(LLAMA3_RE), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    neox.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|endoftext|> $A", special_tokens=[("<|endoftext|>", 0)])])

    def ignore_merges(j):
        merges_as_pairs(j)
        j["model"]["ignore_merges"] = True
    written["neox_llama3"] = save(neox, "neox_llama3", edit=ignore_merges)

    misc = Tokenizer.from_str(json.dumps(bl_json))
    misc.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.Lowercase()])
    misc.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(pattern=__import__("tokenizers").Regex(QWEN2_RE), behavior="isolated", invert=False),
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=False)])

    def no_decoder(j):
        merges_as_strings(j)
        j["decoder"] = None
    written["misc"] = save(misc, "misc", edit=no_decoder)

    fused = spm_tokenizer(vocab, merges)
    fused.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    fused.decoder = decoders.Sequence([decoders.Strip("▁", 0, 1), decoders.ByteFallback(), decoders.Fuse(),
                                       decoders.Replace("▁▁", "<2>"), decoders.Replace("▁", " "),
                                       decoders.Strip(" ", 2, 2)])
    written["spm_fused"] = save(fused, "spm_fused", edit=merges_as_pairs)

    for name, tok in written.items():
        cfg_path = OUT / name / "tokenizer_config.json"
        cfg = json.loads(cfg_path.read_text()) if cfg_path.exists() else None
        rt = write_cases(tok, OUT / name / "cases.json", config=cfg)
        print(f"{name}: vocab {tok.get_vocab_size()}, roundtrip {rt}")
    print("(Rust panic messages on stderr come from spm_fused's Strip decoder on short texts: expected)")

    kjv = KJV_MODEL / "tokenizer.json"
    if kjv.exists():
        tok = Tokenizer.from_file(str(kjv))
        cfg_path = KJV_MODEL / "tokenizer_config.json"
        cfg = json.loads(cfg_path.read_text()) if cfg_path.exists() else None
        # The fingerprint lets the test skip (not fail) if the model is retrained after this was written.
        extra = {"tokenizer_dir": "../../../models/kjv-retnet", "tokenizer_fnv1a64": fnv1a64(kjv.read_bytes())}
        rt = write_cases(tok, OUT / "kjv_cases.json", extra=extra, config=cfg)
        print(f"kjv-retnet: vocab {tok.get_vocab_size()}, roundtrip {rt}")
    else:
        print(f"{kjv} not found: no kjv_cases.json")
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"{OUT}: {total / 1024:.0f} KiB")
    assert total < 1024 * 1024, "tokenizer fixtures must stay under 1 MB"


if __name__ == "__main__":
    main()
