"""Evaluation helpers: retnet.logits (every position's logits) and retnet.perplexity."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np

from . import _retnet
from ._ids import Error, as_ids, as_path
from ._model import Model, Tokenizer
from ._session import _check_chunk, _check_mode


def logits(
    model: Model,
    ids: Sequence[int],
    mode: str = "chunkwise",
    *,
    chunk_size: Optional[int] = None,
    prefill: Optional[int] = None,
) -> np.ndarray:
    """float32 [len(ids), vocab]: the logits of every position, from a fresh state.

    The same computation as `retnet logits` (bit for bit): ids[:prefill] (default: all) are
    prefilled in `mode` ("chunkwise", "parallel", "recurrent"; chunk_size None = the model's), the
    rest decoded one at a time. With everything prefilled the array is handed over without a copy
    (it owns the buffer the library wrote; it is writable and nothing else refers to it)."""
    if not isinstance(model, Model):
        raise Error(f"logits: expected a retnet.Model, got {type(model).__name__}")
    arr = as_ids(ids)
    k = len(arr) if prefill is None else int(prefill)
    return _retnet.logits(model._m, arr, _check_mode(mode), _check_chunk(chunk_size), k)


@dataclass(frozen=True)
class PerplexityResult:
    """exp(mean NLL) over the scored tokens (every token but each sequence's/window's first)."""

    perplexity: float
    mean_nll: float  #: nats per scored token
    tokens: int  #: tokens in the sequence (BOS included when the tokenizer adds one)
    scored: int
    nll: np.ndarray  #: float64 [scored]: -log p of each scored token, in order


def perplexity(
    model: Model,
    data: Union[str, "os.PathLike[str]", Sequence[int], np.ndarray, None] = None,
    *,
    text: Optional[str] = None,
    ctx: Optional[int] = None,
    chunk_size: Optional[int] = None,
    tokenizer: Optional[Tokenizer] = None,
) -> PerplexityResult:
    """Perplexity of a text file, a text, or a sequence of token ids: `retnet perplexity`'s protocol
    and numbers (perplexity printed there to 6 decimals equals this one).

    data: a path (str or os.PathLike) of a text file, read as bytes and tokenized as one sequence
        (BOS only if the tokenizer config asks), or a sequence/1-D array of token ids used as given.
    text: a string to score instead of a file.
    The sequence is processed in one chunkwise pass (chunk_size None = the model's) and every token
    after the first is scored; ctx=N scores independent windows of N tokens instead, each from an
    empty state. tokenizer: default the model directory's."""
    if not isinstance(model, Model):
        raise Error(f"perplexity: expected a retnet.Model, got {type(model).__name__}")
    if (data is None) == (text is None):
        raise Error("perplexity: give exactly one of a file path / token ids (data) or text=")
    if ctx is not None and (isinstance(ctx, bool) or not isinstance(ctx, (int, np.integer)) or ctx < 2):
        raise Error(f"ctx: must be None or at least 2 tokens, got {ctx!r}")
    tok = tokenizer if tokenizer is not None else None
    if text is not None or isinstance(data, (str, os.PathLike)):
        tok = tok or model.tokenizer
        if text is not None:
            raw = text.encode("utf-8", "surrogatepass")
        else:
            path = as_path(data)
            try:
                with open(path, "rb") as f:
                    raw = f.read()
            except OSError as e:
                raise Error(f"{path}: {e.strerror or e}") from None
        ids = np.asarray(tok.encode(raw, True), dtype=np.int32)
    else:
        ids = as_ids(data)
    nll, total = _retnet.perplexity(model._m, ids, 0 if ctx is None else int(ctx), _check_chunk(chunk_size))
    n = len(nll)
    mean = total / n
    return PerplexityResult(perplexity=math.exp(mean), mean_nll=mean, tokens=len(ids), scored=n,
                            nll=np.asarray(nll, dtype=np.float64))
