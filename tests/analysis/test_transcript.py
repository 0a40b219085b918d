"""The transcript view shows the analysis: per customer message, the conversation's latest and
worst sentiment, and the escalations (transcripts reads analysis selectors; access unchanged)."""
from __future__ import annotations

import pytest

from accounts import roles
from tests.accounts.support import Browser, make_user
from tests.factories import ConversationFactory, MessageFactory
from tests.knowledge.conftest import run_worker
from testsupport.engine_sim import EngineSimulator

pytestmark = pytest.mark.django_db(transaction=True)


def test_agent_sees_sentiment_failures_and_escalations(engine_sim: EngineSimulator) -> None:
    conversation = ConversationFactory()
    MessageFactory(conversation=conversation, content="我要去12315投诉，太失望了")
    MessageFactory(conversation=conversation, content="where is it [[sim json=truncated]]")
    MessageFactory(conversation=conversation, content="好的，谢谢，很满意")
    run_worker()
    agent = Browser.logged_in(make_user("agent@example.com", role=roles.AGENT, mfa=True))
    page = agent.client.get(f"/transcripts/{conversation.public_id}/").content.decode()
    assert 'class="sentiment-latest sentiment-positive"' in page
    assert 'class="sentiment-worst sentiment-negative"' in page
    assert '<strong class="escalation-rule">legal-zh</strong>: <span class="escalation-matched">12315</span>' in page
    assert "analysis failed" in page and "output truncated" in page
    assert page.count('class="meta-category"') == 2


def test_a_conversation_without_analysis_says_so() -> None:
    conversation = ConversationFactory()
    admin = Browser.logged_in(make_user("admin@example.com", role=roles.ADMIN, mfa=True))
    page = admin.client.get(f"/transcripts/{conversation.public_id}/").content.decode()
    assert "not analysed yet" in page and 'id="escalations"' not in page


def test_the_sentiment_summary_is_translated() -> None:
    conversation = ConversationFactory()
    admin = Browser.logged_in(make_user("admin@example.com", role=roles.ADMIN, mfa=True))
    page = admin.client.get(f"/transcripts/{conversation.public_id}/", HTTP_ACCEPT_LANGUAGE="zh-Hans").content.decode()
    assert "情绪（最新 / 最差）" in page and "尚未分析" in page


def test_the_transcript_list_filters_by_worst_sentiment_and_escalation() -> None:
    from django.utils import timezone

    from analysis.models import ConversationSentiment

    angry, happy, quiet = (ConversationFactory(title=t) for t in ("angry one", "happy one", "quiet one"))
    ConversationSentiment.objects.create(conversation=angry, latest="neutral", worst="negative", analysed=2,
                                         escalated_at=timezone.now())
    ConversationSentiment.objects.create(conversation=happy, latest="positive", worst="positive", analysed=1)
    agent = Browser.logged_in(make_user("agent@example.com", role=roles.AGENT, mfa=True))

    def titles(**params: str) -> set[str]:
        page = agent.client.get("/transcripts/", params).content.decode()
        return {t for t in ("angry one", "happy one", "quiet one") if t in page}

    assert titles() == {"angry one", "happy one", "quiet one"}
    assert titles(sentiment="negative") == {"angry one"}
    assert titles(sentiment="escalated") == {"angry one"}
    assert titles(sentiment="positive") == {"happy one"}
    response = agent.client.get("/transcripts/", {"sentiment": "furious"})
    assert response.status_code == 400 and "sentiment must be one of positive, neutral, negative, escalated" in response.content.decode()
    assert 'class="badge badge-danger tr-escalated"' in agent.client.get("/transcripts/").content.decode()


def test_an_agent_corrects_a_label_beside_the_models(engine_sim: EngineSimulator) -> None:
    from accounts.models import AuditEvent
    from analysis.models import MessageAnalysis

    conversation = ConversationFactory()
    asked = MessageFactory(conversation=conversation, content="great, thanks")
    MessageFactory(conversation=conversation, role="assistant", content="You're welcome")
    run_worker()
    agent = Browser.logged_in(make_user("agent@example.com", role=roles.AGENT, mfa=True))
    url = f"/analysis/review/{conversation.public_id}/{asked.seq}/"
    detail = f"/transcripts/{conversation.public_id}/"
    assert f'action="{url}"' in agent.client.get(detail).content.decode()
    response = agent.client.post(url, {"sentiment": "neutral", "next": detail})
    assert (response.status_code, response["Location"]) == (303, detail)
    analysis = MessageAnalysis.objects.get(message=asked)
    assert (analysis.sentiment, analysis.human_sentiment) == ("positive", "neutral")  # the model's label is kept
    assert analysis.reviewed_by is not None and analysis.reviewed_at is not None
    assert AuditEvent.objects.filter(action="analysis.review", target=f"{conversation.public_id}#{asked.seq}").exists()
    assert 'class="meta-reviewed sentiment-neutral"' in agent.client.get(detail).content.decode()
    # Bad label: 400; an answer (not a customer message) or an unknown seq: 404; off-site next: ignored.
    assert agent.client.post(url, {"sentiment": "furious"}).status_code == 400
    assert agent.client.post(f"/analysis/review/{conversation.public_id}/2/", {"sentiment": "neutral"}).status_code == 404
    assert agent.client.post(f"/analysis/review/{conversation.public_id}/9/", {"sentiment": "neutral"}).status_code == 404
    assert agent.client.post(url, {"sentiment": "negative", "next": "https://evil.example/"}).status_code == 204
    assert agent.client.get(url).status_code == 405
