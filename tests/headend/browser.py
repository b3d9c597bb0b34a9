"""A real headless Chromium driven through chromedriver's W3C WebDriver HTTP API (stdlib
urllib only), and a small PNG decoder to check its screenshots pixel by pixel."""

import base64
import json
import shutil
import struct
import subprocess
import time
import urllib.error
import urllib.request
import zlib
from typing import Any

from uplink.localbroker import free_port

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C WebDriver element key


class Browser:
    def __init__(self, profile_dir: str, width: int = 1000, height: int = 760) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen([str(CHROMEDRIVER), f"--port={self.port}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{self.port}"
        self._wait_ready()
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", f"--user-data-dir={profile_dir}",
                f"--window-size={width},{height}"]
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": {"binary": CHROMIUM, "args": args}}}}
        self.session = self._call("POST", "/session", caps)["sessionId"]

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self._call("GET", "/status")["ready"]:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("chromedriver did not start")

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read())["value"]

    def _s(self, path: str) -> str:
        return f"/session/{self.session}{path}"

    def go(self, url: str) -> None:
        self._call("POST", self._s("/url"), {"url": url})

    def url(self) -> str:
        return str(self._call("GET", self._s("/url")))

    def title(self) -> str:
        return str(self._call("GET", self._s("/title")))

    def source(self) -> str:
        return str(self._call("GET", self._s("/source")))

    def find(self, css: str) -> str:
        found = self._call("POST", self._s("/element"), {"using": "css selector", "value": css})
        assert ELEMENT in found, (css, found, self.url())
        return str(found[ELEMENT])

    def still_there(self, element: str) -> bool:
        """False once `element` belongs to a page that has been navigated away from."""
        req = urllib.request.Request(self.base + self._s(f"/element/{element}/name"))
        try:
            with urllib.request.urlopen(req, timeout=60):
                return True
        except urllib.error.HTTPError:  # "stale element reference"
            return False

    def loaded(self) -> bool:
        state = self._call("POST", self._s("/execute/sync"),
                           {"script": "return document.readyState", "args": []})
        return bool(state == "complete")

    def type(self, css: str, text: str) -> None:
        self._call("POST", self._s(f"/element/{self.find(css)}/value"), {"text": text})

    def click(self, css: str) -> None:
        self._call("POST", self._s(f"/element/{self.find(css)}/click"), {})

    def screenshot(self) -> bytes:
        return base64.b64decode(self._call("GET", self._s("/screenshot")))

    def close(self) -> None:
        try:
            self._call("DELETE", self._s(""))
        finally:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit, non-interlaced RGB or RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height, bpp = 8, b"", 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8 and colour in (2, 6), (depth, colour)
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            c = prev[i - bpp] if i >= bpp else 0
            add = (0, a, prev[i], (a + prev[i]) // 2, _paeth(a, prev[i], c))[f]
            line[i] = (line[i] + add) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, rows


Image = tuple[int, int, list[bytes]]


def count_colour(image: Image, rgb: tuple[int, int, int], tolerance: int = 40) -> int:
    """Pixels within `tolerance` (per channel) of `rgb`."""
    width, _height, rows = image
    bpp = len(rows[0]) // width
    hits = 0
    for row in rows:
        for x in range(0, len(row), bpp):
            if all(abs(row[x + k] - rgb[k]) <= tolerance for k in range(3)):
                hits += 1
    return hits


def distinct_colours(image: Image, step: int = 7) -> int:
    """Colours on a sparse grid: a blank page has one or two."""
    width, _height, rows = image
    bpp = len(rows[0]) // width
    return len({row[x:x + 3] for row in rows[::step] for x in range(0, len(row), bpp * step)})
