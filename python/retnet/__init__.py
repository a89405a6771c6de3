"""retnet: RetNet language-model inference from Python.

The engine is the C++/CUDA library of this repository (``retnet`` C++ API), linked into the extension
module ``retnet._retnet``. Everything that computes releases the GIL. numpy is the only dependency.

    >>> import retnet
    >>> model = retnet.Model.load("models/kjv-retnet")
    >>> session = retnet.Session(model)
    >>> session.generate("In the beginning", max_tokens=16, temperature=0)
    >>> retnet.logits(model, [1, 2, 3], mode="parallel").shape   # float32 [T, vocab]

See docs/python.md for the tour, and examples/python/ for scripts.
"""
from ._eval import PerplexityResult, logits, perplexity
from ._ids import Error
from ._model import GenerationDefaults, Model, ModelInfo, Tokenizer
from ._session import GenerationResult, Session, SessionStats, decode_batch
from ._retnet import built_with_cuda, cuda_device_name

__version__ = "0.1.0"

__all__ = [
    "Error",
    "GenerationDefaults",
    "GenerationResult",
    "Model",
    "ModelInfo",
    "PerplexityResult",
    "Session",
    "SessionStats",
    "Tokenizer",
    "built_with_cuda",
    "cuda_device_name",
    "decode_batch",
    "logits",
    "perplexity",
    "set_log_level",
]


def set_log_level(level: str) -> None:
    """Sets the library's stderr logging: "debug", "info", "warn" (the default), "error" or "off"."""
    from ._retnet import set_log_level as _set

    _set(level)
