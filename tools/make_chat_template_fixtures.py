#!/usr/bin/env python3
"""Expected renderings of the chat templates in tests/data/chat_templates/ (chat_template_test.cpp).

Renders every template with Python's jinja2 the way Hugging Face's apply_chat_template does
(transformers/utils/chat_template_utils.py: ImmutableSandboxedEnvironment with trim_blocks,
lstrip_blocks and the loopcontrols extension; raise_exception, strftime_now, and a tojson that calls
json.dumps with ensure_ascii=False; render(messages=..., tools=None, documents=None,
add_generation_prompt=..., plus the special tokens)), over a fixed set of conversations, and writes
tests/data/chat_templates/expected.json. Run once after changing a template or a conversation:

    python3 tools/make_chat_template_fixtures.py      # needs jinja2 (Debian python3-jinja2, or pip)

The templates are the ones these models ship in tokenizer_config.json, written out for this test
(whitespace and all; they are short public strings):
  qwen2.jinja         Qwen/Qwen2-7B-Instruct (ChatML with a default system prompt)
  qwen2.5.jinja       Qwen/Qwen2.5-7B-Instruct (ChatML, tools and tool-call branches)
  llama2.jinja        meta-llama/Llama-2-7b-chat-hf
  llama3.jinja        meta-llama/Meta-Llama-3-8B-Instruct
  llama3.1.jinja      meta-llama/Llama-3.1-8B-Instruct (date, tools and ipython preamble logic)
  mixtral.jinja       mistralai/Mixtral-8x7B-Instruct-v0.1 (raise_exception on bad role order)
  mistral-v0.3.jinja  mistralai/Mistral-7B-Instruct-v0.3 (optional system message)
  zephyr.jinja        HuggingFaceH4/zephyr-7b-beta (trim_blocks on every line)
  gemma.jinja         google/gemma-7b-it (no system role)
  phi3.jinja          microsoft/Phi-3-mini-4k-instruct
  deepseek-llm.jinja  deepseek-ai/deepseek-llm-7b-chat
  deepseek-v3.jinja   deepseek-ai/DeepSeek-V3 (namespace() state across the loop; written from
                      memory of that template, so it may differ from the current upstream file in
                      detail, which does not matter for what it tests)
  hf-default.jinja    transformers' former default_chat_template (ChatML without a system prompt)
  serve-kjv.jinja     not a model's: the template tests/serve/test_chat_template.py gives the
                      bundled model (expected.json "serve": its rendering of SERVE_CONVERSATION)
  features.jinja      not a model's: the rest of the supported subset (macros, loop filters, slices,
                      string methods, filters, tests, set blocks, break/continue, "+" markers)
"""
import datetime
import json
import os
import sys

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "chat_templates")

TOKENS = {  # bos_token, eos_token as each model's tokenizer_config.json gives them
    "qwen2.jinja": (None, "<|im_end|>"),
    "qwen2.5.jinja": (None, "<|im_end|>"),
    "llama2.jinja": ("<s>", "</s>"),
    "llama3.jinja": ("<|begin_of_text|>", "<|eot_id|>"),
    "llama3.1.jinja": ("<|begin_of_text|>", "<|eot_id|>"),
    "mixtral.jinja": ("<s>", "</s>"),
    "mistral-v0.3.jinja": ("<s>", "</s>"),
    "zephyr.jinja": ("<s>", "</s>"),
    "gemma.jinja": ("<bos>", "<eos>"),
    "phi3.jinja": ("<s>", "<|endoftext|>"),
    "deepseek-llm.jinja": ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    "deepseek-v3.jinja": ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    "hf-default.jinja": ("<s>", "</s>"),
    "features.jinja": ("<s>", "</s>"),
}

CONVERSATIONS = {
    "single": [{"role": "user", "content": "Hello!"}],
    "system_multi": [
        {"role": "system", "content": "You are a pirate."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Arr, hello."},
        {"role": "user", "content": "Where is the treasure?"},
    ],
    "multi_unicode": [
        {"role": "user", "content": "  What is 2+2?  \n"},
        {"role": "assistant", "content": " 4 "},
        {"role": "user", "content": "And 3+3? ünïcödé 🦙 \"quoted\" {{ not a tag }}"},
    ],
    "bad_order": [
        {"role": "user", "content": "one"},
        {"role": "user", "content": "two"},
    ],
    "tool_turns": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "content": "{\"temp\": 21}"},
        {"role": "user", "content": "Thanks"},
    ],
}

SERVE_CONVERSATION = [
    {"role": "system", "content": "You speak like the King James Bible."},
    {"role": "user", "content": "Who made the heaven?"},
    {"role": "assistant", "content": "God made the heaven and the earth."},
    {"role": "user", "content": [{"type": "text", "text": "And "}, {"type": "text", "text": "the light?  "}]},
]

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
                                            "parameters": {"type": "object",
                                                           "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}]


class Raised(jinja2.exceptions.TemplateError):
    """raise_exception(msg) of a template (HF raises TemplateError; a subclass tells it from others)."""


def environment():
    def raise_exception(message):
        raise Raised(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.datetime.now().strftime(fmt)
    return env


def main():
    env = environment()
    cases = []
    for name in sorted(TOKENS):
        with open(os.path.join(HERE, name), encoding="utf-8") as f:
            template = env.from_string(f.read())
        bos, eos = TOKENS[name]
        runs = [(c, True, None) for c in CONVERSATIONS] + [("system_multi", False, None)]
        if name in ("qwen2.5.jinja", "llama3.1.jinja"):
            runs.append(("single", True, TOOLS))
        for conv, gen, tools in runs:
            case = {"template": name, "conversation": conv, "add_generation_prompt": gen, "bos_token": bos,
                    "eos_token": eos, "tools": tools}
            try:
                case["expected"] = template.render(messages=CONVERSATIONS[conv], tools=tools, documents=None,
                                                   add_generation_prompt=gen, bos_token=bos, eos_token=eos)
            except Raised as e:  # raise_exception(msg): the engine gives msg too
                case["error"] = str(e)
            except Exception as e:  # a TypeError etc.: the engine must fail too, in its own words
                case["failure"] = f"{type(e).__name__}: {e}"
            cases.append(case)
    # The server joins OpenAI's text parts into one string before the template sees the message.
    flat = [dict(m, content=m["content"] if isinstance(m["content"], str) else "".join(p["text"] for p in m["content"]))
            for m in SERVE_CONVERSATION]
    with open(os.path.join(HERE, "serve-kjv.jinja"), encoding="utf-8") as f:
        serve = env.from_string(f.read()).render(messages=flat, tools=None, documents=None, add_generation_prompt=True,
                                                 bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    out = {"conversations": CONVERSATIONS, "cases": cases,
           "serve": {"template": "serve-kjv.jinja", "messages": SERVE_CONVERSATION, "expected": serve}}
    with open(os.path.join(HERE, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{len(cases)} cases, {sum('error' in c for c in cases)} raise_exception, "
          f"{sum('failure' in c for c in cases)} other failures", file=sys.stderr)


if __name__ == "__main__":
    main()
