"""A small line editor for dumb terminals: echo, cursor keys, history, Tab completion.

Pure: bytes go in through `feed()`, the bytes to echo accumulate in `take_output()`, and
finished lines come out as events. It understands what screen, minicom and PuTTY send (CR, LF,
CR LF, CR NUL, DEL or BS for backspace, VT100 cursor keys) and swallows any other escape
sequence or control byte so terminal garbage never reaches a command.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

MAX_LINE = 256  # longest accepted line: commands are short, a longer line is garbage
MAX_HISTORY = 50  # lines kept for the up/down arrows
MAX_ESCAPE = 16  # bytes of an escape sequence before we give up on it (garbage)
BELL = b"\x07"

CTRL_A, CTRL_C, CTRL_D, CTRL_E, CTRL_U = 0x01, 0x03, 0x04, 0x05, 0x15
BS, TAB, LF, CR, ESC, DEL = 0x08, 0x09, 0x0A, 0x0D, 0x1B, 0x7F

Completer = Callable[[str], list[str]]  # text before the cursor -> full words for the last word


@dataclass(frozen=True, slots=True)
class LineDone:
    text: str


@dataclass(frozen=True, slots=True)
class Interrupt:
    """Ctrl-C: the current line is dropped (or a running command should stop)."""


@dataclass(frozen=True, slots=True)
class EndOfInput:
    """Ctrl-D on an empty line."""


EditorEvent = LineDone | Interrupt | EndOfInput


class LineEditor:
    """State of one input line; `secret` lines echo nothing and never enter history."""

    def __init__(self) -> None:
        self.history: list[str] = []
        self.completer: Completer | None = None
        self._out = bytearray()
        self._prompt = ""
        self._secret = False
        self._buf: list[str] = []
        self._cur = 0
        self._hist_pos = 0
        self._esc: bytearray | None = None
        self._last_cr = False

    def start(self, prompt: str, *, secret: bool = False) -> None:
        """Begin a new line: write the prompt and reset the buffer."""
        self._prompt, self._secret = prompt, secret
        self._buf, self._cur = [], 0
        self._hist_pos = len(self.history)
        self._emit(prompt)

    def take_output(self) -> bytes:
        data = bytes(self._out)
        self._out.clear()
        return data

    def feed(self, data: bytes) -> list[EditorEvent]:
        events: list[EditorEvent] = []
        for byte in data:
            event = self._feed_byte(byte)
            if event is not None:
                events.append(event)
        return events

    # -- byte dispatch -------------------------------------------------------------------

    def _feed_byte(self, byte: int) -> EditorEvent | None:
        after_cr, self._last_cr = self._last_cr, False
        if self._esc is not None:
            self._escape_byte(byte)
            return None
        if byte in (CR, LF):
            if byte == LF and after_cr:
                return None  # CR LF is one line end
            self._last_cr = byte == CR
            return self._finish_line()
        if byte == 0 and after_cr:
            return None  # CR NUL (telnet-style line end)
        if 0x20 <= byte < 0x7F:
            self._insert(chr(byte))
            return None
        return self._control(byte)

    def _control(self, byte: int) -> EditorEvent | None:
        if byte == CTRL_C:
            self._emit("^C\r\n")
            self._buf, self._cur = [], 0
            return Interrupt()
        if byte == CTRL_D and not self._buf:
            return EndOfInput()
        if byte == ESC:
            self._esc = bytearray()
        elif byte in (BS, DEL):
            self._backspace()
        elif byte == CTRL_U:
            self._replace("")
        elif byte == CTRL_A:
            self._move_to(0)
        elif byte == CTRL_E:
            self._move_to(len(self._buf))
        elif byte == TAB and not self._secret:
            self._complete()
        else:
            self._bell()  # any other control byte or 8-bit garbage: ignored
        return None

    def _escape_byte(self, byte: int) -> None:
        assert self._esc is not None
        self._esc.append(byte)
        seq = bytes(self._esc)
        if len(seq) == 1 and seq not in (b"[", b"O"):
            self._esc = None  # ESC + one byte (Alt-key): ignored
        elif len(seq) >= 2 and 0x40 <= byte <= 0x7E:
            self._esc = None
            self._escape_action(seq)
        elif len(seq) >= MAX_ESCAPE or byte < 0x20 or byte > 0x7E:
            self._esc = None  # not a sequence we know how to end: drop it

    def _escape_action(self, seq: bytes) -> None:
        actions = {
            b"[A": self._history_up,
            b"OA": self._history_up,
            b"[B": self._history_down,
            b"OB": self._history_down,
            b"[C": lambda: self._move_to(self._cur + 1),
            b"OC": lambda: self._move_to(self._cur + 1),
            b"[D": lambda: self._move_to(self._cur - 1),
            b"OD": lambda: self._move_to(self._cur - 1),
            b"[H": lambda: self._move_to(0),
            b"[1~": lambda: self._move_to(0),
            b"[F": lambda: self._move_to(len(self._buf)),
            b"[4~": lambda: self._move_to(len(self._buf)),
            b"[3~": self._delete_at_cursor,
        }
        action = actions.get(seq)
        if action is not None:
            action()

    # -- editing -------------------------------------------------------------------------

    def _finish_line(self) -> EditorEvent:
        text = "".join(self._buf)
        self._emit("\r\n")
        if text.strip() and not self._secret and (not self.history or self.history[-1] != text):
            self.history.append(text)
            del self.history[:-MAX_HISTORY]
        self._buf, self._cur = [], 0
        return LineDone(text)

    def _insert(self, char: str) -> None:
        if len(self._buf) >= MAX_LINE:
            self._bell()
            return
        self._buf.insert(self._cur, char)
        self._cur += 1
        if not self._secret:
            tail = "".join(self._buf[self._cur :])
            self._emit(char + tail + "\b" * len(tail))

    def _backspace(self) -> None:
        if self._cur == 0:
            self._bell()
            return
        self._cur -= 1
        del self._buf[self._cur]
        if not self._secret:
            tail = "".join(self._buf[self._cur :])
            self._emit("\b" + tail + " " + "\b" * (len(tail) + 1))

    def _delete_at_cursor(self) -> None:
        if self._cur < len(self._buf):
            self._move_to(self._cur + 1)
            self._backspace()

    def _move_to(self, pos: int) -> None:
        pos = max(0, min(pos, len(self._buf)))
        if self._secret:
            self._cur = pos
            return
        if pos < self._cur:
            self._emit("\b" * (self._cur - pos))
        else:
            self._emit("".join(self._buf[self._cur : pos]))
        self._cur = pos

    def _replace(self, text: str) -> None:
        """Replace the whole line (Ctrl-U, history) by erasing what the terminal shows."""
        if not self._secret:
            self._move_to(len(self._buf))
            self._emit("\b \b" * len(self._buf))
        self._buf, self._cur = [], 0
        for char in text[:MAX_LINE]:
            self._insert(char)

    def _history_up(self) -> None:
        if self._secret or self._hist_pos == 0:
            self._bell()
            return
        self._hist_pos -= 1
        self._replace(self.history[self._hist_pos])

    def _history_down(self) -> None:
        if self._secret or self._hist_pos >= len(self.history):
            self._bell()
            return
        self._hist_pos += 1
        line = self.history[self._hist_pos] if self._hist_pos < len(self.history) else ""
        self._replace(line)

    def _complete(self) -> None:
        if self.completer is None:
            self._bell()
            return
        before = "".join(self._buf[: self._cur])
        word = before.split(" ")[-1]
        options = sorted({o for o in self.completer(before) if o.startswith(word)})
        if not options:
            self._bell()
            return
        if len(options) == 1:
            for char in options[0][len(word) :] + " ":
                self._insert(char)
            return
        common = _common_prefix(options)
        if len(common) > len(word):
            for char in common[len(word) :]:
                self._insert(char)
            return
        self._emit("\r\n" + "  ".join(options) + "\r\n")
        self._redraw()

    def _redraw(self) -> None:
        self._emit(self._prompt + "".join(self._buf) + "\b" * (len(self._buf) - self._cur))

    def _bell(self) -> None:
        self._out += BELL

    def _emit(self, text: str) -> None:
        self._out += text.encode("ascii", "replace")


def _common_prefix(words: list[str]) -> str:
    first, last = min(words), max(words)
    size = 0
    while size < len(first) and first[size] == last[size]:
        size += 1
    return first[:size]
