"""Extraction and chunking: headings and sentence ends in Chinese and English, budgets, formats."""
from __future__ import annotations

import io

import pytest

from engine.tokens import estimate_tokens
from knowledge import chunking


def test_english_chunks_follow_headings_and_keep_sentences_whole() -> None:
    text = (
        "# Returns\n\nIntro sentence one. Intro sentence two!\n\n"
        "## Window\n\nYou have 7 days. Is it enough? Yes it is. The item must be unused.\n\n"
        "## Refunds\n\nRefunds take 3.5 days on average. See e.g. the FAQ for details."
    )
    drafts = chunking.chunk_text(chunking.normalize(text), "Returns", max_tokens=12)
    headings = [d.heading for d in drafts]
    assert headings[0] == "Returns"
    assert "Returns > Window" in headings and "Returns > Refunds" in headings
    # No chunk mixes two sections.
    window = [d.text for d in drafts if d.heading == "Returns > Window"]
    assert not any("Refunds" in t for t in window)
    # Every chunk ends at a sentence end; "3.5" and "e.g." did not split a sentence.
    for draft in drafts:
        assert draft.text.rstrip()[-1] in ".!?", draft.text
        assert draft.tokens <= 12
    joined = " ".join(d.text for d in drafts)
    assert "Refunds take 3.5 days on average." in joined
    assert "See e.g. the FAQ for details." in joined


def test_chinese_chunks_split_at_chinese_sentence_ends() -> None:
    sentence = "七天无理由退货需要商品完好。"
    text = "# 退货政策\n\n## 条件\n\n" + sentence * 6 + "请问可以吗？可以！\n\n## 运费\n\n退货运费由买家承担。"
    drafts = chunking.chunk_text(text, "退货政策", max_tokens=40)
    assert {d.heading for d in drafts} == {"退货政策 > 条件", "退货政策 > 运费"}
    assert len([d for d in drafts if d.heading.endswith("条件")]) > 1  # the budget forced a split
    for draft in drafts:
        assert draft.text[-1] in "。！？", draft.text
        assert draft.tokens <= 40
        assert " " not in draft.text  # Chinese sentences are joined without spaces


def test_a_sentence_longer_than_the_budget_is_the_only_thing_cut() -> None:
    long = "字" * 100 + "。"
    drafts = chunking.chunk_text(long, "T", max_tokens=30)
    assert "".join(d.text for d in drafts) == long
    assert all(estimate_tokens(d.text) <= 30 for d in drafts)


def test_normalize_strips_control_characters_and_keeps_full_width_punctuation() -> None:
    assert chunking.normalize("a\u200bb\r\n\r\n\r\n\r\nc，d\x00 ") == "ab\n\nc，d"


def test_html_becomes_headed_text_without_scripts() -> None:
    html = (
        "<html><head><title>Care</title><style>p{}</style></head><body><h1>Care plan</h1>"
        "<p>Covers <b>drops</b> &amp; spills.</p><script>alert(1)</script><h2>Price</h2><ul><li>99 USD</li></ul></body></html>"
    )
    text, title = chunking.html_to_text(html)
    assert title == "Care"
    assert "# Care plan" in text and "## Price" in text and "- 99 USD" in text
    assert "Covers drops & spills." in text
    assert "alert" not in text and "p{}" not in text


def make_pdf(lines: list[str]) -> bytes:
    """A small real PDF with a text layer (Helvetica), written by hand and read back by pypdf."""
    content = "BT /F1 12 Tf 72 720 Td 14 TL " + " ".join(f"({line}) Tj T*" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1"))
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def test_pdf_text_is_extracted_page_by_page() -> None:
    pages: list[tuple[int, int]] = []
    text = chunking.pdf_to_text(make_pdf(["Warranty lasts 12 months.", "Batteries are covered."]),
                                on_page=lambda n, total: pages.append((n, total)))
    assert "Warranty lasts 12 months." in text and "Batteries are covered." in text
    assert pages == [(1, 1)]


def test_a_corrupt_pdf_raises_an_error_the_admin_can_read() -> None:
    with pytest.raises(chunking.ExtractionError, match="PDF could not be read"):
        chunking.pdf_to_text(b"%PDF-1.4\nthis is not really a pdf")


def test_faq_pairs_are_one_chunk_each_and_keep_the_answer() -> None:
    drafts = chunking.chunk_faq("FAQ", [("Do you ship to Mars?", "No, only Earth."), ("发票？", "可以开。")])
    assert [d.answer for d in drafts] == ["No, only Earth.", "可以开。"]
    assert drafts[0].text.startswith("Do you ship to Mars?")


def test_text_in_gb18030_is_decoded_and_undecodable_bytes_are_refused() -> None:
    assert chunking.decode_text("发票说明".encode("gb18030")) == "发票说明"
    with pytest.raises(chunking.ExtractionError):
        chunking.decode_text(b"\xff\xfe\xfa\x00\x81")
