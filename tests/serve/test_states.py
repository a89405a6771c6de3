"""Conversation states across replicas: GET/PUT/DELETE /v1/states/{id} and --cache-dir.

Two servers A and B on the bundled model: a chat's first turn on A, its state moved to B, the second
turn on B resumed from it; the restarted server with the same --cache-dir; every refused import. The
blob is read here from its documented layout (tools/serve/state_blob.hpp) and its id recomputed with an
FNV-1a 128 written from the specification, independently of the server's code. Greedy texts are
compared with `retnet generate` on the whole prompt."""
import http.client
import os
import shutil
import socket
import struct
import subprocess

import pytest

from conftest import API_KEY, CLI, Server, generate, openai_client, plain_chat_prompt

MODEL = "kjv-retnet"
BUNDLED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models", "kjv-retnet")
OCTET = {"Content-Type": "application/octet-stream"}
TURN1 = [{"role": "user", "content": "Who made the heaven and the earth?"}]


def fnv1a_64(data):
    h = 0xcbf29ce484222325
    for c in data:
        h = ((h ^ c) * 0x100000001b3) & (2**64 - 1)
    return h


def state_id(fingerprint, tokens):
    h = 0x6c62272e07bb014262b821756295c58d
    prime = 2**88 + 0x13b
    for c in struct.pack("<Q", fingerprint) + struct.pack(f"<{len(tokens)}i", *tokens):
        h = ((h ^ c) * prime) & (2**128 - 1)
    return f"{h:032x}"


def parse_blob(b):
    """(fingerprint, tokens, n_logits, snapshot bytes) of a state blob, checking its frame."""
    assert b[:8] == b"RETNETSV"
    version, reserved, fp, n, n_logits, state_bytes = struct.unpack_from("<IIQQQQ", b, 8)
    assert (version, reserved) == (2, 0)
    assert len(b) == 48 + 4 * n + 4 * n_logits + state_bytes + 8
    assert struct.unpack_from("<Q", b, len(b) - 8)[0] == container_sum(b)
    tokens = list(struct.unpack_from(f"<{n}i", b, 48))
    snapshot = b[48 + 4 * n + 4 * n_logits:-8]
    assert snapshot[:8] == b"RETNETST"
    return fp, tokens, n_logits, snapshot


def container_sum(b):
    """The blob's checksum (state_blob.hpp): FNV-1a 64 over the bytes before the library snapshot and
    over the snapshot's own trailing checksum, which covers the rest of it."""
    state_bytes = struct.unpack_from("<Q", b, 40)[0]
    return fnv1a_64(b[:len(b) - 8 - state_bytes] + b[-16:-8])


def reseal(b):
    return b[:-8] + struct.pack("<Q", container_sum(b))


def raw(server, method, path, body=None, headers=None, key=API_KEY):
    """(status, headers, bytes) of one plain HTTP request."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    h = {"Authorization": f"Bearer {key}"} if key else {}
    h.update(headers or {})
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, dict(r.getheaders()), data


def put_oversized(server, id_, n):
    """(status, body) of a PUT whose Content-Length (n) is over the server's limit. The server answers
    413 from the header alone and may close the connection before the body is sent, so a client
    sending the body first can get a broken pipe instead of the answer: the body goes only if no
    answer came within 2 s, and a broken pipe while sending it is expected."""
    c = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    c.sendall((f"PUT /v1/states/{id_} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\r\n"
               f"Content-Type: application/octet-stream\r\nContent-Length: {n}\r\n\r\n").encode())
    data = b""
    c.settimeout(2)
    try:
        data = c.recv(65536)
    except socket.timeout:
        try:
            c.sendall(b"\0" * n)
        except (BrokenPipeError, ConnectionResetError):
            pass
    c.settimeout(30)
    try:
        while True:
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                length = [int(v) for k, v in (line.split(b":", 1) for line in head.split(b"\r\n")[1:])
                          if k.strip().lower() == b"content-length"]
                if length and len(body) >= length[0]:
                    break
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    c.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return (int(head.split()[1]) if head else 0), body.decode(errors="replace")


def chat(server, messages, max_tokens=16):
    c = openai_client(server.base + "/v1")
    return c.chat.completions.create(model=MODEL, messages=messages, max_tokens=max_tokens, temperature=0)


def tokenize(server, text):
    status, body = server.request("POST", "/tokenize", {"content": text, "add_special": True})
    assert status == 200
    return body["tokens"]


def fingerprint(r):
    return int(r.system_fingerprint[3:], 16)


def second_turn(reply):
    return TURN1 + [{"role": "assistant", "content": reply.strip()}, {"role": "user", "content": "And what came after?"}]


def reference(messages, n=16):
    return generate(plain_chat_prompt(messages), n).split("\nUser:")[0]


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    args = ["--api-key", API_KEY, "--parallel", "2", "--max-tokens", "64", "--timeout", "5"]
    a = Server(*args, "--cache-dir", str(tmp_path_factory.mktemp("dir_a")))
    b = Server(*args)
    yield a, b
    assert a.stop() == 0, "".join(a.stderr)
    assert b.stop() == 0, "".join(b.stderr)


def test_state_moves_between_replicas(replicas):
    a, b = replicas
    r1 = chat(a, TURN1)
    sid = r1.model_extra["retnet"]["state_id"]
    n = r1.usage.prompt_tokens + r1.usage.completion_tokens
    assert r1.choices[0].model_extra["retnet"] == {"state_id": sid, "state_tokens": n}

    status, headers, blob = raw(a, "GET", f"/v1/states/{sid}")
    assert status == 200 and headers["Content-Type"] == "application/octet-stream"
    assert headers["X-Retnet-State-Tokens"] == str(n)
    fp, tokens, n_logits, _ = parse_blob(blob)
    assert fp == fingerprint(r1) and len(tokens) == n and n_logits > 0
    assert state_id(fp, tokens) == sid
    # The state holds the first turn's prompt and reply, which the second turn's prompt starts with.
    turn2 = second_turn(r1.choices[0].message.content)
    assert tokens[:r1.usage.prompt_tokens] == tokenize(a, plain_chat_prompt(TURN1))
    assert tokenize(a, plain_chat_prompt(turn2))[:n] == tokens

    # B has never seen the conversation: it prefills everything, unless given the state.
    status, _, body = raw(b, "PUT", f"/v1/states/{sid}", blob, OCTET)
    assert status == 201, body
    assert b.request("GET", "/health")[1]["cache"]["entries"] >= 1
    r2b = chat(b, turn2)
    assert r2b.usage.prompt_tokens_details.cached_tokens == n
    r2a = chat(a, turn2)
    assert r2b.choices[0].message.content == r2a.choices[0].message.content == reference(turn2)
    # B exports the very bytes it imported.
    assert raw(b, "GET", f"/v1/states/{sid}")[2] == blob

    # DELETE removes it from both tiers; then GET and DELETE are 404.
    for server in (a, b):
        status, _, body = raw(server, "DELETE", f"/v1/states/{sid}")
        assert status == 200, body
        status, _, body = raw(server, "GET", f"/v1/states/{sid}")
        assert status == 404 and b"state_not_found" in body
        assert raw(server, "DELETE", f"/v1/states/{sid}")[0] == 404


def test_streaming_and_n_name_each_choices_state(replicas):
    a, _ = replicas
    c = openai_client(a.base + "/v1")
    last = {}
    for chunk in c.chat.completions.create(model=MODEL, messages=TURN1, max_tokens=5, temperature=0, stream=True):
        for ch in chunk.choices:
            if ch.finish_reason:
                last = ch.model_extra.get("retnet", {})
    assert last["state_tokens"] > 5 and raw(a, "GET", f"/v1/states/{last['state_id']}")[0] == 200
    r = c.completions.create(model=MODEL, prompt="In the beginning", max_tokens=4, temperature=1.0, seed=5, n=2)
    ids = [ch.model_extra["retnet"]["state_id"] for ch in r.choices]
    status, headers, body = raw(a, "POST", "/v1/completions", '{"prompt": "In the beginning", "max_tokens": 4}',
                                {"Content-Type": "application/json"})
    assert status == 200 and headers["X-Retnet-State-Id"] in body.decode()
    assert r.model_extra["retnet"]["state_id"] == ids[0]
    for i in ids:
        fp, tokens, _, _ = parse_blob(raw(a, "GET", f"/v1/states/{i}")[2])
        assert state_id(fp, tokens) == i
    if r.choices[0].text != r.choices[1].text:
        assert ids[0] != ids[1]


def test_bad_imports_are_refused_as_json(replicas, tmp_path):
    a, b = replicas
    r1 = chat(a, TURN1, 6)
    sid = r1.model_extra["retnet"]["state_id"]
    blob = raw(a, "GET", f"/v1/states/{sid}")[2]
    fp, tokens, n_logits, _ = parse_blob(blob)

    def put(body, id_=sid, key=API_KEY):
        status, _, data = raw(b, "PUT", f"/v1/states/{id_}", body, OCTET, key)
        return status, data.decode()

    other_id = state_id(fp, tokens[:-1])
    cases = {
        "another id": (blob, other_id, 400, "state_id_mismatch"),
        "truncated": (blob[: len(blob) // 2], sid, 400, "truncated"),
        "one byte flipped": (blob[:100] + bytes([blob[100] ^ 1]) + blob[101:], sid, 400, "checksum mismatch"),
        "garbage": (b"garbage" * 100, sid, 400, "bad magic"),
        "empty": (b"", sid, 400, "bad magic"),
        "a path, not an id": (blob, "a%2Fb/c", 404, None),
        "bad id": (blob, "XYZ", 400, "invalid_state_id"),
    }
    # Another model's state, well formed (its frame resealed, its id matching): 409.
    forged_fp = fp ^ 0x1234
    inner = 48 + 4 * len(tokens) + 4 * n_logits
    forged = bytearray(blob)
    forged[16:24] = struct.pack("<Q", forged_fp)
    forged[inner + 16:inner + 24] = struct.pack("<Q", forged_fp)
    cases["another model (forged)"] = (reseal(bytes(forged)), state_id(forged_fp, tokens), 409, "model_mismatch")
    # A snapshot whose token digest is not these tokens: the library's check, through the server.
    swapped = list(tokens)
    swapped[1] = (swapped[1] + 1) % 4096
    moved = bytearray(blob)
    moved[48:48 + 4 * len(tokens)] = struct.pack(f"<{len(tokens)}i", *swapped)
    cases["tokens not the snapshot's"] = (reseal(bytes(moved)), state_id(fp, swapped), 400, "digest")
    for name, (body, id_, want, text) in cases.items():
        status, data = put(body, id_)
        assert status == want, (name, status, data)
        assert '"error"' in data, (name, data)
        if text:
            assert text in data, (name, data)
    status, data = put_oversized(b, sid, 8 << 20)
    assert status == 413 and '"error"' in data, (status, data)
    assert put(blob, key="wrong")[0] == 401
    assert raw(b, "GET", f"/v1/states/{sid}", key=None)[0] == 401
    assert raw(b, "DELETE", f"/v1/states/{sid}", key=None)[0] == 401
    assert b.request("GET", "/health")[0] == 200
    assert put(blob)[0] == 201  # and the real one still goes in


def test_a_real_second_model_is_refused(replicas, tmp_path):
    a, _ = replicas
    q8 = tmp_path / "kjv-q8"
    subprocess.run([CLI, "-q", "quantize", "-m", BUNDLED, "-o", str(q8), "--type", "q8_0"],
                   check=True, capture_output=True)
    other = Server("--api-key", API_KEY, "-m", str(q8), "--alias", MODEL, "--parallel", "1")
    try:
        r = chat(other, TURN1, 3)
        assert fingerprint(r) != fingerprint(chat(a, TURN1, 3))
        sid = r.model_extra["retnet"]["state_id"]
        status, _, blob = raw(other, "GET", f"/v1/states/{sid}")
        assert status == 200
        status, _, body = raw(a, "PUT", f"/v1/states/{sid}", blob, OCTET)
        assert status == 409 and b"model_mismatch" in body, body
    finally:
        assert other.stop() == 0


def test_restart_with_the_same_cache_dir_resumes(tmp_path):
    d = tmp_path / "states"
    args = ["--api-key", API_KEY, "--parallel", "1", "--cache-dir", str(d), "--max-tokens", "64"]
    s = Server(*args)
    try:
        r1 = chat(s, TURN1)
    finally:
        assert s.stop() == 0, "".join(s.stderr)  # SIGTERM: queued writes are finished first
    sid = r1.model_extra["retnet"]["state_id"]
    n = r1.usage.prompt_tokens + r1.usage.completion_tokens
    assert (d / f"{sid}.rstate").is_file()
    # Files that are not this model's states are skipped and left alone; a truncated one too.
    (d / "README").write_text("not a state")
    shutil.copy(d / f"{sid}.rstate", d / f"{'0' * 32}.rstate")
    with open(d / f"{'1' * 32}.rstate", "wb") as f:
        f.write((d / f"{sid}.rstate").read_bytes()[:1000])
    s = Server(*args)
    try:
        assert any("skipped" in line and "0" * 32 in line for line in s.stderr), s.stderr
        turn2 = second_turn(r1.choices[0].message.content)
        r2 = chat(s, turn2)
        assert r2.usage.prompt_tokens_details.cached_tokens == n
        assert r2.choices[0].message.content == reference(turn2)
        assert raw(s, "GET", f"/v1/states/{sid}")[0] == 200
        status, body = s.request("GET", "/metrics")
        assert "retnet_disk_cache_files" in body
    finally:
        assert s.stop() == 0, "".join(s.stderr)
    assert (d / "README").exists() and (d / f"{'1' * 32}.rstate").exists()
