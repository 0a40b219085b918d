import pytest

from engine.language import detect_language


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我想退货", "zh"),
        ("我的 iPhone 15 坏了怎么办", "zh"),
        ("How do I return my earbuds?", "en"),
        ("what does 发票 mean on my order", "en"),
        ("注文をキャンセルしたい", "ja"),
        ("주문을 취소하고 싶어요", "ko"),
        ("12345 ???", ""),
        ("", ""),
    ],
)
def test_detect_language(text: str, expected: str) -> None:
    assert detect_language(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hola", "es"), ("¿Cuánto tarda el envío a Madrid?", "es"), ("bonjour", "fr"), ("merci beaucoup", "fr"),
        ("Combien de temps prend la livraison ?", "fr"), ("hallo", "de"), ("vielen Dank!", "de"),
        ("Wie lange dauert der Versand nach Deutschland?", "de"), ("obrigado!", "pt"),
        ("quanto tempo demora a entrega?", "pt"), ("grazie mille", "it"), ("привет", "ru"), ("شكرا", "ar"),
        ("hi", "en"), ("ok", "en"), ("thx", "en"),
    ],
)
def test_detect_more_languages(text: str, expected: str) -> None:
    assert detect_language(text) == expected
