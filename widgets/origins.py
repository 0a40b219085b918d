"""Embedding origins of website widgets (docs/widget.md): parsing, validation, matching.

Pure functions, no I/O. An origin is ``scheme://host[:port]`` exactly as a browser sends it in
``Origin`` (lower case, no path, no trailing slash). The only wildcard is a leading ``*.`` on the
host (``https://*.example.com``): any subdomain at any depth, never the bare ``example.com`` —
the same meaning CSP's ``frame-ancestors`` gives it, so the header and the server's own checks
agree.
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOST = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
_ORIGIN = re.compile(r"^(?P<scheme>https?)://(?P<host>\*\.[^/:]+|[^/:*]+)(?::(?P<port>\d{1,5}))?$")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
DEFAULT_PORTS = {"http": 80, "https": 443}


def validate_colour(value: str) -> None:
    if not _COLOUR.match(value or ""):
        raise ValidationError(_("Enter a colour as #rrggbb, for example #2563eb."), code="invalid_colour")


def normalise_origin(raw: str) -> str:
    """``raw`` as a canonical origin, or ValidationError saying what is wrong with it.

    Lenient only where nothing can be misread: surrounding spaces, upper case, one trailing
    slash, and a default port (``:443`` on https) are dropped.
    """
    text = raw.strip()
    if text.endswith("/") and text.count("/") == 3:
        text = text[:-1]
    text = text.lower()
    match = _ORIGIN.match(text)
    if not match:
        raise ValidationError(
            _("“%(origin)s” is not an origin: write scheme://host[:port], e.g. https://shop.example.com, "
              "with no path."),
            code="invalid_origin", params={"origin": raw.strip()},
        )
    scheme, host, port = match["scheme"], match["host"], match["port"]
    wildcard = host.startswith("*.")
    bare = host[2:] if wildcard else host
    if not (_HOST.match(bare) or (_IPV4.match(bare) and not wildcard)):
        raise ValidationError(_("“%(origin)s” has an invalid host name."), code="invalid_origin",
                              params={"origin": raw.strip()})
    if _IPV4.match(bare) and any(int(part) > 255 for part in bare.split(".")):
        raise ValidationError(_("“%(origin)s” has an invalid host name."), code="invalid_origin",
                              params={"origin": raw.strip()})
    if wildcard and bare.count(".") < 1:
        # "*.com" would let every site on a top-level domain embed the chat.
        raise ValidationError(
            _("“%(origin)s”: a wildcard needs a registrable domain after “*.”, e.g. https://*.example.com."),
            code="wildcard_too_broad", params={"origin": raw.strip()},
        )
    if port is not None:
        number = int(port)
        if not 0 < number < 65536:
            raise ValidationError(_("“%(origin)s” has an invalid port."), code="invalid_origin",
                                  params={"origin": raw.strip()})
        if number == DEFAULT_PORTS[scheme]:
            port = None
    return f"{scheme}://{host}" + (f":{int(port)}" if port else "")


def parse_origins(text: str) -> list[str]:
    """One origin a line (blank lines and ``#`` comments ignored), normalised and de-duplicated.
    Raises one ValidationError listing every bad line."""
    origins: list[str] = []
    errors: list[ValidationError] = []
    for line in (text or "").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            origin = normalise_origin(line)
        except ValidationError as error:
            errors.append(error)
            continue
        if origin not in origins:
            origins.append(origin)
    if errors:
        raise ValidationError(errors)
    return origins


def validate_origins(text: str) -> None:
    parse_origins(text)


def origin_allowed(origin: str | None, allowed: list[str]) -> bool:
    """Whether a browser-sent ``Origin`` (or the origin of a ``Referer``) is on the list."""
    if not origin:
        return False
    try:
        candidate = normalise_origin(origin)
    except ValidationError:
        return False
    if "*" in candidate:
        return False  # a browser never sends a wildcard
    scheme, rest = candidate.split("://", 1)
    for entry in allowed:
        if entry == candidate:
            return True
        if "://*." in entry:
            entry_scheme, entry_rest = entry.split("://*.", 1)
            entry_host, _, entry_port = entry_rest.partition(":")
            host, _, port = rest.partition(":")
            if entry_scheme == scheme and entry_port == port and host.endswith("." + entry_host):
                return True
    return False


def origin_of(url: str | None) -> str | None:
    """The origin of an absolute URL (``Referer``), or None."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def frame_ancestors(allowed: list[str]) -> str:
    """The CSP directive that lets exactly these origins frame a page (``'none'`` when empty)."""
    return "frame-ancestors " + (" ".join(allowed) if allowed else "'none'")
