"""Widget settings an admin types in: origins and colour, with what they are told when wrong."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from tests.widgets.widget_support import make_widget, shop_persona
from widgets.origins import frame_ancestors, normalise_origin, origin_allowed, origin_of, parse_origins
from widgets.tokens import contrast_text


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("https://shop.example.com", "https://shop.example.com"),
        ("  HTTPS://Shop.Example.COM/ ", "https://shop.example.com"),  # case, spaces, one trailing slash
        ("https://shop.example.com:443", "https://shop.example.com"),  # the default port is implied
        ("http://localhost:8000", "http://localhost:8000"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
        ("https://*.example.com", "https://*.example.com"),
        ("https://xn--fiqs8s.example.cn", "https://xn--fiqs8s.example.cn"),  # IDN as punycode
    ],
)
def test_valid_origins_are_normalised(raw, expected):
    assert normalise_origin(raw) == expected


@pytest.mark.parametrize(
    "raw, code",
    [
        ("shop.example.com", "invalid_origin"),  # no scheme
        ("https://shop.example.com/help", "invalid_origin"),  # a path
        ("https://shop.example.com/?a=1", "invalid_origin"),
        ("ftp://shop.example.com", "invalid_origin"),
        ("https://*", "invalid_origin"),
        ("*", "invalid_origin"),
        ("https://shop.*.com", "invalid_origin"),  # a wildcard only as the first label
        ("https://*.com", "wildcard_too_broad"),
        ("https://sh op.example.com", "invalid_origin"),
        ("https://-shop.example.com", "invalid_origin"),
        ("https://shop.example.com:99999", "invalid_origin"),
        ("https://shop.example.com:0", "invalid_origin"),
        ("https://300.1.1.1", "invalid_origin"),
        ("https://user@shop.example.com", "invalid_origin"),
        ("javascript:alert(1)", "invalid_origin"),
        ("'none'", "invalid_origin"),  # no CSP keywords smuggled into the header
        ("https://a.example.com https://b.example.com", "invalid_origin"),
        ("https://a.example.com;script-src *", "invalid_origin"),
    ],
)
def test_invalid_origins_are_refused_with_a_reason(raw, code):
    with pytest.raises(ValidationError) as caught:
        normalise_origin(raw)
    assert caught.value.code == code
    assert raw.strip() in caught.value.messages[0]  # the admin is told which entry is wrong


def test_origin_list_parses_lines_comments_and_duplicates():
    text = "https://shop.example.com\n\n# our blog\nhttps://blog.example.com  # EN\nHTTPS://SHOP.example.com/\n"
    assert parse_origins(text) == ["https://shop.example.com", "https://blog.example.com"]


def test_origin_list_reports_every_bad_line():
    with pytest.raises(ValidationError) as caught:
        parse_origins("https://ok.example.com\nshop.example.com\nhttps://x.example.com/path")
    assert len(caught.value.messages) == 2
    assert "shop.example.com" in caught.value.messages[0] and "x.example.com/path" in caught.value.messages[1]


@pytest.mark.parametrize(
    "origin, allowed",
    [
        ("https://shop.example.com", True),
        ("https://shop.example.com:443", True),
        ("https://a.b.example.com", True),  # the wildcard entry, any depth
        ("https://example.com", False),  # the wildcard never matches the bare domain
        ("http://a.example.com", False),  # nor another scheme
        ("https://a.example.com:8443", False),  # nor another port
        ("https://evilexample.com", False),
        ("https://example.com.evil.net", False),
        ("https://shop.example.com.evil.net", False),
        ("null", False),  # sandboxed frames, file: pages
        ("", False),
        (None, False),
        ("https://*.example.com", False),  # a browser never sends a wildcard
    ],
)
def test_origin_matching(origin, allowed):
    assert origin_allowed(origin, ["https://shop.example.com", "https://*.example.com"]) is allowed


def test_origin_of_referer():
    assert origin_of("https://shop.example.com/products/1?x=1#y") == "https://shop.example.com"
    assert origin_of("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"
    assert origin_of("about:blank") is None and origin_of("") is None and origin_of(None) is None


def test_frame_ancestors_value():
    assert frame_ancestors(["https://a.example.com", "https://*.b.example.com"]) == (
        "frame-ancestors https://a.example.com https://*.b.example.com"
    )
    assert frame_ancestors([]) == "frame-ancestors 'none'"


@pytest.mark.django_db
def test_widget_full_clean_normalises_and_validates():
    widget = make_widget(origins=" https://Shop.Example.com/ \nhttps://*.example.cn", colour="#AABBCC")
    widget.refresh_from_db()
    assert widget.allowed_origins == "https://shop.example.com\nhttps://*.example.cn"
    assert widget.origins == ["https://shop.example.com", "https://*.example.cn"]
    assert widget.colour == "#aabbcc"
    assert len(widget.public_key) >= 20 and widget.is_active


@pytest.mark.django_db
@pytest.mark.parametrize("colour", ["blue", "#12345", "#1234567", "#ggg000", "", "rgb(0,0,0)", "#fff"])
def test_widget_refuses_bad_colours(colour):
    with pytest.raises(ValidationError) as caught:
        make_widget(colour=colour)
    assert "colour" in caught.value.message_dict
    told = " ".join(caught.value.message_dict["colour"])
    assert ("blank" in told) if colour == "" else ("#rrggbb" in told)


@pytest.mark.django_db
def test_widget_refuses_bad_origins_in_the_admin_form_field():
    with pytest.raises(ValidationError) as caught:
        make_widget(origins="https://shop.example.com/path")
    assert "allowed_origins" in caught.value.message_dict


@pytest.mark.django_db
def test_widget_titles_and_greetings_fall_back_to_the_persona():
    persona = shop_persona()
    widget = make_widget(persona)
    assert widget.display_title == "Shop Helper" and widget.display_greeting == "Hello from the shop!"
    widget.title, widget.greeting = "Help", "Hi!"
    assert widget.display_title == "Help" and widget.display_greeting == "Hi!"


@pytest.mark.django_db
def test_keys_are_unique_and_unguessable():
    persona = shop_persona()
    keys = {make_widget(persona, name=f"w{i}").public_key for i in range(20)}
    assert len(keys) == 20 and all(len(k) >= 22 for k in keys)


def test_contrast_text():
    assert contrast_text("#2563eb") == "#ffffff"
    assert contrast_text("#000000") == "#ffffff"
    assert contrast_text("#ffeb3b") == "#111827"  # yellow: dark text
    assert contrast_text("#ffffff") == "#111827"
