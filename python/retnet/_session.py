"""retnet.Session (one sequence's recurrent state), generation, and retnet.decode_batch."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Union

import numpy as np

from . import _retnet
from ._ids import Error, as_id, as_ids, as_path
from ._model import Model, PathLike, Tokenizer

_MODES = ("parallel", "recurrent", "chunkwise")


@dataclass(frozen=True)
class GenerationResult:
    """How the last generate() call went (Session.last_generation)."""

    text: str  #: the text returned (or yielded, for a stream)
    prompt_tokens: int  #: prompt tokens prefilled by this call
    generated_tokens: int
    prompt_ms: float
    eval_ms: float
    stop: str  #: "length" (max_tokens), "eos", "stop" (a stop string), "cancelled" (stream closed)
    seed: int  #: the sampler seed used (chosen at random when none was given)


@dataclass(frozen=True)
class SessionStats:
    """Cumulative counters since the Session was made or reset()."""

    prompt_tokens: int
    eval_tokens: int
    prompt_ms: float
    eval_ms: float
    load_ms: float


def _check_mode(mode: str) -> str:
    if mode not in _MODES:
        raise Error(f"mode: {mode!r} is not one of 'parallel', 'recurrent', 'chunkwise'")
    return mode


def _check_chunk(chunk_size: Optional[int]) -> int:
    if chunk_size is None:
        return 0
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size <= 0:
        raise Error(f"chunk_size: must be None or a positive int, got {chunk_size!r}")
    return int(chunk_size)


class Session:
    """One sequence's recurrent state on a Model: prefill, decode, generate, snapshots.

    The state has a constant size whatever the context length. A Session is used by one thread at a
    time (a second thread's call raises retnet.Error instead of racing); different Sessions may run on
    different threads concurrently, the GIL released while they compute.

    Logits come back as float32 numpy arrays. By default each call returns a copy the caller owns.
    With copy=False, prefill()/decode()/logits() return a read-only view of the session's own buffer,
    without a copy: it keeps the session alive, and its contents are replaced by the next prefill,
    decode, decode_batch, generate, reset or load_state on this session (copy it to keep it)."""

    __slots__ = ("_s", "_model", "last_generation", "__weakref__")

    def __init__(self, model: Model):
        if not isinstance(model, Model):
            raise Error(f"Session: expected a retnet.Model, got {type(model).__name__}")
        self._model = model
        self._s = _retnet.Session(model._m)
        #: The GenerationResult of the last generate() call (of a stream: once it ended), or None.
        self.last_generation: Optional[GenerationResult] = None

    @property
    def model(self) -> Model:
        return self._model

    @property
    def position(self) -> int:
        """Tokens absorbed so far (the absolute position of the next token)."""
        return self._s.position

    def prefill(
        self,
        ids: Sequence[int],
        mode: str = "chunkwise",
        chunk_size: Optional[int] = None,
        all_logits: bool = False,
        *,
        copy: bool = True,
    ) -> np.ndarray:
        """Absorbs `ids` into the state; returns float32 logits: [vocab] of the last token, or
        [len(ids), vocab] with all_logits.

        mode: "chunkwise" (default), "parallel" (at most 8192 tokens per call) or "recurrent"; the
        resulting state is the same whichever mode built it. chunk_size: None = the model's. Raises
        retnet.Error, state unchanged, for no ids, an id outside the vocabulary, or a bad dtype/shape.
        Ctrl-C stops a long prefill between blocks (whole blocks absorbed) and raises KeyboardInterrupt."""
        arr = as_ids(ids)
        return self._s.prefill(arr, _check_mode(mode), _check_chunk(chunk_size), bool(all_logits), bool(copy))

    def decode(self, id: int, *, copy: bool = True) -> np.ndarray:
        """One recurrent step on token `id`; returns its float32 [vocab] logits."""
        return self._s.decode(as_id(id), bool(copy))

    def logits(self, *, copy: bool = True) -> Optional[np.ndarray]:
        """The logits of the last prefill/decode/decode_batch ([vocab], or [T, vocab] after an
        all_logits prefill); None after construction, clone(), reset(), load_state()."""
        return self._s.logits(bool(copy))

    def generate(
        self,
        prompt: Union[str, Sequence[int]],
        max_tokens: int = 128,
        temperature: Optional[float] = None,
        top_k: Optional[int] = None,
        top_p: Optional[float] = None,
        seed: Optional[int] = None,
        stop: Union[None, str, int, Sequence[Union[str, int]]] = None,
        *,
        stream: bool = False,
        min_p: Optional[float] = None,
        repeat_penalty: Optional[float] = None,
        repeat_last_n: Optional[int] = None,
        frequency_penalty: Optional[float] = None,
        presence_penalty: Optional[float] = None,
        samplers: Optional[str] = None,
        ignore_eos: bool = False,
        add_special: bool = True,
        absorbed: int = 0,
        mode: str = "chunkwise",
        chunk_size: Optional[int] = None,
        use_generation_config: bool = True,
        tokenizer: Optional[Tokenizer] = None,
    ) -> Union[str, Iterator[str]]:
        """Continues the session with `prompt` and samples up to `max_tokens` tokens.

        Returns the generated text, or with stream=True an iterator yielding it piece by piece
        (whole UTF-8 characters; the pieces concatenate to exactly the text a non-streaming call
        with the same arguments and seed returns). Every sampled token enters the state, so a chat
        calls generate() again on the same session.

        prompt: text (encoded with the model's tokenizer, BOS/EOS as its config asks unless
            add_special=False) or token ids (used as given; absorbed=k says the session already
            holds exactly ids[:k], e.g. after load_state, and prefills only the rest).
        max_tokens: < 0 until end of sequence; 0 only absorbs the prompt.
        temperature, top_k, top_p, min_p, repeat_penalty, repeat_last_n, frequency_penalty,
            presence_penalty, samplers (stage order, e.g. "top_k;top_p;temperature"): llama.cpp's
            sampling (temperature 0 = greedy). None: the model's generation_config.json value if it
            gives one (use_generation_config=False ignores the file), else the library's default
            (temperature 0.8, top_k 40, top_p 0.95, min_p 0.05).
        seed: the sampler seed (same seed, same text on every machine); None picks one at random
            (last_generation.seed tells which).
        stop: a string, a token id, or a list of them. Generation ends at the end-of-sequence tokens
            (unless ignore_eos) and at any of these; a stop string is not part of the returned text.
        A stream holds the session until it is exhausted or closed (close(), or dropping it): other
        calls on the session raise retnet.Error meanwhile. Closing it early stops the generation;
        the state then holds the tokens of the text yielded.
        Raises retnet.Error for invalid sampling parameters or prompt ids."""
        if seed is None:
            seed = secrets.randbits(64)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**64:
            raise Error(f"seed: expected an int in [0, 2**64), got {seed!r}")
        tok = tokenizer if tokenizer is not None else self._model.tokenizer
        if not isinstance(tok, Tokenizer):
            raise Error(f"tokenizer: expected a retnet.Tokenizer, got {type(tok).__name__}")
        stop_ids: List[int] = []
        stop_strings: List[str] = []
        stops = [] if stop is None else [stop] if isinstance(stop, (str, int, np.integer)) else list(stop)
        for s in stops:
            if isinstance(s, str):
                stop_strings.append(s)
            else:
                stop_ids.append(as_id(s, "stop"))
        if isinstance(prompt, str):
            p: object = prompt
        else:
            p = as_ids(prompt, "prompt")
        spec = dict(
            absorbed=int(absorbed), max_tokens=int(max_tokens), use_generation_config=bool(use_generation_config),
            temperature=None if temperature is None else float(temperature),
            top_k=None if top_k is None else int(top_k), top_p=None if top_p is None else float(top_p),
            min_p=None if min_p is None else float(min_p),
            repeat_penalty=None if repeat_penalty is None else float(repeat_penalty),
            repeat_last_n=None if repeat_last_n is None else int(repeat_last_n),
            frequency_penalty=None if frequency_penalty is None else float(frequency_penalty),
            presence_penalty=None if presence_penalty is None else float(presence_penalty),
            samplers=samplers, seed=int(seed), add_special=bool(add_special), mode=_check_mode(mode),
            chunk_size=_check_chunk(chunk_size), ignore_eos=bool(ignore_eos), stop_ids=stop_ids,
            stop_strings=stop_strings, tokenizer_eos=-1 if tok.eos_id is None else tok.eos_id)
        if stream:
            native = _retnet.stream(self._s, self._model._m, tok._t, p, spec)
            return self._stream(native)
        r = _retnet.generate(self._s, self._model._m, tok._t, p, spec)
        self.last_generation = GenerationResult(**r)
        return self.last_generation.text

    def _stream(self, native: "_retnet.Stream") -> Iterator[str]:
        try:
            while True:
                piece = native.next()
                if piece is None:
                    break
                yield piece
        finally:
            native.close()
            r = native.result()
            if r is not None:
                self.last_generation = GenerationResult(**r)

    def save_state(self) -> bytes:
        """A snapshot of the state (format version, model fingerprint, position, a digest of the
        tokens absorbed, checksum): load it into a Session of the same model, here or in another
        process (the CLI's --prompt-cache, the C++ Session::load_state). Logits are not saved."""
        return self._s.save_state()

    def load_state(self, data: Union[bytes, bytearray, memoryview]) -> None:
        """Replaces the state with a snapshot from save_state(). Raises retnet.Error, session
        unchanged, for a snapshot of another model or format version, or a damaged one."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise Error(f"load_state: expected bytes, got {type(data).__name__}")
        self._s.load_state(bytes(data))

    def save_state_file(self, path: PathLike) -> None:
        """save_state() written to `path` atomically (a failure never leaves a partial file)."""
        self._s.save_state_file(as_path(path))

    def load_state_file(self, path: PathLike) -> None:
        self._s.load_state_file(as_path(path))

    def clone(self) -> "Session":
        """An independent copy of the state and position (stats and logits start empty)."""
        c = Session.__new__(Session)
        c._model = self._model
        c._s = self._s.clone()
        c.last_generation = None
        return c

    def reset(self) -> None:
        """Back to the empty state at position 0."""
        self._s.reset()

    def history_matches(self, ids: Sequence[int]) -> bool:
        """Whether the tokens absorbed since construction/reset (or carried in by load_state) are
        exactly `ids`."""
        return self._s.history_matches(as_ids(ids))

    @property
    def stats(self) -> SessionStats:
        return SessionStats(**self._s.stats())

    def __repr__(self) -> str:
        return f"<retnet.Session position={self.position} on {self._model!r}>"


def decode_batch(sessions: Sequence[Session], ids: Sequence[int]) -> np.ndarray:
    """Advances each session by its token in one step that reads the weights once; returns float32
    [len(sessions), vocab] logits. Equal, bit for bit, to decoding each session alone. The sessions
    must share one Model and be distinct (retnet.Error otherwise, nothing changed)."""
    sessions = list(sessions)
    for s in sessions:
        if not isinstance(s, Session):
            raise Error(f"decode_batch: expected retnet.Session objects, got {type(s).__name__}")
    arr = as_ids(ids)
    if len(arr) != len(sessions):
        raise Error(f"decode_batch: {len(sessions)} sessions but {len(arr)} token ids")
    return _retnet.decode_batch([s._s for s in sessions], arr)
