"""Compute releases the GIL: two threads with two sessions run at the same time."""
import threading
import time

import numpy as np

import retnet
from conftest import BUNDLED


def test_two_threads_overlap_in_wall_time():
    # Two models of one thread each, so that nothing in the library serialises them (sessions of one
    # CPU model take turns on its thread pool). Each thread records the wall-clock interval of every
    # native call. With the GIL held during compute the calls could never overlap: the sum of the call
    # times would stay below the wall time of the whole. Released, the threads' calls overlap, and the
    # sum of all call times exceeds the total wall time (about 2x on two free cores; still > 1 when the
    # cores are shared with other tests, as both calls then run, slower, at the same time).
    models = [retnet.Model.load(BUNDLED, device="cpu", threads=1) for _ in range(2)]
    ids = list(range(10, 10 + 256))
    spans = [[], []]
    barrier = threading.Barrier(2)

    def work(i):
        s = retnet.Session(models[i])
        barrier.wait()
        for _ in range(6):
            t0 = time.perf_counter()
            s.prefill(ids, mode="parallel")
            spans[i].append((t0, time.perf_counter()))
            s.reset()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    busy = sum(e - b for sp in spans for b, e in sp)
    overlap = sum(max(0.0, min(e1, e2) - max(b1, b2)) for b1, e1 in spans[0] for b2, e2 in spans[1])
    print(f"[ measured ] two threads: sum of call times {busy:.3f} s in {wall:.3f} s of wall time, "
          f"overlapping {overlap:.3f} s")
    assert overlap > 0.25 * wall
    assert busy > 1.2 * wall


def test_decode_batch_equals_single_decodes(bundled):
    prompts = [[0, 5, 9], [0, 300], [0, 1, 2, 3, 4]]
    batch = [retnet.Session(bundled) for _ in prompts]
    alone = [retnet.Session(bundled) for _ in prompts]
    for s, t, p in zip(batch, alone, prompts):
        s.prefill(p)
        t.prefill(p)
    for step in ([17, 18, 19], [100, 4000, 2]):
        got = retnet.decode_batch(batch, step)
        want = np.stack([t.decode(i) for t, i in zip(alone, step)])
        assert got.shape == (3, bundled.info.vocab_size)
        assert np.array_equal(got, want)
