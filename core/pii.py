"""Personal data in free text: find it, mask it.

Contract: ``find(text)`` returns the non-overlapping ``Found(kind, start, end)`` spans of personal
data in ``text``; ``mask(text)`` replaces each with a placeholder naming its kind (``[email]``,
``[phone]``, ``[id_number]``, ``[bank_card]``), so the model still knows *that* the customer gave
a phone number without ever seeing it. Kinds:

- ``email``: ``local@domain.tld``.
- ``id_number``: a mainland resident ID (18 characters: region, a real birth date, sequence, and
  the ISO 7064 MOD 11-2 check character); a string with a wrong check character is not one.
- ``bank_card``: 13–19 digits (spaces or hyphens between groups allowed) that pass the Luhn check.
- ``phone``: a mainland mobile (``1[3-9]`` + 9 digits, optionally ``+86``/``86`` and separators),
  a mainland landline written with its area code (``010-12345678``), or an international number
  written with ``+`` (8–15 digits).

Checksums keep order numbers, tracking numbers and amounts (which customer service is full of)
from being masked by accident. Used by the one prompt builder (chat/prompt.py: nothing reaches
the engine unmasked) and by the log formatter (core/logs.py). Standard library only, no Django
(so it is cheap to call on every line).
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

EMAIL, PHONE, ID_NUMBER, BANK_CARD = "email", "phone", "id_number", "bank_card"
KINDS = (EMAIL, ID_NUMBER, BANK_CARD, PHONE)  # the order spans are claimed in
PLACEHOLDER = {kind: f"[{kind}]" for kind in KINDS}


@dataclass(frozen=True)
class Found:
    kind: str
    start: int
    end: int


# ASCII boundaries, not \w: Chinese text puts no space before or after an address or a number.
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}(?![A-Za-z0-9-])")
_ID = re.compile(r"(?<![0-9A-Za-z])\d{17}[0-9Xx](?![0-9A-Za-z])")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_MOBILE = re.compile(r"(?<![\d+])(?:(?:\+|00)?86[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4}(?!\d)")
_LANDLINE = re.compile(r"(?<![\d-])(?:\(0\d{2,3}\)|0\d{2,3})[ -]\d{7,8}(?![\d-])")
_INTERNATIONAL = re.compile(r"(?<![A-Za-z0-9+])\+\d{1,3}(?:[ -]?\(?\d{1,4}\)?){2,5}(?!\d)")
_QUICK = re.compile(r"[@\d]")

# Full-width forms typed by Chinese input methods, folded one character for one (so positions in
# the folded text are positions in the original).
_FOLD = str.maketrans(
    {chr(0xFF01 + i): chr(0x21 + i) for i in range(94)} | {"\u3000": " ", "\u2014": "-", "\u2013": "-"}
)

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def valid_id_number(value: str) -> bool:
    """An 18-character mainland resident ID: a real birth date and the right check character."""
    if len(value) != 18 or not value[:17].isdigit():
        return False
    try:
        born = dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    if not dt.date(1900, 1, 1) <= born <= dt.date.today():
        return False
    total = sum(int(digit) * weight for digit, weight in zip(value[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == value[17].upper()


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def find(text: str) -> list[Found]:
    """Every span of personal data in ``text``, in order, none overlapping."""
    if not text:
        return []
    text = text.translate(_FOLD)
    if not _QUICK.search(text):
        return []
    taken: list[Found] = []

    def claim(kind: str, start: int, end: int) -> None:
        if all(end <= f.start or start >= f.end for f in taken):
            taken.append(Found(kind, start, end))

    for m in _EMAIL.finditer(text):
        claim(EMAIL, m.start(), m.end())
    for m in _ID.finditer(text):
        if valid_id_number(m.group()):
            claim(ID_NUMBER, m.start(), m.end())
    for m in _CARD.finditer(text):
        digits = _digits(m.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits) and not _MOBILE.fullmatch(m.group()):
            claim(BANK_CARD, m.start(), m.end())
    for pattern in (_MOBILE, _LANDLINE):
        for m in pattern.finditer(text):
            claim(PHONE, m.start(), m.end())
    for m in _INTERNATIONAL.finditer(text):
        if 8 <= len(_digits(m.group())) <= 15:
            claim(PHONE, m.start(), m.end())
    return sorted(taken, key=lambda f: f.start)


def mask(text: str) -> str:
    """``text`` with each piece of personal data replaced by its kind's placeholder."""
    found = find(text)
    if not found:
        return text
    out, last = [], 0
    for item in found:
        out.append(text[last:item.start])
        out.append(PLACEHOLDER[item.kind])
        last = item.end
    out.append(text[last:])
    return "".join(out)
