"""Ctrl-C stops long native calls made on the main thread (the GIL is released while they run)."""
import _thread
import threading

import pytest

import retnet


def interrupt_after(seconds):
    # _thread.interrupt_main() raises SIGINT's effect in the main thread, as Ctrl-C does.
    t = threading.Timer(seconds, _thread.interrupt_main)
    t.start()
    return t


def test_ctrl_c_stops_a_long_prefill_between_blocks(bundled):
    s = retnet.Session(bundled)
    ids = [i % 4000 for i in range(50000)]  # recurrent: one block per token; tens of seconds in all
    t = interrupt_after(0.3)
    with pytest.raises(KeyboardInterrupt):
        s.prefill(ids, mode="recurrent")
    t.join()
    assert 0 < s.position < len(ids)  # whole blocks absorbed, and the session still works
    s.decode(1)


def test_ctrl_c_stops_generation(bundled):
    s = retnet.Session(bundled)
    t = interrupt_after(0.3)
    with pytest.raises(KeyboardInterrupt):
        s.generate("And", max_tokens=-1, ignore_eos=True, temperature=0)
    t.join()
    assert s.position > 2
    t = interrupt_after(0.3)
    with pytest.raises(KeyboardInterrupt):
        for _ in s.generate("And", max_tokens=-1, ignore_eos=True, temperature=0, stream=True):
            pass
    t.join()
    s.decode(1)  # the stream released the session
