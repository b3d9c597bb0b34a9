"""The line editor: terminal line endings, editing keys, history, completion, garbage."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.console.lineedit import (
    MAX_LINE,
    EndOfInput,
    Interrupt,
    LineDone,
    LineEditor,
)


def lines(editor: LineEditor, data: bytes) -> list[str]:
    return [e.text for e in editor.feed(data) if isinstance(e, LineDone)]


def test_line_endings_cr_lf_crlf_crnul() -> None:
    ed = LineEditor()
    ed.start("> ")
    assert lines(ed, b"a\rb\nc\r\nd\r\x00e\n\r") == ["a", "b", "c", "d", "e", ""]


def test_backspace_del_and_ctrl_u() -> None:
    ed = LineEditor()
    ed.start("> ")
    assert lines(ed, b"abX\x7fc\x08d\r") == ["abd"]
    assert lines(ed, b"junk\x15ok\r") == ["ok"]


def test_cursor_keys_insert_in_middle() -> None:
    ed = LineEditor()
    ed.start("> ")
    assert lines(ed, b"ac\x1b[Db\r") == ["abc"]
    assert lines(ed, b"bc\x01a\x05d\r") == ["abcd"]  # Ctrl-A home, Ctrl-E end
    assert lines(ed, b"abc\x1b[H\x1b[3~\r") == ["bc"]  # Home then Delete


def test_history_up_down() -> None:
    ed = LineEditor()
    ed.start("> ")
    lines(ed, b"one\rtwo\r")
    ed.start("> ")
    assert lines(ed, b"\x1b[A\x1b[A\r") == ["one"]
    ed.start("> ")
    assert lines(ed, b"\x1b[A\x1b[B\r") == [""]


def test_secret_lines_do_not_echo_or_enter_history() -> None:
    ed = LineEditor()
    ed.start("password: ", secret=True)
    ed.take_output()
    assert lines(ed, b"hunter22\r") == ["hunter22"]
    assert b"hunter" not in ed.take_output()
    assert ed.history == []


def test_ctrl_c_and_ctrl_d() -> None:
    ed = LineEditor()
    ed.start("> ")
    assert isinstance(ed.feed(b"abc\x03")[0], Interrupt)
    assert isinstance(ed.feed(b"\x04")[0], EndOfInput)


def test_tab_completion_unique_and_ambiguous() -> None:
    ed = LineEditor()
    ed.completer = lambda before: ["status", "scan", "shop-12", "shop-14"]
    ed.start("> ")
    assert lines(ed, b"st\t\r") == ["status "]
    ed.take_output()
    assert lines(ed, b"sh\t\t\r") == ["shop-1"]
    assert b"shop-12  shop-14" in ed.take_output()


def test_overlong_line_is_cut_with_bell() -> None:
    ed = LineEditor()
    ed.start("> ")
    assert lines(ed, b"x" * (MAX_LINE + 50) + b"\r") == ["x" * MAX_LINE]
    assert b"\x07" in ed.take_output()


def test_escape_garbage_is_swallowed() -> None:
    ed = LineEditor()
    ed.start("> ")
    assert lines(ed, b"a\x1bOPb\x1b[15~c\x1bxd\r") == ["abcd"]  # F1, F5, Alt-x
    assert lines(ed, b"\x1b[1;5Cok\r") == ["ok"]  # Ctrl-Right: unknown, ignored
    # an endless sequence is dropped after MAX_ESCAPE bytes; the rest is plain text
    (text,) = lines(ed, b"\x1b[" + b"9" * 40 + b"ok\r")
    assert text.endswith("ok") and "[" not in text


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_give_printable_bounded_lines(data: bytes) -> None:
    ed = LineEditor()
    ed.completer = lambda before: ["status", "shop-12"]
    ed.start("> ")
    for text in lines(ed, data):
        assert len(text) <= MAX_LINE
        assert all(0x20 <= ord(c) < 0x7F for c in text)
    ed.take_output().decode("ascii")


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200))
def test_byte_by_byte_equals_whole(data: bytes) -> None:
    whole, single = LineEditor(), LineEditor()
    whole.start("> ")
    single.start("> ")
    expected = whole.feed(data)
    got = [e for b in data for e in single.feed(bytes([b]))]
    assert got == expected
    assert whole.take_output() == single.take_output()
