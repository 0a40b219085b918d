"""knowledge.replies: every fixed text in every written language; the English fallback."""
import pytest
from django.conf import settings

from knowledge import replies


@pytest.mark.parametrize("language", replies.WRITTEN_LANGUAGES)
def test_every_language_has_every_text_with_the_contact(language):
    texts = replies.texts_for(language)
    assert set(texts) == set(replies.KEYS)
    for key in ("abstain", "offline_note", "complaint", "handoff", "no_answer"):
        assert settings.ANYHOUR_HUMAN_CONTACT in texts[key] and settings.ANYHOUR_AGENT_HOURS in texts[key]
    assert "{" not in "".join(texts.values())
    if language != "en":
        english = replies.texts_for("en")
        assert all(texts[key] != english[key] for key in replies.KEYS), language
    assert not replies.is_fallback(language)


def test_chinese_comes_from_the_catalogue():
    assert replies.texts_for("zh")["greeting"] == "您好！请问有什么可以帮您？"
    assert replies.texts_for("zh")["label"] == "来自帮助文档："


def test_other_languages_fall_back_to_english():
    assert replies.is_fallback("sv") and replies.texts_for("sv") == replies.texts_for("en")
