"""Go's text/tabwriter as docker's formatter uses it (`NewWriter(out, 10, 1, 3, ' ', 0)`), so tables
come out byte for byte as docker's.

The rules that matter: a cell is text terminated by a tab; the last cell of a line is not part of
any column; a column's width is the widest cell in a run of consecutive lines that have that column
(plus padding, at least minwidth); a line with a single cell ends the block. Widths count runes,
East Asian wide characters as two."""

from __future__ import annotations


def text_width(s: str) -> int:
    if s.isascii():
        return len(s)
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in s)


class TabWriter:
    def __init__(self, minwidth: int = 10, tabwidth: int = 1, padding: int = 3, padchar: str = " ") -> None:
        self.minwidth = minwidth
        self.tabwidth = tabwidth
        self.padding = padding
        self.padchar = padchar
        self.out: list[str] = []
        self._reset()

    def _reset(self) -> None:
        self.lines: list[list[tuple[str, int, bool]]] = [[]]  # (text, width, tab-terminated)
        self.cell = ""
        self.widths: list[int] = []

    def write(self, text: str) -> None:
        start = 0
        for i, ch in enumerate(text):
            if ch in "\t\v\n\f":
                self.cell += text[start:i]
                start = i + 1
                line = self.lines[-1]
                line.append((self.cell, text_width(self.cell), ch == "\t"))
                self.cell = ""
                ncells = len(line)
                if ch in "\n\f":
                    self.lines.append([])
                    if ch == "\f" or ncells == 1:
                        self._flush_lines()
        self.cell += text[start:]

    def _flush_lines(self) -> None:
        self._format(0, len(self.lines))
        self._reset()

    def flush(self) -> str:
        """Format what was written and return the text (the writer is reset)."""
        if self.cell:
            self.lines[-1].append((self.cell, text_width(self.cell), False))
            self.cell = ""
        self._flush_lines()
        s = "".join(self.out)
        self.out = []
        return s

    def _write_lines(self, line0: int, line1: int) -> None:
        out = self.out
        for i in range(line0, line1):
            line = self.lines[i]
            for j, (text, width, _tab) in enumerate(line):
                if j < len(self.widths):
                    out.append(text)
                    out.append(self.padchar * (self.widths[j] - width))
                else:
                    out.append(text)
            if i + 1 == len(self.lines):
                # the last, incomplete line: its pending cell is written by the caller's reset
                pass
            else:
                out.append("\n")

    def _format(self, line0: int, line1: int) -> None:
        column = len(self.widths)
        this = line0
        while this < line1:
            line = self.lines[this]
            if column >= len(line) - 1:
                this += 1
                continue
            self._write_lines(line0, this)
            line0 = this
            width = self.minwidth
            discardable = True
            while this < line1:
                line = self.lines[this]
                if column >= len(line) - 1:
                    break
                _text, w, tab = line[column]
                if w + self.padding > width:
                    width = w + self.padding
                if w > 0 or tab:
                    discardable = False
                this += 1
            del discardable
            self.widths.append(width)
            self._format(line0, this)
            self.widths.pop()
            line0 = this
        self._write_lines(line0, line1)


def tabulate(text: str, minwidth: int = 10, tabwidth: int = 1, padding: int = 3) -> str:
    """Align tab-separated text the way docker's tables are aligned."""
    tw = TabWriter(minwidth, tabwidth, padding)
    tw.write(text)
    return tw.flush()
