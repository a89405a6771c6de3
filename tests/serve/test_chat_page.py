"""The chat page at `/` (tools/serve/chat.html), in headless Chromium driven over the DevTools
protocol (cdp.py): the page loads under its strict CSP, asks for the API key after a 401, streams a
reply that equals the chat endpoint's greedy reply, shows model output as text (never HTML), shows
the server's error messages, frees the server's slot on Stop, and fits a phone's width. Screenshots
go to $RETNET_SERVE_ARTIFACTS (run.sh: BUILD/tests/serve-artifacts).

Chromium is required (tools/install-deps.sh installs Debian's `chromium`): without it these tests
fail, unless RETNET_SKIP_BROWSER=1, which skips the ones that need a browser."""
import base64
import hashlib
import http.client
import http.server
import json
import os
import re
import socketserver
import threading
import time

import pytest

import cdp
from conftest import API_KEY, CLI, Server

ARTIFACTS = os.environ.get("RETNET_SERVE_ARTIFACTS") or os.path.join(os.path.dirname(os.path.abspath(CLI)), "tests",
                                                                      "serve-artifacts")
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "serve", "chat.html")
HOSTILE = '<b>bold</b> <script>window.__xss = 1</script><img src=x onerror="window.__xss = 2"> & "quotes"'

# Run before the page's own script in every document: records CSP violations.
RECORDER = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
                          (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""
BUSY = "document.body.classList.contains('busy')"
REPLY = "(() => { const c = document.querySelectorAll('#log .msg.assistant .content'); " \
        "return c.length ? c[c.length - 1].textContent : null; })()"


def metric(server, name):
    status, text = server.request("GET", "/metrics")
    assert status == 200
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    assert m, name
    return float(m.group(1))


@pytest.fixture(scope="module")
def ui_server():
    # Its own server: --max-tokens high enough for a reply long enough to be stopped.
    s = Server("--parallel", "2", "--api-key", API_KEY, "--max-tokens", "1000000", "--cache-ram", "16")
    yield s
    assert s.stop() == 0, "".join(s.stderr)


@pytest.fixture(scope="module")
def browser():
    exe = cdp.find_chromium()
    if exe is None:
        if os.environ.get("RETNET_SKIP_BROWSER") == "1":
            pytest.skip("no chromium, and RETNET_SKIP_BROWSER=1")
        pytest.fail("chromium not found: tools/install-deps.sh installs Debian's chromium "
                    "(RETNET_CHROMIUM names another; RETNET_SKIP_BROWSER=1 skips the browser tests)")
    b = cdp.Browser(exe)
    yield b
    b.close()


@pytest.fixture
def page(browser):
    p = browser.new_page()
    p.add_init_script(RECORDER)
    yield p
    p.close()


def open_chat(page, server, key=API_KEY):
    """Loads the page with nothing in its localStorage but `key` (None: no key; the browser's profile is
    shared by the tests), and waits until it shows the model."""
    page.goto(server.base + "/")
    page.eval("localStorage.clear()")
    if key is not None:
        page.eval(f"localStorage.setItem('retnet.chat.apiKey', {json.dumps(key)})")
    page.goto(server.base + "/")
    if key is not None:
        page.wait_for("document.getElementById('model').textContent === 'kjv-retnet'", what="the model's name")


def set_field(page, selector, value):
    """Types a setting into its (emptied) field, as a user would."""
    page.eval("document.getElementById('settings').open = true")
    page.eval(f"document.querySelector({json.dumps(selector)}).value = ''")
    page.focus(selector)
    page.type(value)


def send(page, text, enter=True):
    page.focus("#prompt")
    page.type(text)
    if enter:
        page.press("Enter")
    else:
        page.click("#send")


def inline_hash(html, tag):
    body = html.split(f"<{tag}>")[1].split(f"</{tag}>")[0]
    return "sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()


def test_page_is_static_html_with_a_strict_csp(ui_server):
    # No key needed for the page itself (static, no secrets; a browser cannot send one when it
    # navigates), while every API route still needs it.
    status, html = ui_server.request("GET", "/", headers={"Authorization": ""})
    assert status == 200
    # Embedded byte for byte (cmake/embed_chat_page.cmake).
    with open(SOURCE, encoding="utf-8") as f:
        assert html == f.read()
    conn_headers = raw_headers(ui_server, "/")
    assert conn_headers["content-type"] == "text/html; charset=utf-8"
    csp = conn_headers["content-security-policy"]
    # The hashes the browser will compute, computed here independently of the build's CMake script.
    assert f"script-src '{inline_hash(html, 'script')}'" in csp
    assert f"style-src '{inline_hash(html, 'style')}'" in csp
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe" not in csp
    assert conn_headers["x-content-type-options"] == "nosniff"
    # Self-contained: nothing loaded from elsewhere.
    assert not re.search(r"""(src|href)\s*=\s*["']?(?!data:)[a-z]+:""", html, re.I)
    assert "innerHTML" not in html and "insertAdjacentHTML" not in html and "document.write" not in html
    assert ui_server.request("GET", "/v1/models", headers={"Authorization": ""})[0] == 401
    assert ui_server.request("POST", "/v1/chat/completions", {"messages": []}, headers={"Authorization": ""})[0] == 401
    assert "retnet_requests_total{route=\"/\",status=\"200\"}" in ui_server.request("GET", "/metrics")[1]


def raw_headers(server, path):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("GET", path)
    r = conn.getresponse()
    r.read()
    conn.close()
    return {k.lower(): v for k, v in r.getheaders()}


def test_no_webui_gives_404():
    s = Server("--no-webui", "--api-key", API_KEY)
    try:
        status, body = s.request("GET", "/")
        assert status == 404 and body["error"]["type"] == "not_found_error", body
        # Without the key it is an API route like any other: 401.
        assert s.request("GET", "/", headers={"Authorization": ""})[0] == 401
    finally:
        assert s.stop() == 0, "".join(s.stderr)


def test_asks_for_the_key_then_streams_the_greedy_reply(page, ui_server):
    open_chat(page, ui_server, key=None)
    # The 401 of /v1/models: the server's message, and the key field focused for the keyboard.
    page.wait_for("!document.getElementById('error').hidden", what="the 401 error")
    status, body = ui_server.request("GET", "/v1/models", headers={"Authorization": ""})
    assert status == 401
    shown = page.eval("document.getElementById('error').textContent")
    assert shown.startswith(body["error"]["message"]) and "API key" in shown, shown
    assert page.eval("document.activeElement.id") == "api-key"
    page.type(API_KEY)
    page.press("Enter")
    page.wait_for("document.getElementById('model').textContent === 'kjv-retnet'", what="the model's name")
    assert page.eval("localStorage.getItem('retnet.chat.apiKey')") == API_KEY
    assert page.eval("document.getElementById('error').hidden")

    set_field(page, "#temperature", "0")
    set_field(page, "#max-tokens", "128")
    prompt = "Who made the heaven and the earth?"
    send(page, prompt)
    page.wait_for(f"!{BUSY} && document.getElementById('stats').textContent", timeout=30, what="the reply's end")
    reply = page.eval(REPLY)

    # The same request without streaming, straight to the API (temperature 0: greedy, deterministic).
    status, want = ui_server.request("POST", "/v1/chat/completions",
                                     {"messages": [{"role": "user", "content": prompt}], "temperature": 0,
                                      "max_tokens": 128})
    assert status == 200, want
    assert reply == want["choices"][0]["message"]["content"] and reply
    # (That it arrives in pieces, not in one final write, is test_streams_then_stop_frees_the_slot's:
    # a reply this short may come in one network read on a busy machine.)
    stats = page.eval("document.getElementById('stats').textContent")
    n = want["usage"]["completion_tokens"]
    assert re.match(rf"{n} tokens, [0-9.]+ s, [0-9.]+ tokens/s, first token \d+ ms, finish: ", stats), stats
    assert page.eval("window.__csp") == []

    # A second turn carries the first (the conversation is sent whole) and is typed and clicked.
    send(page, "And then?", enter=False)
    page.wait_for(f"!{BUSY} && document.querySelectorAll('#log .msg.assistant').length === 2", timeout=30)
    status, want2 = ui_server.request(
        "POST", "/v1/chat/completions",
        {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": reply},
                      {"role": "user", "content": "And then?"}], "temperature": 0, "max_tokens": 128})
    assert page.eval(REPLY) == want2["choices"][0]["message"]["content"]

    page.eval("document.getElementById('settings').open = false")  # more of the conversation in the picture
    os.makedirs(ARTIFACTS, exist_ok=True)
    path = os.path.join(ARTIFACTS, "chat.png")
    png = page.screenshot(path)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10000
    print(f"\nchat page screenshot: {path}")


def test_user_text_is_shown_as_text(page, ui_server):
    open_chat(page, ui_server)
    set_field(page, "#max-tokens", "4")
    send(page, HOSTILE)
    page.wait_for(f"!{BUSY} && document.getElementById('stats').textContent", timeout=30)
    assert page.eval("document.querySelector('#log .msg.user .content').textContent") == HOSTILE
    assert page.eval("document.querySelectorAll('#log b, #log script, #log img').length") == 0
    assert page.eval("window.__xss") is None


def test_server_errors_are_shown(page, ui_server):
    open_chat(page, ui_server)
    set_field(page, "#max-tokens", "2000000")  # above the server's --max-tokens 1000000
    send(page, "In the beginning")
    page.wait_for("!document.getElementById('error').hidden", what="the error")
    status, body = ui_server.request("POST", "/v1/chat/completions",
                                     {"messages": [{"role": "user", "content": "In the beginning"}],
                                      "max_tokens": 2000000})
    assert status == 400 and "max_tokens" in body["error"]["message"], body
    assert page.eval("document.getElementById('error').textContent") == body["error"]["message"]
    # Nothing was answered: the message is back in the box, and the conversation is empty.
    assert page.eval("document.getElementById('prompt').value") == "In the beginning"
    assert page.eval("document.querySelectorAll('#log .msg').length") == 0


def test_streams_then_stop_frees_the_slot(page, ui_server):
    open_chat(page, ui_server)
    set_field(page, "#temperature", "0")
    # Greedy replies of this model run to the limit, and 10^6 tokens take minutes (20000, as once
    # asked, streams in a few seconds on two cores: short enough to end before the stop on a quiet one).
    set_field(page, "#max-tokens", "1000000")
    cancelled = metric(ui_server, "retnet_generations_cancelled_total")
    finished = metric(ui_server, "retnet_generations_total")
    send(page, "In the beginning")
    # Streaming: text shows while the reply is still running, then more of it, still running.
    first = page.wait_for(f"{BUSY} && {REPLY}", what="streamed text")
    second = page.wait_for(f"{BUSY} && {REPLY}.length > {len(first)} && {REPLY}", what="the text to grow")
    assert second.startswith(first)
    assert metric(ui_server, "retnet_slots_busy") == 1
    page.click("#stop")
    page.wait_for(f"!{BUSY}", what="the page to stop")
    assert page.eval("document.querySelector('#log .msg.assistant .note').textContent") == "(stopped)"
    assert "stopped" in page.eval("document.getElementById('stats').textContent")
    # The browser closed the connection: the server drops the job and frees its slot.
    freed = wait_until(lambda: metric(ui_server, "retnet_generations_cancelled_total") == cancelled + 1 and
                       metric(ui_server, "retnet_slots_busy") == 0)
    assert freed, ui_server.request("GET", "/metrics")[1]
    assert metric(ui_server, "retnet_generations_total") == finished  # dropped, not finished
    # What was streamed is the greedy reply's beginning (or holds all of a 200-token one).
    stopped = page.eval(REPLY)
    status, want = ui_server.request("POST", "/v1/chat/completions",
                                     {"messages": [{"role": "user", "content": "In the beginning"}],
                                      "temperature": 0, "max_tokens": 200})
    assert status == 200, want
    want = want["choices"][0]["message"]["content"]
    assert stopped.startswith(second) and (want.startswith(stopped) or stopped.startswith(want))
    # The page is ready for the next message.
    assert page.eval("document.getElementById('send').disabled") is False
    assert page.eval("document.activeElement.id") == "prompt"


def wait_until(cond, timeout=10):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


class MockChat(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """Serves the real page (bytes and headers as `retnet serve` sends them) with a scripted chat
    endpoint: model output no model of ours would write (HTML), split awkwardly across writes."""
    daemon_threads = True


def mock_handler(page_bytes, page_headers, script, hold_open, models_gate):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path == "/":
                body, ctype, extra = page_bytes, page_headers["content-type"], {
                    "Content-Security-Policy": page_headers["content-security-policy"]}
            elif self.path == "/v1/models":
                if models_gate:  # answered when the test says so
                    models_gate.wait(20)
                body, ctype, extra = json.dumps({"object": "list", "data": [{"id": "mock"}]}).encode(), \
                    "application/json", {}
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            for piece in script:
                self.wfile.write(piece)
                self.wfile.flush()
            if hold_open:  # a reply that never ends: only the client's Stop ends it
                self.rfile.read()  # returns when the browser closes the connection
                hold_open.set()
    return Handler


def sse(obj):
    return ("data: " + json.dumps(obj, ensure_ascii=False) + "\r\n\r\n").encode()


def delta(text):
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}


@pytest.fixture
def mock(ui_server):
    status, html = ui_server.request("GET", "/")
    assert status == 200
    headers = raw_headers(ui_server, "/")
    servers = []

    def start(script, hold_open=None, models_gate=None):
        srv = MockChat(("127.0.0.1", 0), mock_handler(html.encode(), headers, script, hold_open, models_gate))
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def test_model_output_is_shown_as_text(page, mock):
    # The hostile reply in pieces: an event split mid-line, a CRLF split between its \r and \n, a
    # character split mid-UTF-8, a keep-alive comment and an unknown field between events.
    text = HOSTILE + " caf\u00e9 \u2014 done"
    events = b"".join(sse(delta(text[i:i + 7])) for i in range(0, len(text), 7))
    events += sse({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events += sse({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 9, "total_tokens": 12}})
    events = b": keep-alive\n\nevent: message\n" + events + b"data: [DONE]\n\n"
    cuts = sorted({len(events) // 3, events.index(b"\r\n") + 1, events.index("\u2014".encode()) + 1,
                   2 * len(events) // 3})
    script = [events[a:b] for a, b in zip([0] + cuts, cuts + [len(events)])]
    base = mock(script)
    page.goto(base + "/")
    page.wait_for("document.getElementById('model').textContent === 'mock'")
    send(page, "hello")
    page.wait_for(f"!{BUSY} && document.getElementById('stats').textContent")
    assert page.eval(REPLY) == text
    assert page.eval("document.querySelectorAll('#log b, #log script, #log img').length") == 0
    assert page.eval("window.__xss") is None
    assert page.eval("document.getElementById('error').hidden")
    assert page.eval("document.getElementById('stats').textContent").startswith("9 tokens, ")
    assert page.eval("window.__csp") == []


@pytest.mark.parametrize("ending, shown", [
    (b"", "the connection closed before the reply was complete"),
    (sse({"error": {"message": "the server is shutting down", "type": "server_error"}}) + b"data: [DONE]\n\n",
     "the server is shutting down"),
])
def test_a_broken_stream_is_an_error(page, mock, ending, shown):
    gate = threading.Event()
    base = mock([sse(delta("Half a")), sse(delta(" reply")), ending], models_gate=gate)
    page.goto(base + "/")
    send(page, "hello")
    page.wait_for(f"!{BUSY} && !document.getElementById('error').hidden", what="the error")
    assert page.eval("document.getElementById('error').textContent") == shown
    # The model's name arriving later does not clear the reply's error.
    gate.set()
    page.wait_for("document.getElementById('model').textContent === 'mock'")
    assert page.eval("document.getElementById('error').textContent") == shown
    # What came is kept, marked as incomplete.
    assert page.eval(REPLY) == "Half a reply"
    assert page.eval("document.querySelector('#log .msg.assistant .note').textContent") == "(incomplete: error)"


def test_escape_stops_a_reply_that_never_ends(page, mock):
    closed = threading.Event()
    base = mock([sse(delta("Never")), sse(delta(" ending"))], hold_open=closed)
    page.goto(base + "/")
    send(page, "hello")
    page.wait_for(f"{BUSY} && {REPLY} === 'Never ending'")
    page.press("Escape")
    page.wait_for(f"!{BUSY}")
    assert closed.wait(10), "the page did not close the connection"
    assert page.eval("document.querySelector('#log .msg.assistant .note').textContent") == "(stopped)"
    assert page.eval("document.activeElement.id") == "prompt"


def test_csp_blocks_injected_inline_script(page, ui_server):
    open_chat(page, ui_server)
    page.eval("(() => { const s = document.createElement('script'); s.textContent = 'window.__injected = 1'; "
              "document.body.append(s); })()")
    page.wait_for("window.__csp.length", what="a CSP violation report")
    assert page.eval("window.__injected") is None
    assert page.eval("window.__csp")[0].startswith("script-src")


def test_keyboard_reaches_every_control(page, ui_server):
    open_chat(page, ui_server)
    page.eval("document.getElementById('settings').open = true; document.activeElement.blur()")
    seen = []
    for _ in range(14):  # once round the page, and then some
        page.press("Tab")
        seen.append(page.eval("document.activeElement.id || document.activeElement.tagName.toLowerCase()"))
    for control in ("new-chat", "summary", "system", "temperature", "max-tokens", "api-key", "log", "prompt", "send"):
        assert control in seen, seen
    # Stop is skipped while disabled (no reply running), as a disabled button should be.
    assert "stop" not in seen, seen


def test_fits_a_phone(browser, ui_server):
    page = browser.new_page(width=390, height=800, mobile=True)
    try:
        open_chat(page, ui_server)
        set_field(page, "#max-tokens", "48")
        send(page, "In the beginning God created the heaven and the earth, " * 3)
        page.wait_for(f"!{BUSY} && document.getElementById('stats').textContent", timeout=30)
        assert page.eval("document.documentElement.scrollWidth") <= 390
        assert page.eval("document.getElementById('send').getBoundingClientRect().right") <= 390
        page.eval("document.getElementById('settings').open = false")
        os.makedirs(ARTIFACTS, exist_ok=True)
        page.screenshot(os.path.join(ARTIFACTS, "chat-phone.png"))
    finally:
        page.close()
