"""A tiny, deterministic PDF writer for the sample corpus and the tests.

Why our own: the sample PDF must be reproducible byte for byte (no creation
timestamps, no random ids) so its content hash and chunk ids never change, and
no PDF-writing library is a dependency.  It supports exactly what a text
manual needs: Letter pages, the standard Helvetica / Helvetica-Bold / Courier
fonts with WinAnsi encoding, word wrap, a running footer, Flate compression.
"""

from __future__ import annotations

import re
import textwrap
import zlib
from collections.abc import Mapping, Sequence
from typing import Final, Literal

__all__ = ["Block", "render_pdf", "markdown_to_blocks"]

BlockKind = Literal["h1", "h2", "p", "pre"]
Block = tuple[BlockKind, str]

_PAGE_W: Final = 612
_PAGE_H: Final = 792
_MARGIN: Final = 54
# (font resource, size, leading, wrap width in characters).  Wrap widths are
# conservative averages for Helvetica; Courier is exact (0.6 em per glyph).
_STYLES: Final[dict[BlockKind, tuple[str, float, float, int]]] = {
    "h1": ("F2", 15.0, 20.0, 60),
    "h2": ("F2", 11.5, 16.0, 80),
    "p": ("F1", 10.0, 13.0, 96),
    "pre": ("F3", 8.5, 11.0, 98),
}
_ITEM: Final = re.compile(r"^\s*(?:[-*]|\d+[.)])\s")
_REPLACE: Final = {"≥": ">=", "≤": "<=", "→": "->", "×": "x", "Δ": "delta ", "✓": "v"}


def _pdf_string(text: str) -> bytes:
    for src, dst in _REPLACE.items():
        text = text.replace(src, dst)
    raw = text.encode("cp1252", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _lines(blocks: Sequence[Block]) -> list[tuple[BlockKind, str, float]]:
    """Wrap blocks into (kind, line, space-before) triples."""
    out: list[tuple[BlockKind, str, float]] = []
    for kind, text in blocks:
        _, _, leading, width = _STYLES[kind]
        gap = leading * (0.8 if kind in ("h1", "h2") else 0.4)
        if kind == "pre":
            wrapped = [line[:width] for line in text.splitlines()]
        else:
            wrapped = textwrap.wrap(" ".join(text.split()), width) or [""]
        for i, line in enumerate(wrapped):
            out.append((kind, line, gap if i == 0 else 0.0))
    return out


def render_pdf(
    pages: Sequence[Sequence[Block]],
    *,
    title: str,
    footer: str | None = None,
    info: Mapping[str, str] | None = None,
) -> bytes:
    """A PDF with one or more physical pages per logical page (overflow continues).

    ``info`` adds entries to the document information dictionary (e.g.
    ``{"Manufacturer": "Daikin"}``), which extraction reads back as metadata.
    """
    streams: list[bytes] = []
    for blocks in pages:
        lines = _lines(blocks)
        while True:
            y = float(_PAGE_H - _MARGIN)
            ops: list[bytes] = []
            used = 0
            for kind, line, gap in lines:
                font, size, leading, _ = _STYLES[kind]
                if y - gap - leading < _MARGIN + 20 and used:
                    break
                y -= gap + leading
                used += 1
                ops.append(b"BT /%s %.1f Tf 1 0 0 1 %d %.1f Tm %s Tj ET" % (font.encode(), size, _MARGIN, y, _pdf_string(line)))
            if footer:
                label = f"{footer} - page {len(streams) + 1}"
                ops.append(b"BT /F1 8 Tf 1 0 0 1 %d %d Tm %s Tj ET" % (_MARGIN, _MARGIN - 20, _pdf_string(label)))
            streams.append(b"\n".join(ops))
            lines = lines[used:]
            if not lines:
                break

    objects: list[bytes] = []
    n_pages = len(streams)
    first_page_obj = 7
    kids = b" ".join(b"%d 0 R" % (first_page_obj + 2 * i) for i in range(n_pages))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, n_pages))
    for base in (b"Helvetica", b"Helvetica-Bold", b"Courier"):
        objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /%s /Encoding /WinAnsiEncoding >>" % base)
    extra = b"".join(
        b" /%s %s" % (re.sub(r"[^A-Za-z0-9_]", "", key).encode(), _pdf_string(value))
        for key, value in sorted((info or {}).items())
    )
    objects.append(b"<< /Title %s /Producer (Ensemble sample writer)%s >>" % (_pdf_string(title), extra))
    resources = b"<< /Font << /F1 3 0 R /F2 4 0 R /F3 5 0 R >> >>"
    for i, stream in enumerate(streams):
        content_obj = first_page_obj + 2 * i + 1
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources %s /Contents %d 0 R >>"
            % (_PAGE_W, _PAGE_H, resources, content_obj)
        )
        packed = zlib.compress(stream, 9)
        objects.append(b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(packed), packed))

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: list[int] = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref_at)
    return bytes(out)


def markdown_to_blocks(markdown: str) -> list[list[Block]]:
    """Pages of blocks from the subset of Markdown the sample manuals use.

    Each ``# `` heading starts a page; ``## `` is a sub-heading; tables and
    fenced code become fixed-width lines; bullets stay one paragraph each.
    """
    pages: list[list[Block]] = []
    current: list[Block] = []
    para: list[str] = []
    pre: list[str] = []
    in_fence = False

    def flush() -> None:
        if para:
            current.append(("p", " ".join(para)))
            para.clear()
        if pre:
            current.append(("pre", "\n".join(pre)))
            pre.clear()

    for raw in markdown.splitlines():
        line = raw.rstrip()
        if line.startswith("```"):
            flush()
            in_fence = not in_fence
            continue
        if in_fence or line.startswith("|"):
            if para:
                flush()
            if line.startswith("|") and set(line) <= set("|-: "):
                continue  # the separator row of a Markdown table
            pre.append(line.strip("|").replace("|", "  ") if line.startswith("|") else line)
            continue
        if pre:
            flush()
        if line.startswith("# "):
            flush()
            if current:
                pages.append(current)
            current = [("h1", line[2:].strip())]
        elif line.startswith("## ") or line.startswith("### "):
            flush()
            current.append(("h2", line.lstrip("#").strip()))
        elif not line.strip():
            flush()
        elif _ITEM.match(line):
            flush()
            para.append(line.strip())
        else:
            para.append(line.strip())
    flush()
    if current:
        pages.append(current)
    return pages
