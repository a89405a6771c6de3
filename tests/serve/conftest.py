"""Fixtures for the `retnet serve` tests: servers on ephemeral loopback ports, and `retnet generate`
runs to compare them with (the CLI at $RETNET_CLI_PATH)."""
import functools
import json
import os
import re
import signal
import subprocess
import threading
import time
import http.client

import pytest

CLI = os.environ.get("RETNET_CLI_PATH", "retnet")
API_KEY = "test-key-123"


class Server:
    """A `retnet serve --port 0` process; the port comes from its 'listening on' line on stderr."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([CLI, "serve", "--port", "0", "-t", "2", *args],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        self.stderr = []
        self.port = None
        deadline = time.time() + 60
        for line in self.proc.stderr:
            self.stderr.append(line)
            m = re.search(r"listening on http://[^:]+:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
            if time.time() > deadline:
                break
        if self.port is None:
            self.proc.kill()
            raise RuntimeError("retnet serve did not start: " + "".join(self.stderr))
        # Keep draining stderr so that the server never blocks on a full pipe.
        self._drain = threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr), daemon=True)
        self._drain.start()
        self.base = f"http://127.0.0.1:{self.port}"

    def request(self, method, path, body=None, headers=None, timeout=60):
        """(status, parsed JSON or raw text) of one plain HTTP request."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = {"Authorization": f"Bearer {API_KEY}"}
        h.update(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read().decode("utf-8", "replace")
        conn.close()
        try:
            return r.status, json.loads(data)
        except ValueError:
            return r.status, data

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="session")
def server():
    s = Server("--parallel", "4", "--api-key", API_KEY, "--cache-ram", "64", "--max-tokens", "256", "--timeout", "3",
               "--max-n", "4", "--max-body", "1048576")
    yield s
    assert s.stop() == 0, "".join(s.stderr)


def openai_client(base_url, api_key=API_KEY):
    """The openai client the tests use: no retries (a test sees every status as the server sent it) and
    a new connection per request. With pooled keep-alive connections, a request sent just as the
    server closes the connection for idleness (after 2 s, server.cpp) fails with "Server disconnected
    without sending a response"; clients with retries (the openai default) resend it, these must not."""
    import httpx
    import openai
    http = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), timeout=120)
    return openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=120, http_client=http)


@pytest.fixture(scope="session")
def client(server):
    return openai_client(server.base + "/v1")


@functools.lru_cache(maxsize=None)
def generate(prompt, n, temp=0.0, seed=None):
    """What `retnet generate` prints for this prompt (the reference the server must match)."""
    args = [CLI, "-q", "generate", "-p", prompt, "-n", str(n), "--temp", str(temp), "-t", "2"]
    if seed is not None:
        args += ["--seed", str(seed)]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    assert out.endswith("\n")
    return out[:-1]


def plain_chat_prompt(messages):
    """The server's plain chat template (README: retnet serve), rendered independently."""
    names = {"system": "System", "user": "User", "assistant": "Assistant"}
    return "".join(f"{names[m['role']]}: {m['content']}\n" for m in messages) + "Assistant:"
