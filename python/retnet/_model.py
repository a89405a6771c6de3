"""retnet.Model, its ModelInfo, and retnet.Tokenizer."""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence, Tuple, Union

import numpy as np

from . import _retnet
from ._ids import Error, as_id, as_ids, as_path

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class GenerationDefaults:
    """Sampling defaults of the model directory's generation_config.json (None: not given).

    Session.generate applies them unless told not to (use_generation_config=False); its own
    arguments override them, as the CLI's flags do."""

    do_sample: Optional[bool] = None
    temperature: Optional[float] = None
    top_k: Optional[int] = None
    top_p: Optional[float] = None


@dataclass(frozen=True)
class ModelInfo:
    """What Model.load read and chose (the C++ ModelInfo; docs/library.md explains each field)."""

    family: str  #: "torchscale", "syncdoth" or "fla"
    vocab_size: int
    hidden_size: int
    layers: int
    heads: int
    key_head_dim: int
    value_head_dim: int
    ffn_dim: int
    default_chunk_size: int
    n_params: int  #: parameters read from the checkpoint
    weight_bytes: int  #: bytes of weights as stored
    decode_weight_bytes: int  #: weight bytes one decode step reads
    state_bytes: int  #: bytes of one Session's recurrent state (constant in the context length)
    layer_matrix_params: int
    weight_dtype: str  #: the layers' matrices' type ("F32", "F16", "BF16", "q8_0", "q4_0", "q4_k") or "mixed"
    embedding_dtype: str  #: the embedding table's type (kept at the source precision by quantization)
    head_dtype: str  #: the LM head's type
    device: str  #: "cpu" or "cuda (<GPU name>)"
    threads: int
    bf16_activations: bool
    eos_token_ids: Tuple[int, ...]
    bos_token_id: int  #: -1 if none
    load_ms: float
    fingerprint: int  #: identity of the weights, carried by state snapshots
    generation: GenerationDefaults = field(default_factory=GenerationDefaults)

    @classmethod
    def _from_native(cls, d: dict) -> "ModelInfo":
        d = dict(d)
        d["eos_token_ids"] = tuple(d["eos_token_ids"])
        d["generation"] = GenerationDefaults(**d["generation"])
        return cls(**d)


class Tokenizer:
    """A Hugging Face tokenizer.json (BPE: byte-level and SentencePiece-style), without Python deps.

    encode()/decode() reproduce the Rust `tokenizers` library. Immutable and thread-safe; calls
    release the GIL."""

    __slots__ = ("_t",)

    def __init__(self, native: _retnet.Tokenizer):
        self._t = native

    @classmethod
    def load(cls, path: PathLike) -> "Tokenizer":
        """Loads a directory holding tokenizer.json (and optionally tokenizer_config.json, whose
        add_bos_token/add_eos_token are honoured), or a tokenizer.json file. Raises retnet.Error."""
        return cls(_retnet.Tokenizer.load(as_path(path)))

    def encode(self, text: Union[str, bytes], add_special: bool = True) -> list:
        """Token ids of `text` (a str, or bytes taken as UTF-8 with invalid sequences replaced), with
        BOS/EOS around it as the tokenizer config asks when add_special is true."""
        if isinstance(text, str):
            data = text.encode("utf-8", "surrogatepass")
        elif isinstance(text, (bytes, bytearray, memoryview)):
            data = bytes(text)
        else:
            raise Error(f"encode: expected str or bytes, got {type(text).__name__}")
        return self._t.encode(data, bool(add_special))

    def decode(self, ids: Sequence[int], skip_special: bool = True) -> str:
        """The text of `ids` (always valid UTF-8; unknown ids are skipped)."""
        return self._t.decode(as_ids(ids), bool(skip_special))

    def token_bytes(self, id: int, first: bool = False) -> bytes:
        """The raw bytes token `id` contributes to decode() (may be part of a UTF-8 character)."""
        return self._t.token_bytes(as_id(id), bool(first))

    def id_to_token(self, id: int) -> str:
        """The token's string in the vocabulary (e.g. "Ġthe")."""
        return self._t.token_text(as_id(id))

    def token_to_id(self, token: str) -> Optional[int]:
        """The id of a vocabulary or added token string (exact match), or None."""
        return self._t.token_to_id(token)

    def is_special(self, id: int) -> bool:
        return self._t.is_special(as_id(id))

    @property
    def vocab_size(self) -> int:
        return self._t.vocab_size

    def __len__(self) -> int:
        return self._t.vocab_size

    @property
    def bos_id(self) -> Optional[int]:
        v = self._t.bos_id
        return None if v < 0 else v

    @property
    def eos_id(self) -> Optional[int]:
        v = self._t.eos_id
        return None if v < 0 else v

    def __repr__(self) -> str:
        return f"<retnet.Tokenizer vocab_size={self.vocab_size}>"


class Model:
    """A loaded RetNet model: immutable, shared by any number of Sessions and threads.

    Keeps its weights (memory-mapped on the CPU) alive as long as this object or a Session of it is."""

    __slots__ = ("_m", "_info", "_tokenizer", "_lock", "__weakref__")

    def __init__(self, native: _retnet.Model):
        if not isinstance(native, _retnet.Model):
            raise Error("Model: use retnet.Model.load(path) or retnet.Model.random(...)")
        self._m = native
        self._info = ModelInfo._from_native(native.info())
        self._tokenizer: Optional[Tokenizer] = None
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        path: PathLike,
        device: str = "auto",
        threads: int = 0,
        dtype: Optional[str] = None,
        *,
        angles: str = "reference",
        check_weights: bool = False,
        bf16_activations: bool = False,
        quantize: Optional[str] = None,
        progress: Optional[Callable[[int, int], Optional[bool]]] = None,
    ) -> "Model":
        """Loads a Hugging Face-style model directory (config.json + safetensors, sharded or not).

        device: "auto" (CUDA when this build has it and a GPU is present, else the CPU), "cpu" or
            "cuda". threads: CPU threads, 0 = all. dtype: None keeps the checkpoint's weight dtypes;
            "f32", "f16" or "bf16" converts the matrices at load. angles: "reference" (as the
            PyTorch implementations compute rotations) or "exact" (float64 angles, for very long
            contexts). check_weights: scan every weight for NaN/Inf first. bf16_activations: faster,
            inexact bf16 prefill on CPUs with AVX512-BF16. quantize: None, or "q8_0", "q4_0" or "q4_k"
            to block-quantize the projection matrices at load for this run (as `retnet quantize` would,
            embedding kept, head q8_0; a directory written by `retnet quantize` loads as it is). progress: called as progress(done, total)
            in bytes while the weights load; return False to cancel (raises retnet.Error), an
            exception it raises ends the load and propagates.
        Raises retnet.Error naming the file, key or tensor on any problem (a missing directory, a
        malformed config or checkpoint, too little memory)."""
        if dtype is None:
            dtype = ""
        if not isinstance(dtype, str):
            raise Error(f"dtype: expected None or one of 'f32', 'f16', 'bf16', got {dtype!r}")
        if quantize is None:
            quantize = ""
        if not isinstance(quantize, str):
            raise Error(f"quantize: expected None or one of 'q8_0', 'q4_0', 'q4_k', got {quantize!r}")
        if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)):
            raise Error(f"threads: expected an int, got {type(threads).__name__}")
        if progress is not None and not callable(progress):
            raise Error("progress: expected a callable progress(done, total) or None")
        native = _retnet.Model.load(as_path(path), str(device), int(threads), dtype, str(angles),
                                    bool(check_weights), bool(bf16_activations), quantize, progress)
        return cls(native)

    @classmethod
    def random(
        cls,
        *,
        family: str = "torchscale",
        vocab_size: int = 32000,
        hidden_size: int = 768,
        layers: int = 12,
        heads: int = 3,
        value_dim: int = 0,
        ffn_dim: int = 0,
        dtype: str = "bf16",
        seed: int = 1,
        device: str = "auto",
        threads: int = 0,
        angles: str = "reference",
    ) -> "Model":
        """A model with random weights of the given shape (no checkpoint, no tokenizer): for
        benchmarks and tests at realistic sizes. value_dim/ffn_dim 0: 2 x hidden_size."""
        return cls(_retnet.Model.random(family, int(vocab_size), int(hidden_size), int(layers), int(heads),
                                        int(value_dim), int(ffn_dim), dtype, int(seed), device, int(threads),
                                        angles))

    @property
    def info(self) -> ModelInfo:
        """What was loaded and where it runs (a frozen dataclass)."""
        return self._info

    @property
    def path(self) -> Optional[str]:
        """The model directory, or None for a random model."""
        return self._m.dir or None

    @property
    def tokenizer(self) -> Tokenizer:
        """The tokenizer of the model directory, loaded on first use (retnet.Error when there is
        none, or for random models)."""
        with self._lock:
            if self._tokenizer is None:
                if not self._m.dir:
                    raise Error("Model.tokenizer: a random model has no tokenizer (pass tokenizer=...)")
                self._tokenizer = Tokenizer.load(self._m.dir)
            return self._tokenizer

    @property
    def vocab_size(self) -> int:
        return self._info.vocab_size

    def __repr__(self) -> str:
        i = self._info
        return (f"<retnet.Model {i.family} layers={i.layers} hidden={i.hidden_size} vocab={i.vocab_size} "
                f"{i.weight_dtype} on {i.device}>")
