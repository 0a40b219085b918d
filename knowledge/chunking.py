"""Text extraction, normalisation and chunking of knowledge sources.

Chunks never cross a heading (a section is one topic), never cut a sentence (Chinese 。！？ and
English . ! ? end sentences), and stay under a token budget; a sentence longer than the budget
alone is the only thing ever cut, at the budget.
"""
from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser

from django.utils.translation import gettext as _

from engine.tokens import estimate_tokens


class ExtractionError(ValueError):
    """The file could not be read (corrupt PDF, undecodable text): shown to the admin."""


@dataclass(frozen=True)
class ChunkDraft:
    heading: str
    text: str
    tokens: int
    answer: str = ""


# --- normalisation ----------------------------------------------------------------------------
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\ufeff]")
_BLANKS = re.compile(r"\n{3,}")


def normalize(text: str) -> str:
    """NFC, Unix newlines, no control or zero-width characters, no trailing spaces, at most one
    blank line in a row. (NFKC is kept for the search tokens: it would turn Chinese full-width
    punctuation into ASCII in the text customers read.)"""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text).replace("\t", " ")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return _BLANKS.sub("\n\n", text).strip()


def decode_text(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ExtractionError(_("The file is not UTF-8 or GB18030 text."))


# --- extraction -------------------------------------------------------------------------------
class _HTMLToMarkdown(HTMLParser):
    """Headings become Markdown headings, blocks become lines; scripts and styles are dropped."""

    _BLOCKS = {"p", "div", "li", "br", "tr", "section", "article", "table", "ul", "ol", "dd", "dt", "blockquote", "pre"}
    _SKIP = {"script", "style", "head", "noscript", "template", "svg"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in self._SKIP:
            self.skip += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self.out.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag in self._BLOCKS:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in self._SKIP:
            self.skip = max(0, self.skip - 1)
        elif re.fullmatch(r"h[1-6]", tag) or tag in self._BLOCKS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if not self.skip:
            self.out.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> tuple[str, str]:
    """(Markdown-ish text, <title>) of an HTML document."""
    parser = _HTMLToMarkdown()
    parser.feed(html)
    parser.close()
    lines = [line.strip() for line in "".join(parser.out).split("\n")]
    return normalize("\n".join(lines)), parser.title.strip()


def pdf_to_text(data: bytes, on_page: Callable[[int, int], None] | None = None) -> str:
    """Text of every page (pypdf), pages separated by blank lines."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = reader.pages
        total = len(pages)
        texts = []
        for number, page in enumerate(pages, 1):
            texts.append(page.extract_text() or "")
            if on_page is not None:
                on_page(number, total)
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise ExtractionError(_("The PDF could not be read: %(error)s") % {"error": exc}) from None
    text = normalize("\n\n".join(texts))
    if not text:
        raise ExtractionError(_("The PDF has no extractable text (a scanned image? OCR it first)."))
    return text


# --- sentences and sections -------------------------------------------------------------------
# A sentence ends after 。！？ (with closing quotes/brackets), or after . ! ? followed by a space
# and not inside a number ("3.5") or a common abbreviation ("e.g. ").
_SENTENCE_END = re.compile(
    r"(?<=[。！？；])[”」』）)]*"
    r"|(?<![A-Za-z]\.[A-Za-z])(?<!\be\.g)(?<!\bi\.e)(?<!\bvs)(?<!\bNo)(?<=[.!?])[\"')\]]*(?=\s)"
)
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*$")


def split_sentences(text: str) -> list[str]:
    """Sentences of one paragraph, whitespace kept inside, trimmed at the ends."""
    out, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        piece = text[start:end].strip()
        if piece:
            out.append(piece)
        start = end
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out


def sections(text: str, title: str) -> Iterator[tuple[str, list[str]]]:
    """(heading path, paragraphs) per Markdown section; list items are paragraphs of their own."""
    path: list[tuple[int, str]] = []
    paragraphs: list[str] = []
    current: list[str] = []

    def heading_path() -> str:
        names = [name for _, name in path]
        if not names or names[0] != title:
            names.insert(0, title)
        return " > ".join(n for n in names if n)

    def end_paragraph() -> None:
        if current:
            paragraphs.append(" ".join(current) if not _is_cjk_line(current) else "".join(current))
            current.clear()

    for line in text.split("\n"):
        heading = _HEADING.match(line)
        if heading:
            end_paragraph()
            if paragraphs:
                yield heading_path(), paragraphs
                paragraphs = []
            level = len(heading.group(1))
            path = [(lvl, name) for lvl, name in path if lvl < level] + [(level, heading.group(2).strip())]
            continue
        stripped = line.strip()
        if not stripped:
            end_paragraph()
        elif re.match(r"^([-*+]|\d+[.)])\s+", stripped):
            end_paragraph()
            current.append(stripped)
            end_paragraph()
        else:
            current.append(stripped)
    end_paragraph()
    if paragraphs:
        yield heading_path(), paragraphs


def _is_cjk_line(lines: list[str]) -> bool:
    return bool(lines) and bool(re.search(r"[\u4e00-\u9fff]$", lines[0]))


def _hard_split(sentence: str, budget: int) -> list[str]:
    """Cut a sentence longer than the budget into budget-sized pieces (the only cut mid-sentence)."""
    pieces, current = [], ""
    for char in sentence:
        if current and estimate_tokens(current + char) > budget:
            pieces.append(current)
            current = ""
        current += char
    if current:
        pieces.append(current)
    return pieces


def chunk_text(text: str, title: str, max_tokens: int = 300) -> list[ChunkDraft]:
    """Chunks of a Markdown/plain document: per section, sentences packed up to ``max_tokens``."""
    drafts: list[ChunkDraft] = []
    for heading, paragraphs in sections(text, title):
        current: list[str] = []
        used = 0

        def close() -> None:
            nonlocal used
            if current:
                body = "\n".join(current).strip()
                drafts.append(ChunkDraft(heading=heading, text=body, tokens=estimate_tokens(body)))
                current.clear()
                used = 0

        for paragraph in paragraphs:
            units = split_sentences(paragraph)
            for index, sentence in enumerate(units):
                cost = estimate_tokens(sentence)
                pieces = _hard_split(sentence, max_tokens) if cost > max_tokens else [sentence]
                for piece in pieces:
                    cost = estimate_tokens(piece)
                    if used and used + cost > max_tokens:
                        close()
                    # Sentences of a paragraph are joined by a space (English) or nothing (CJK).
                    if current and index > 0 and not current[-1].endswith("\n"):
                        joiner = "" if re.search(r"[\u3000-\u9fff\uff00-\uffef]$", current[-1]) else " "
                        current[-1] = current[-1] + joiner + piece
                    else:
                        current.append(piece)
                    used += cost
        close()
    return drafts


def chunk_faq(title: str, pairs: list[tuple[str, str]]) -> list[ChunkDraft]:
    """One chunk per question/answer pair: the question is what customers' words match best."""
    drafts = []
    for question, answer in pairs:
        text = f"{question.strip()}\n{answer.strip()}"
        drafts.append(ChunkDraft(heading=title, text=text, tokens=estimate_tokens(text), answer=answer.strip()))
    return drafts


def title_from_markdown(text: str, fallback: str) -> str:
    for line in text.split("\n"):
        heading = _HEADING.match(line)
        if heading and len(heading.group(1)) == 1:
            return heading.group(2).strip()
        if line.strip():
            break
    return fallback
