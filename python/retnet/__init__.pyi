# Type stubs of the public API (retnet/__init__.py and the modules it re-exports). tests/python/test_api.py
# checks that every function and method here takes the parameters the code takes.
import os
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional, Sequence, Tuple, Union, overload, Literal

import numpy as np
import numpy.typing as npt

PathLike = Union[str, os.PathLike[str]]
Ids = Union[Sequence[int], npt.NDArray[np.integer]]
Mode = Literal["parallel", "recurrent", "chunkwise"]

__version__: str

class Error(RuntimeError): ...

@dataclass(frozen=True)
class GenerationDefaults:
    do_sample: Optional[bool] = ...
    temperature: Optional[float] = ...
    top_k: Optional[int] = ...
    top_p: Optional[float] = ...

@dataclass(frozen=True)
class ModelInfo:
    family: str
    vocab_size: int
    hidden_size: int
    layers: int
    heads: int
    key_head_dim: int
    value_head_dim: int
    ffn_dim: int
    default_chunk_size: int
    n_params: int
    weight_bytes: int
    decode_weight_bytes: int
    state_bytes: int
    layer_matrix_params: int
    weight_dtype: str
    embedding_dtype: str
    head_dtype: str
    device: str
    threads: int
    bf16_activations: bool
    eos_token_ids: Tuple[int, ...]
    bos_token_id: int
    load_ms: float
    fingerprint: int
    generation: GenerationDefaults = ...

@dataclass(frozen=True)
class GenerationResult:
    text: str
    prompt_tokens: int
    generated_tokens: int
    prompt_ms: float
    eval_ms: float
    stop: str
    seed: int

@dataclass(frozen=True)
class SessionStats:
    prompt_tokens: int
    eval_tokens: int
    prompt_ms: float
    eval_ms: float
    load_ms: float

@dataclass(frozen=True)
class PerplexityResult:
    perplexity: float
    mean_nll: float
    tokens: int
    scored: int
    nll: npt.NDArray[np.float64]

class Tokenizer:
    def __init__(self, native: object) -> None: ...
    @classmethod
    def load(cls, path: PathLike) -> Tokenizer: ...
    def encode(self, text: Union[str, bytes], add_special: bool = True) -> List[int]: ...
    def decode(self, ids: Ids, skip_special: bool = True) -> str: ...
    def token_bytes(self, id: int, first: bool = False) -> bytes: ...
    def id_to_token(self, id: int) -> str: ...
    def token_to_id(self, token: str) -> Optional[int]: ...
    def is_special(self, id: int) -> bool: ...
    @property
    def vocab_size(self) -> int: ...
    def __len__(self) -> int: ...
    @property
    def bos_id(self) -> Optional[int]: ...
    @property
    def eos_id(self) -> Optional[int]: ...

class Model:
    def __init__(self, native: object) -> None: ...
    @classmethod
    def load(
        cls,
        path: PathLike,
        device: Literal["auto", "cpu", "cuda"] = "auto",
        threads: int = 0,
        dtype: Optional[Literal["f32", "f16", "bf16"]] = None,
        *,
        angles: Literal["reference", "exact"] = "reference",
        check_weights: bool = False,
        bf16_activations: bool = False,
        quantize: Optional[Literal["q8_0", "q4_0", "q4_k"]] = None,
        progress: Optional[Callable[[int, int], Optional[bool]]] = None,
    ) -> Model: ...
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
    ) -> Model: ...
    @property
    def info(self) -> ModelInfo: ...
    @property
    def path(self) -> Optional[str]: ...
    @property
    def tokenizer(self) -> Tokenizer: ...
    @property
    def vocab_size(self) -> int: ...

class Session:
    last_generation: Optional[GenerationResult]
    def __init__(self, model: Model) -> None: ...
    @property
    def model(self) -> Model: ...
    @property
    def position(self) -> int: ...
    def prefill(
        self,
        ids: Ids,
        mode: Mode = "chunkwise",
        chunk_size: Optional[int] = None,
        all_logits: bool = False,
        *,
        copy: bool = True,
    ) -> npt.NDArray[np.float32]: ...
    def decode(self, id: int, *, copy: bool = True) -> npt.NDArray[np.float32]: ...
    def logits(self, *, copy: bool = True) -> Optional[npt.NDArray[np.float32]]: ...
    @overload
    def generate(
        self,
        prompt: Union[str, Ids],
        max_tokens: int = 128,
        temperature: Optional[float] = None,
        top_k: Optional[int] = None,
        top_p: Optional[float] = None,
        seed: Optional[int] = None,
        stop: Union[None, str, int, Sequence[Union[str, int]]] = None,
        *,
        stream: Literal[False] = False,
        min_p: Optional[float] = None,
        repeat_penalty: Optional[float] = None,
        repeat_last_n: Optional[int] = None,
        frequency_penalty: Optional[float] = None,
        presence_penalty: Optional[float] = None,
        samplers: Optional[str] = None,
        ignore_eos: bool = False,
        add_special: bool = True,
        absorbed: int = 0,
        mode: Mode = "chunkwise",
        chunk_size: Optional[int] = None,
        use_generation_config: bool = True,
        tokenizer: Optional[Tokenizer] = None,
    ) -> str: ...
    @overload
    def generate(
        self,
        prompt: Union[str, Ids],
        max_tokens: int = 128,
        temperature: Optional[float] = None,
        top_k: Optional[int] = None,
        top_p: Optional[float] = None,
        seed: Optional[int] = None,
        stop: Union[None, str, int, Sequence[Union[str, int]]] = None,
        *,
        stream: Literal[True],
        min_p: Optional[float] = None,
        repeat_penalty: Optional[float] = None,
        repeat_last_n: Optional[int] = None,
        frequency_penalty: Optional[float] = None,
        presence_penalty: Optional[float] = None,
        samplers: Optional[str] = None,
        ignore_eos: bool = False,
        add_special: bool = True,
        absorbed: int = 0,
        mode: Mode = "chunkwise",
        chunk_size: Optional[int] = None,
        use_generation_config: bool = True,
        tokenizer: Optional[Tokenizer] = None,
    ) -> Iterator[str]: ...
    def save_state(self) -> bytes: ...
    def load_state(self, data: Union[bytes, bytearray, memoryview]) -> None: ...
    def save_state_file(self, path: PathLike) -> None: ...
    def load_state_file(self, path: PathLike) -> None: ...
    def clone(self) -> Session: ...
    def reset(self) -> None: ...
    def history_matches(self, ids: Ids) -> bool: ...
    @property
    def stats(self) -> SessionStats: ...

def decode_batch(sessions: Sequence[Session], ids: Ids) -> npt.NDArray[np.float32]: ...
def logits(
    model: Model,
    ids: Ids,
    mode: Mode = "chunkwise",
    *,
    chunk_size: Optional[int] = None,
    prefill: Optional[int] = None,
) -> npt.NDArray[np.float32]: ...
def perplexity(
    model: Model,
    data: Union[PathLike, Ids, None] = None,
    *,
    text: Optional[str] = None,
    ctx: Optional[int] = None,
    chunk_size: Optional[int] = None,
    tokenizer: Optional[Tokenizer] = None,
) -> PerplexityResult: ...
def set_log_level(level: Literal["debug", "info", "warn", "error", "off"]) -> None: ...
def built_with_cuda() -> bool: ...
def cuda_device_name() -> str: ...
