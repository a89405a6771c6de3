"""A small Chrome DevTools Protocol client for the chat page's test: headless Chromium driven over
--remote-debugging-pipe (JSON messages ending in NUL on file descriptors 3 and 4), so that no port is
raced for and no websocket package is needed. Only what the test uses: tabs, evaluation, keys,
clicks, screenshots."""
import base64
import fcntl
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time


def find_chromium():
    """Debian's chromium (tools/install-deps.sh installs it), or $RETNET_CHROMIUM."""
    exe = os.environ.get("RETNET_CHROMIUM")
    if exe:
        return exe if os.access(exe, os.X_OK) else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class CdpError(RuntimeError):
    pass


class Browser:
    """One headless Chromium with a throwaway profile. close() ends it and all its children (its own
    process group), whatever state it is in. If this process dies without close() (a ctest timeout's
    SIGKILL), the browser sees its pipe close and exits by itself (checked by hand)."""

    def __init__(self, exe, timeout=30):
        self.timeout = timeout
        self.profile = tempfile.TemporaryDirectory(prefix="retnet-chromium-")
        # Our ends and the browser's ends of the two pipes, kept above fd 4 so that moving the
        # browser's ends to 3 and 4 in the child cannot overwrite one with the other.
        cmd_r, cmd_w = (self._high(fd) for fd in os.pipe())
        out_r, out_w = (self._high(fd) for fd in os.pipe())
        self._cmd_w, self._out_r = cmd_w, out_r
        args = [exe, "--headless=new", "--remote-debugging-pipe", f"--user-data-dir={self.profile.name}",
                "--no-first-run", "--no-default-browser-check", "--disable-gpu", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--mute-audio", "--window-size=1000,800", "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox

        def child_fds():
            os.dup2(cmd_r, 3)
            os.dup2(out_w, 4)

        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr,
                                     close_fds=False, preexec_fn=child_fds, start_new_session=True)
        os.close(cmd_r)
        os.close(out_w)
        self._next_id = 0
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._replies = {}
        self.events = []  # every event, in order: (sessionId, method, params)
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self.version = self.call("Browser.getVersion")["product"]
        except Exception:
            self.close()
            raise

    @staticmethod
    def _high(fd):
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(fd)
        return high

    def _read(self):
        buf = b""
        while True:
            try:
                data = os.read(self._out_r, 1 << 16)
            except OSError:
                data = b""
            if not data:
                break
            buf += data
            *messages, buf = buf.split(b"\0")
            for m in messages:
                msg = json.loads(m)
                with self._cond:
                    if "id" in msg:
                        self._replies[msg["id"]] = msg
                    else:
                        self.events.append((msg.get("sessionId"), msg["method"], msg.get("params", {})))
                    self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def call(self, method, params=None, session=None, timeout=None):
        """Sends one command and returns its result (raises CdpError with the browser's message)."""
        with self._lock:
            self._next_id += 1
            mid = self._next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self._cmd_w, data):]
        deadline = time.monotonic() + (timeout or self.timeout)
        with self._cond:
            while mid not in self._replies:
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    raise CdpError(f"{method}: no reply ({'browser gone' if self._closed else 'timeout'})")
                self._cond.wait(left)
            reply = self._replies.pop(mid)
        if "error" in reply:
            raise CdpError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def wait_event(self, method, session=None, since=0, timeout=None):
        """The first event `method` (of `session`) at index >= since; returns (index, params)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        with self._cond:
            while True:
                for i in range(since, len(self.events)):
                    s, m, p = self.events[i]
                    if m == method and (session is None or s == session):
                        return i, p
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    raise CdpError(f"no {method} event")
                self._cond.wait(left)

    def new_page(self, width=1000, height=800, mobile=False):
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        return Page(self, target, session, width, height, mobile)

    def close(self):
        if self.proc.poll() is None:
            try:
                self.call("Browser.close", timeout=5)
                self.proc.wait(timeout=5)
            except Exception:
                pass
        # Whatever is left of it (renderers, zygote): its own process group, which we started.
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._cmd_w, self._out_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self.stderr.close()
        self.profile.cleanup()


class Page:
    """One tab, attached with its own session."""

    def __init__(self, browser, target, session, width, height, mobile):
        self.browser, self.target, self.session = browser, target, session
        for domain in ("Page", "Runtime"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})

    def call(self, method, params=None, timeout=None):
        return self.browser.call(method, params, self.session, timeout)

    def add_init_script(self, source):
        """Runs `source` in every document this tab loads, before the page's own script."""
        self.call("Page.addScriptToEvaluateOnNewDocument", {"source": source})

    def goto(self, url):
        since = len(self.browser.events)
        r = self.call("Page.navigate", {"url": url})
        if r.get("errorText"):
            raise CdpError(f"navigate {url}: {r['errorText']}")
        self.browser.wait_event("Page.loadEventFired", self.session, since)

    def eval(self, expression):
        """The value of a JS expression in the page (promises awaited)."""
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            raise CdpError(f"{expression}: {r['exceptionDetails'].get('exception', {}).get('description')}")
        return r["result"].get("value")

    def wait_for(self, expression, timeout=15, what=None):
        """Polls a JS condition until it is truthy; returns its value (fails with `what` on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            v = self.eval(expression)
            if v:
                return v
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what or expression}")
            time.sleep(0.01)  # a poll interval, not a wait for something to have happened

    def focus(self, selector):
        self.eval(f"document.querySelector({json.dumps(selector)}).focus()")

    def type(self, text):
        """Types text into the focused element, as an input method would."""
        self.call("Input.insertText", {"text": text})

    def press(self, key, code=None, keycode=None, modifiers=0):
        codes = {"Enter": 13, "Escape": 27, "Tab": 9}
        params = {"key": key, "code": code or key, "windowsVirtualKeyCode": keycode or codes.get(key, 0),
                  "modifiers": modifiers}
        self.call("Input.dispatchKeyEvent", {"type": "rawKeyDown", **params})
        self.call("Input.dispatchKeyEvent", {"type": "keyUp", **params})

    def click(self, selector):
        """A real mouse click in the middle of the element."""
        box = self.eval(f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
                        ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent",
                      {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1})

    def screenshot(self, path):
        data = base64.b64decode(self.call("Page.captureScreenshot", {"format": "png"})["data"])
        with open(path, "wb") as f:
            f.write(data)
        return data

    def close(self):
        try:
            self.browser.call("Target.closeTarget", {"targetId": self.target}, timeout=5)
        except CdpError:
            pass
