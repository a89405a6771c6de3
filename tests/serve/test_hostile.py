"""Hostile and broken requests: each gets its status code (OpenAI's error JSON), and the server keeps
serving the others."""
import json
import socket
import threading
import time

import pytest

from conftest import API_KEY, Server, generate

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def alive(server):
    status, body = server.request("POST", "/v1/completions", {"prompt": "In the beginning", "max_tokens": 4,
                                                              "temperature": 0})
    assert status == 200, body
    assert body["choices"][0]["text"] == generate("In the beginning", 4)


def read_until(sock, marker):
    """Bytes from sock up to and including marker (fails if the server closes first)."""
    got = b""
    while marker not in got:
        b = sock.recv(4096)
        assert b, got
        got += b
    return got


def raw(server, data, timeout=10):
    """Sends raw bytes, returns what comes back until the server closes (or the timeout)."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                b = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not b:
                break
            out += b
        return out
    finally:
        s.close()


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic " + API_KEY},
                                     {"Authorization": "Bearer " + API_KEY + "x"}])
def test_bad_key_is_401(server, headers):
    status, body = server.request("GET", "/v1/models", headers={"Authorization": ""} | headers)
    assert status == 401 and body["error"]["type"] == "authentication_error"
    status, body = server.request("POST", "/tokenize", {"content": "x"}, headers={"Authorization": ""} | headers)
    assert status == 401


@pytest.mark.parametrize("body,param", [
    ('{"prompt": "x", "max_tokens": "5"}', "max_tokens"),
    ('{"prompt": 5}', "prompt"),
    ('{"prompt": "x", "stop": [1]}', "stop"),
    ('{"prompt": "x", "stream": "yes"}', "stream"),
    ('{"prompt": [1, 99999]}', "prompt"),
    ('{"prompt": "x", "max_tokens": -3}', "max_tokens"),
    ('{"prompt": "x", "max_tokens": 100000000000000000000}', "max_tokens"),
    ('{"prompt": "x", "top_p": 0}', None),
    ('{"prompt": "x", "logprobs": 21}', "logprobs"),
    ('[1, 2]', None),
    ('{"prompt": "x", ', None),
    ('', None),
])
def test_bad_json_and_types_are_400(server, body, param):
    status, r = server.request("POST", "/v1/completions", body, headers={"Content-Type": "application/json"})
    assert status == 400, r
    assert r["error"]["type"] == "invalid_request_error"
    if param:
        assert r["error"]["param"] == param


def test_invalid_utf8_is_400(server):
    status, r = server.request("POST", "/v1/completions", b'{"prompt": "\xff\xfe bad"}')
    assert status == 400 and "invalid JSON" in r["error"]["message"]
    alive(server)


def test_deep_nesting_is_400(server):
    body = '{"prompt": ' + "[" * 100000 + "]" * 100000 + "}"
    status, r = server.request("POST", "/v1/completions", body)
    assert status == 400 and "deeper" in r["error"]["message"]
    alive(server)


def test_ten_megabyte_body_is_413(server):
    body = json.dumps({"prompt": "a" * (10 << 20)})
    status, r = server.request("POST", "/v1/completions", body)
    assert status == 413 and r["error"]["code"] == "request_too_large"
    alive(server)


def test_unknown_route_and_model_are_404(server):
    status, r = server.request("GET", "/v2/nothing")
    assert status == 404 and "error" in r
    status, r = server.request("GET", "/v1/models/other")
    assert status == 404 and r["error"]["code"] == "model_not_found"


def test_truncated_body_does_not_hang_the_server(server):
    # Content-Length promises more than is sent, then the client goes away.
    head = (f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\r\n"
            "Content-Length: 1000\r\n\r\n").encode()
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(head + b'{"prompt": "In the')
    s.close()
    # Content-Length promises more, and the client waits: the read timeout (3 s here) ends it.
    t0 = time.time()
    raw(server, head + b'{"prompt": "In the', timeout=15)
    assert time.time() - t0 < 12
    # Garbage instead of HTTP.
    assert raw(server, b"\x16\x03\x01 not http at all\r\n\r\n").startswith(b"HTTP/1.1 400")
    alive(server)


def test_slow_loris_is_dropped_while_others_are_served(server):
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")
    alive(server)  # served meanwhile
    time.sleep(4.5)  # past the 3 s read timeout
    s.settimeout(5)
    try:
        data = s.recv(1000)
    except ConnectionResetError:
        data = b""
    assert data == b"" or data.startswith(b"HTTP/1.1 4"), data
    s.close()


def test_client_disconnect_mid_stream_frees_the_slot(server):
    s = socket.create_connection(("127.0.0.1", server.port))
    body = json.dumps({"prompt": "In the beginning", "max_tokens": 256, "stream": True, "ignore_eos": True})
    s.sendall((f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\r\n"
               f"Content-Length: {len(body)}\r\n\r\n{body}").encode())
    read_until(s, b"data: ")
    s.close()
    deadline = time.time() + 10
    while time.time() < deadline:
        status, h = server.request("GET", "/health")
        if h["slots_busy"] == 0:
            break
        time.sleep(0.05)
    assert h["slots_busy"] == 0, h
    alive(server)


def test_non_streaming_client_that_leaves_frees_its_slot():
    # One slot; a long non-streaming request whose client closes the connection while it waits: the
    # server notices at its next check (every 100 ms), cancels the job, and serves the next request.
    s = Server("--parallel", "1", "--cache-ram", "0", "--api-key", API_KEY, "--max-tokens", "1000000")
    try:
        body = json.dumps({"prompt": "In the beginning", "max_tokens": 1000000, "ignore_eos": True})
        c = socket.create_connection(("127.0.0.1", s.port), timeout=30)
        c.sendall((f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n{body}").encode())
        deadline = time.time() + 20
        while time.time() < deadline and s.request("GET", "/health")[1]["slots_busy"] == 0:
            time.sleep(0.02)
        c.close()
        left = time.time()
        while time.time() < deadline and s.request("GET", "/health")[1]["slots_busy"] != 0:
            time.sleep(0.02)
        freed_after = time.time() - left
        # 10^6 tokens take minutes (the bundled model decodes ~5000 tokens/s on two cores, so the 4000
        # this test once asked for could finish within a second, before the leaving client was noticed).
        assert freed_after < 2, freed_after
        _, metrics = s.request("GET", "/metrics")
        assert "retnet_generations_cancelled_total 1\n" in metrics, metrics
        assert "retnet_generations_total 0\n" in metrics, metrics
        status, r = s.request("POST", "/v1/completions", {"prompt": "In the beginning", "max_tokens": 2})
        assert status == 200 and r["usage"]["completion_tokens"] == 2, r
        assert s.stop() == 0
    finally:
        s.stop()


def test_queue_full_is_503_and_shutdown_is_clean():
    s = Server("--parallel", "1", "--queue", "0", "--cache-ram", "0", "--max-tokens", "1000000")
    try:
        # Far longer than the test (4000 tokens, as once asked, can end within a second on two cores,
        # and the slot would then be free again when the 503 is expected).
        body = json.dumps({"prompt": "In the beginning", "max_tokens": 1000000, "ignore_eos": True, "stream": True})
        c = socket.create_connection(("127.0.0.1", s.port), timeout=30)
        c.sendall((f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
                   f"{body}").encode())
        got = read_until(c, b"data: ")  # the stream has started: the only slot is busy
        status, r = s.request("POST", "/v1/completions", {"prompt": "x", "max_tokens": 1})
        assert status == 503 and r["error"]["type"] == "server_error"
        # SIGTERM: the running stream ends with an error event, [DONE] and the last chunk; exit status 0.
        assert s.stop() == 0
        while True:
            b = c.recv(65536)
            if not b:
                break
            got += b
        assert b"shutting down" in got and got.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n"), got[-300:]
    finally:
        s.stop()


def test_client_leaving_while_queued_is_never_run():
    # One slot, held by a long stream; a second stream waits in the queue, its client leaves: the
    # keep-alive comments sent while it waits notice that, and its job never runs.
    s = Server("--parallel", "1", "--queue", "2", "--cache-ram", "0", "--max-tokens", "1000000")
    try:
        def stream(max_tokens):
            body = json.dumps({"prompt": "In the beginning", "max_tokens": max_tokens, "ignore_eos": True,
                               "stream": True})
            c = socket.create_connection(("127.0.0.1", s.port), timeout=30)
            c.sendall(f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode())
            return c
        first = stream(1000000)  # far longer than the test: the bundled model decodes ~5000 tokens/s
        read_until(first, b"data: ")
        second = stream(5)
        time.sleep(0.3)
        second.close()
        time.sleep(3)  # a keep-alive every second: the second write after the close fails
        first.close()
        deadline = time.time() + 10
        while time.time() < deadline:
            status, h = s.request("GET", "/health")
            if h["slots_busy"] == 0 and h["queued"] == 0:
                break
            time.sleep(0.05)
        status, text = s.request("GET", "/metrics")
        assert "retnet_time_to_first_token_seconds_count 1\n" in text, text
        assert s.stop() == 0
    finally:
        s.stop()
