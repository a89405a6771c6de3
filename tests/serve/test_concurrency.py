"""16 clients x 4 requests at once with mixed prompt lengths: every request is answered once, and each
greedy output equals a sequential `retnet generate` run of its prompt (batching changes nothing)."""
import concurrent.futures

from conftest import generate

BASE = ("In the beginning God created the heaven and the earth. And the earth was without form, and void; "
        "and darkness was upon the face of the deep. ")


def prompts():
    out = []
    for i in range(8):
        # 1 to ~600 tokens: the longest ones are prefilled in several blocks between decode steps.
        out.append((BASE * (1 + (i * i * 3) // 2))[: 20 + i * 400] + f" Verse {i}:")
    return out


def test_sixteen_clients_four_requests_each(client):
    ps = prompts()
    n_tokens = 12

    def one_client(c):
        got = []
        for k in range(4):
            i = (c + k * 5) % len(ps)
            r = client.completions.create(model="kjv-retnet", prompt=ps[i], max_tokens=n_tokens, temperature=0,
                                          user=f"client-{c}-{k}")
            got.append((i, r.choices[0].text, r.id))
        return got

    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        results = [x for f in [ex.submit(one_client, c) for c in range(16)] for x in f.result()]
    assert len(results) == 64
    assert len({rid for _, _, rid in results}) == 64  # nothing answered twice
    for i, text, _ in results:
        assert text == generate(ps[i], n_tokens), (i, text)
