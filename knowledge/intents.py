"""What a customer's message is for, decided before any retrieval: a factual QUESTION, or a
GREETING, THANKS, SMALL_TALK, a COMPLAINT, or a request for a person (HANDOFF).

Contract: ``detect_intent(text)`` takes one customer message in any language and returns one
``Intent``; it is pure Python (no Django, no model, no engine call), deterministic and fast (a
few regular expressions over a normalised copy of the text), so it runs on every turn for free.

Why: abstention ("I couldn't find this in our help articles") is only honest for a question
asking for facts the knowledge does not hold. "你好", "thanks, that helped!" or "I want to talk to
a human" are not such questions, and answering them with an abstention is what made people
distrust the assistant (issue 14). Anything not recognised as one of the other intents is a
QUESTION, so the rules fail safe: an unrecognised greeting is still grounded as before.

How: phrase lists per language (zh, en, es, fr, de, pt, it, ja, ko, ru, ar, vi, id, tr, nl) for
each conversational intent. Courtesy phrases at the edges ("hi, ...", "..., thanks") are
stripped first; if something substantive remains the message is a QUESTION (or a COMPLAINT when
it is a complaint with no question in it). A HANDOFF is a request to reach a person that does not
ask *when or how* people can be reached (that is a question the help articles answer).
Measured on knowledge/eval/intents-dev.jsonl (``manage.py knowledge_eval --intents``).
"""
from __future__ import annotations

import re
import unicodedata
from enum import StrEnum


class Intent(StrEnum):
    QUESTION = "question"
    GREETING = "greeting"
    THANKS = "thanks"
    SMALL_TALK = "small_talk"
    COMPLAINT = "complaint"
    HANDOFF = "handoff"


def _alternation(phrases: str) -> str:
    """``"a|b c|d"`` → a regex alternation, longest first, spaces matching any whitespace."""
    items = sorted({p.strip() for p in phrases.split("|") if p.strip()}, key=len, reverse=True)
    return "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in items)


# Latin/Cyrillic/Arabic words need word edges; CJK phrases do not (no spaces between words).
def _words(phrases: str) -> str:
    return rf"(?<![\w])(?:{_alternation(phrases)})(?![\w])"


def _cjk(phrases: str) -> str:
    return f"(?:{_alternation(phrases)})"


_GREETING = "|".join([
    _words(
        "hi|hello|hey|hiya|hey there|hi there|good morning|good afternoon|good evening|morning|yo|"
        "hola|buenos dias|buenos días|buenas tardes|buenas noches|buenas|"
        "bonjour|bonsoir|salut|coucou|"
        "hallo|guten tag|guten morgen|guten abend|servus|moin|"
        "ola|olá|oi|bom dia|boa tarde|boa noite|"
        "ciao|buongiorno|buonasera|salve|"
        "privet|привет|здравствуйте|добрый день|доброе утро|добрый вечер|"
        "مرحبا|السلام عليكم|اهلا|أهلا|"
        "xin chao|xin chào|chào|chao ban|chào bạn|"
        "halo|selamat pagi|selamat siang|selamat sore|selamat malam|"
        "merhaba|selam|günaydın|iyi günler|"
        "hoi|goedemorgen|goedemiddag|goedenavond|dag"
    ),
    _cjk(
        "你好|您好|你们好|哈喽|嗨|早上好|下午好|晚上好|早安|晚安|在吗|在不在|有人吗|"
        "こんにちは|こんばんは|おはよう|おはようございます|もしもし|"
        "안녕하세요|안녕|여보세요"
    ),
])

_THANKS = "|".join([
    _words(
        "thanks|thank you|thank u|thx|ty|tysm|cheers|much appreciated|appreciate it|"
        "gracias|muchas gracias|mil gracias|"
        "merci|merci beaucoup|"
        "danke|danke schön|danke schon|vielen dank|dankeschön|"
        "obrigado|obrigada|muito obrigado|muito obrigada|"
        "grazie|grazie mille|"
        "спасибо|большое спасибо|"
        "شكرا|شكرًا|شكرا جزيلا|"
        "cảm ơn|cam on|cám ơn|"
        "terima kasih|makasih|"
        "teşekkürler|teşekkür ederim|sağol|"
        "dank je|dank u|bedankt"
    ),
    _cjk("谢谢|多谢|感谢|谢啦|谢了|谢谢你|谢谢您|thx|ありがとう|ありがとうございます|どうも|감사합니다|고마워요|고맙습니다"),
])

# Short conversational moves with no request for facts.
_SMALL_TALK = "|".join([
    _words(
        "how are you|how are you doing|how r u|how's it going|what's up|whats up|sup|"
        "who are you|what are you|are you a bot|are you a robot|are you human|are you real|are you an ai|"
        "what is your name|what's your name|tell me a joke|nice to meet you|good job|well done|"
        "ok|okay|k|cool|great|nice|awesome|got it|i see|alright|sure|no problem|np|lol|haha|"
        "bye|goodbye|see you|see ya|have a nice day|have a good day|good night|"
        "que tal|qué tal|como estas|cómo estás|adios|adiós|hasta luego|vale|de acuerdo|"
        "ca va|ça va|comment ca va|comment ça va|au revoir|d'accord|"
        "wie geht's|wie gehts|wie geht es dir|tschüss|tschuss|auf wiedersehen|alles klar|"
        "tudo bem|tchau|tudo bom|"
        "come stai|arrivederci|va bene|"
        "как дела|пока|до свидания|"
        "tot ziens|doei"
    ),
    _cjk(
        "你是谁|你是机器人吗|你是真人吗|你是人工智能吗|你叫什么|你叫什么名字|讲个笑话|你好吗|最近怎么样|"
        "好的|好吧|嗯嗯|嗯|哦|哦哦|知道了|明白了|了解|收到|好|行|可以了|没事了|没问题|再见|拜拜|晚安|哈哈|哈哈哈|"
        "お元気ですか|元気|さようなら|またね|了解です|わかりました|"
        "잘 지내요|잘 지내세요|안녕히 계세요|알겠습니다|네"
    ),
])

# A request to reach a person (agent, human, 人工).
_HANDOFF = "|".join([
    _words(
        "human|real person|a person|live agent|live person|an agent|a human|human agent|customer service agent|"
        "representative|operator|someone real|real human|speak to someone|talk to someone|"
        "agent|agents|humano|persona real|una persona|agente|hablar con alguien|"
        "un humain|une personne|un conseiller|un agent|parler a quelqu'un|parler à quelqu'un|"
        "einen menschen|menschen|einem menschen|mensch|mitarbeiter|echten person|einer person|berater|"
        "atendente|pessoa real|um humano|"
        "operatore|persona vera|un umano|"
        "оператор|оператором|оператора|человек|человеком|живой человек|"
        "موظف|شخص حقيقي|"
        "nhân viên|người thật|"
        "manusia|orang sungguhan|"
        "temsilci|gerçek kişi|"
        "medewerker|echt persoon"
    ),
    _cjk("人工|真人|转人工|人工客服|找客服|转客服|客服人员|活人|有没有人|オペレーター|担当者|人間|상담원|사람"),
])
# Verbs/requests around a person: "I want", "let me talk", "transfer", "quiero hablar", ...
_HANDOFF_ASK = "|".join([
    _words(
        "talk|speak|chat|connect|transfer|get me|give me|want|need|let me|put me through|escalate|"
        "hablar|quiero|necesito|pasame|pásame|comunicar|"
        "parler|veux|voudrais|besoin|passer|"
        "sprechen|möchte|mochte|will|brauche|verbinden|"
        "falar|quero|preciso|"
        "parlare|voglio|"
        "поговорить|хочу|соедините|позовите|"
        "أريد|اريد|التحدث|"
        "muốn|nói chuyện|gặp|"
        "mau|ingin|bicara|"
        "istiyorum|konuşmak|"
        "praten|spreken|wil"
    ),
    _cjk("转|找|要|接|联系|我要|给我|叫|換|换|呼んで|話したい|話せ|연결|바꿔|통화"),
])
# Asking *when/how* people can be reached is a question the articles answer (contact hours).
_WHEN = "|".join([
    _words(
        "when|what time|which hours|what hours|hours|opening|open|available|how can i|how do i|phone number|number|email|"
        "cuando|cuándo|horario|quand|horaires|wann|uhrzeit|quando|horário|orari|когда|متى"
    ),
    _cjk("几点|什么时候|时间|上班|下班|电话|邮箱|怎么联系|如何联系|几时|何時|몇 시|언제"),
])

# Complaint lexicon: dissatisfaction, anger, insults.
_COMPLAINT = "|".join([
    _words(
        "terrible|awful|horrible|worst|useless|ridiculous|unacceptable|disappointed|disappointing|disgusting|"
        "scam|rip off|ripoff|rubbish|garbage|trash|pathetic|angry|furious|fed up|sick of|hate|"
        "not happy|very unhappy|unhappy|complain|complaint|"
        "terrible|horrible|pésimo|pesimo|inaceptable|decepcionado|decepcionada|estafa|queja|vergüenza|"
        "nul|inadmissible|déçu|décu|deçu|honteux|arnaque|plainte|inacceptable|"
        "schrecklich|schrecklicher|schreckliche|furchtbar|furchtbarer|unverschämt|enttäuscht|betrug|beschwerde|katastrophe|inakzeptabel|"
        "péssimo|pessimo|decepcionado|reclamação|absurdo|"
        "pessimo|vergogna|deluso|truffa|reclamo|"
        "ужасно|отвратительно|обман|жалоба|"
        "سيء|سيئ|شكوى|"
        "tệ|lừa đảo|"
        "kecewa|parah|"
        "rezalet|berbat|şikayet"
    ),
    _cjk(
        "太差|差劲|垃圾|坑人|骗子|欺骗|失望|气死|生气|愤怒|投诉|恶心|无语|什么破|太烂|烂透|受不了|离谱|坑爹|不满意|"
        "最悪|ひどい|がっかり|クレーム|최악|실망|짜증"
    ),
])

# Signs of a question: a question mark, a question word opening a clause, or (CJK) a question
# particle anywhere.
_QUESTION = "|".join([
    r"[?？¿؟]",
    r"(?:^|[,.;:!，。；：！]\s*)" + _words(
        "how|what|when|where|why|which|who|can|could|do|does|did|is|are|will|would|should|may|"
        "cómo|como|qué|que|cuándo|cuando|dónde|donde|por qué|puedo|puede|"
        "comment|quand|où|pourquoi|quel|quelle|est-ce|puis-je|"
        "wie|was|wann|wo|warum|welche|kann|können|"
        "onde|porque|posso|"
        "come|dove|perché|quanto|posso|"
        "как|что|когда|где|почему|можно|"
        "كيف|ماذا|متى|أين|هل"
    ),
    _cjk("吗|么|怎么|如何|什么|多久|多少|几|哪|能不能|可不能|可以吗|是否|为啥|为什么|怎样|办|ですか|ますか|でしょうか|나요|까요|어떻게|언제"),
])

_EDGE_PUNCT = re.compile(r"^[\W_]+|[\W_]+$")
# What may follow a thanks or go with any request without making it a question.
_TAIL_FILLER = re.compile(r"(?:^|(?<=[\s\W_]))(?:" + _alternation(
    "so much|a lot|very much|again|for your help|for the help|that helped|this helped|it worked|it helped|"
    "please|pls|plz|por favor|por la ayuda|pour votre aide|bitte|für ihre hilfe|per favore|pela ajuda|"
    "解决了|有帮助|帮大忙了|请|麻烦了|麻烦|辛苦了|辛苦|啦|了|呀|哦|"
    "have a nice day|have a good day|have a great day"
) + r")$")


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"\s+", " ", text).strip()


def _strip_courtesy(text: str) -> tuple[str, bool, bool]:
    """``text`` without greeting/thanks phrases at its edges; whether each was there."""
    greeted = thanked = False
    edge = re.compile(rf"^(?:{_GREETING}|{_THANKS})|(?:{_GREETING}|{_THANKS})$")
    for _ in range(8):
        text = _TAIL_FILLER.sub("", _EDGE_PUNCT.sub("", text))
        text = _EDGE_PUNCT.sub("", text)
        match = edge.search(text)
        if not match:
            break
        if re.fullmatch(_THANKS, match.group(0)):
            thanked = True
        else:
            greeted = True
        text = text[: match.start()] + text[match.end():]
    # Polite fillers that may be left after a stripped phrase ("thanks *so much*", "hi *team*").
    text = re.sub(r"^(?:so much|a lot|very much|so|again|everyone|all|team|lumio|everybody)\b\s*", "", text)
    return _EDGE_PUNCT.sub("", text), greeted, thanked


def _substance(text: str) -> int:
    """How much content there is: letters, with a Han/kana/hangul character worth two."""
    letters = sum(1 for ch in text if ch.isalpha())
    wide = sum(1 for ch in text if "\u3040" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af")
    return letters + wide


def _is_small_talk(text: str) -> bool:
    return re.fullmatch(f"(?:{_SMALL_TALK})(?:[\\W_]*(?:{_SMALL_TALK}))*", _EDGE_PUNCT.sub("", text)) is not None


def detect_intent(text: str) -> Intent:
    """The intent of one customer message (QUESTION when nothing else is recognised)."""
    norm = _normalise(text)
    if not norm or not _substance(norm):
        return Intent.SMALL_TALK
    if _is_small_talk(norm):
        return Intent.SMALL_TALK
    if re.search(_HANDOFF, norm) and not re.search(_WHEN, norm) and _substance(norm) <= 60:
        if re.search(_HANDOFF_ASK, norm) or _substance(norm) <= 20:
            return Intent.HANDOFF
    rest, greeted, thanked = _strip_courtesy(norm)
    trivial = not rest or (_substance(rest) <= 3 and not re.search(r"\d", rest)) or _is_small_talk(rest)
    if trivial and thanked:
        return Intent.THANKS
    if trivial and greeted:
        return Intent.GREETING
    if trivial:
        return Intent.SMALL_TALK
    if re.search(_COMPLAINT, rest) and not re.search(_QUESTION, norm):
        return Intent.COMPLAINT
    return Intent.QUESTION
