"""A small W3C WebDriver client over HTTP (urllib only), driving Debian's chromium through
chromedriver, headless. Just what tests/test_console.py needs: navigate, find elements,
click, type, read text and attributes, run a script, take screenshots.

The browser and chromedriver are started in their own process group (zkharness.spawn) and
stopped by quit(), or by the harness's clean-up if a test dies.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Optional

import zkharness as h

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


def chromium_paths():
    """(chromium, chromedriver) or None when either is missing."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


class WebDriverError(RuntimeError):
    pass


class Browser:
    def __init__(self, timeout: float = 20.0):
        paths = chromium_paths()
        if paths is None:
            raise WebDriverError("chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
        browser, driver = paths
        self.port = h.free_port()
        self.profile = tempfile.mkdtemp(prefix="rzk-chromium-")
        self.proc = h.spawn([driver, "--port=%d" % self.port], stdout=open(os.devnull, "wb"), stderr=open(os.devnull, "wb"))
        self.base = "http://127.0.0.1:%d" % self.port
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self._call("GET", "/status").get("ready"):
                    break
            except (OSError, WebDriverError):
                pass
            if time.monotonic() > deadline:
                self.quit()
                raise WebDriverError("chromedriver did not start")
            time.sleep(0.1)
        caps = {
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": browser,
                        "args": [
                            "--headless=new",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-dev-shm-usage",
                            "--no-first-run",
                            "--window-size=1280,900",
                            "--user-data-dir=" + self.profile,
                        ],
                    },
                }
            }
        }
        self.session = self._call("POST", "/session", caps)["sessionId"]

    # -- protocol ---------------------------------------------------------------------
    def _call(self, method: str, path: str, body: Optional[dict] = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.loads(r.read() or b"{}").get("value")
        except urllib.error.HTTPError as e:
            raise WebDriverError("%s %s: %s" % (method, path, e.read().decode(errors="replace")[:500]))

    def _s(self, method: str, path: str, body: Optional[dict] = None) -> Any:
        return self._call(method, "/session/%s%s" % (self.session, path), body)

    # -- the page -----------------------------------------------------------------------
    def get(self, url: str) -> None:
        self._s("POST", "/url", {"url": url})

    def find(self, css: str) -> str:
        return self._s("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]

    def find_all(self, css: str):
        return [e[ELEMENT] for e in self._s("POST", "/elements", {"using": "css selector", "value": css})]

    def text(self, css: str) -> str:
        return self._s("GET", "/element/%s/text" % self.find(css))

    def click(self, css: str) -> None:
        self._s("POST", "/element/%s/click" % self.find(css), {})

    def type(self, css: str, text: str, clear: bool = True) -> None:
        e = self.find(css)
        if clear:
            self._s("POST", "/element/%s/clear" % e, {})
        self._s("POST", "/element/%s/value" % e, {"text": text})

    def js(self, script: str, *args) -> Any:
        return self._s("POST", "/execute/sync", {"script": script, "args": list(args)})

    def wait(self, script: str, *args, timeout: float = 15.0, what: str = "") -> Any:
        """Polls `script` (a function body returning a value) until it is truthy."""
        deadline = time.monotonic() + timeout
        while True:
            v = self.js(script, *args)
            if v:
                return v
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for %s (%s)" % (what or script, self.js("return document.body.innerText;")[:2000]))
            time.sleep(0.1)

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self._s("GET", "/screenshot")))

    def quit(self) -> None:
        try:
            if getattr(self, "session", None):
                self._s("DELETE", "")
        except Exception:
            pass
        h.kill_process_group(self.proc)
        shutil.rmtree(self.profile, ignore_errors=True)
