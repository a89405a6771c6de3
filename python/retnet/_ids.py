"""Argument checks shared by the package: token ids in, retnet.Error out."""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import _retnet

#: The one exception type of the package: every failure the library detects (bad files, bad
#: arguments, out-of-vocabulary ids, snapshots of another model) and every bad argument checked here.
#: A RuntimeError whose message is the library's one-line message.
Error = _retnet.Error
Error.__module__ = "retnet"

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def as_ids(ids: Any, what: str = "ids") -> np.ndarray:
    """Token ids as a C-contiguous 1-D int32 array (no copy when `ids` already is one).

    Accepts a list/tuple/range of ints or a 1-D numpy array of any integer dtype. Refuses, with
    retnet.Error: strings, floats, bools, other shapes, and values outside int32 (which the library
    would otherwise see wrapped around). Ids outside the model's vocabulary are the library's check.
    """
    if isinstance(ids, (str, bytes, bytearray)):
        raise Error(f"{what}: expected a sequence of integer token ids, got {type(ids).__name__} "
                    "(encode text with Tokenizer.encode first)")
    if isinstance(ids, (int, np.integer)) and not isinstance(ids, (bool, np.bool_)):
        raise Error(f"{what}: expected a sequence of token ids, got the single int {int(ids)} (pass [{int(ids)}])")
    if isinstance(ids, np.ndarray):
        arr = ids
    else:
        try:
            arr = np.asarray(ids)
        except (ValueError, TypeError) as e:  # ragged nesting and the like
            raise Error(f"{what}: not a sequence of integer token ids ({e})") from None
        if arr.size == 0 and arr.ndim == 1:
            return np.zeros(0, dtype=np.int32)
    if arr.ndim != 1:
        raise Error(f"{what}: expected a 1-D sequence of token ids, got an array of shape {tuple(arr.shape)}")
    if arr.dtype.kind not in "iu":
        raise Error(f"{what}: expected integer token ids, got dtype {arr.dtype}")
    if arr.dtype != np.int32:
        if arr.size and (int(arr.min()) < _INT32_MIN or int(arr.max()) > _INT32_MAX):
            bad = arr[(arr < _INT32_MIN) | (arr > _INT32_MAX)][0]
            raise Error(f"{what}: token id {int(bad)} is outside the int32 range (and any vocabulary)")
        arr = arr.astype(np.int32)
    return np.ascontiguousarray(arr)


def as_id(token: Any, what: str = "id") -> int:
    """One token id as a Python int in int32 range (bools, floats and arrays refused)."""
    if isinstance(token, (bool, np.bool_)) or not isinstance(token, (int, np.integer)):
        raise Error(f"{what}: expected one integer token id, got {type(token).__name__}")
    v = int(token)
    if not _INT32_MIN <= v <= _INT32_MAX:
        raise Error(f"{what}: token id {v} is outside the int32 range (and any vocabulary)")
    return v


def as_path(path: Any, what: str = "path") -> str:
    """A str or os.PathLike as a str path."""
    try:
        p = os.fspath(path)
    except TypeError:
        raise Error(f"{what}: expected a path (str or os.PathLike), got {type(path).__name__}") from None
    if isinstance(p, bytes):
        p = os.fsdecode(p)
    return p
