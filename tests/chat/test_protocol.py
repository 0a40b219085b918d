"""Client frame validation and the per-socket token bucket."""
import pytest

from chat.protocol import ProtocolError, TokenBucket, parse_client_frame


def test_send_is_trimmed_and_validated(settings):
    assert parse_client_frame('{"type":"send","text":"  hi  ","client_id":"a"}') == {
        "type": "send", "text": "hi", "client_id": "a"}
    with pytest.raises(ProtocolError) as info:
        parse_client_frame('{"type":"send","text":"hi","client_id":"%s"}' % ("x" * 65))
    assert info.value.code == "bad_frame"


def test_multibyte_frames_are_measured_in_bytes(settings):
    settings.CHAT_MAX_FRAME_BYTES = 100
    text = '{"type":"send","text":"%s"}' % ("字" * 30)  # 30 characters but 90 bytes of text
    assert len(text) < 100 and len(text.encode()) > 100
    with pytest.raises(ProtocolError) as info:
        parse_client_frame(text)
    assert info.value.code == "frame_too_large"


@pytest.mark.parametrize("raw", ['{"type":"resume","seq":true}', '{"type":"resume","seq":1.5}', '{"type":"resume","offset":"3"}'])
def test_resume_needs_integers(raw):
    with pytest.raises(ProtocolError):
        parse_client_frame(raw)


def test_resume_defaults_to_the_start():
    assert parse_client_frame('{"type":"resume"}') == {"type": "resume", "seq": 0, "offset": 0}


def test_unknown_type_is_cut_in_the_message():
    with pytest.raises(ProtocolError) as info:
        parse_client_frame('{"type":"%s"}' % ("z" * 1000))
    assert info.value.code == "unknown_type" and len(info.value.message) < 100


def test_token_bucket_refills_over_time():
    bucket = TokenBucket(rate=2, burst=2, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [True, True, False]
    assert bucket.retry_after() == pytest.approx(0.5)
    assert bucket.take(0.5) and not bucket.take(0.5)
