"""The fixed customer-facing texts, in the customer's language: abstention, the offline quote's
label and note, the replies to greetings, thanks, small talk and complaints when no engine can
phrase them, and the offer of a person (handoff).

Contract: ``texts_for(language)`` → every text, contact details filled in, for an
``engine.language`` code. Chinese and English come from the gettext catalogue
(locale/zh_Hans); Spanish, French, German, Portuguese, Italian, Japanese, Korean and Russian are
written here (the UI has no catalogue for them: these few sentences are all a customer in those
languages sees without an engine); any other language gets the English text, which is the
clearly-labelled fallback ("fallback": True) — with an engine the model phrases replies in the
customer's own language, these texts only stand in when it cannot.

Why one module: the texts are chosen by the language of the customer's *message*, not the UI
locale, and every path that speaks without the engine (grounding, the chat's errors, the agent
desk's handoff) must say the same thing in the same language.
"""
from __future__ import annotations

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

KEYS = ("abstain", "label", "offline_note", "greeting", "thanks", "small_talk", "complaint", "handoff", "no_answer")


def _catalogue() -> dict[str, str]:
    return {
        "abstain": _(
            "I'm sorry, I couldn't find this in our help articles, and I don't want to guess about our "
            "policies. A human agent can answer it: {contact} ({hours})."
        ),
        "label": _("From our help articles:"),
        "offline_note": _(
            "The assistant is offline right now, so this is the closest match from our help articles. "
            "If it doesn't answer your question, a human agent can help: {contact} ({hours})."
        ),
        "greeting": _("Hello! How can I help you today?"),
        "thanks": _("You're welcome! Is there anything else I can help you with?"),
        "small_talk": _("I'm the store's assistant. Ask me anything about orders, delivery, returns or our products."),
        "complaint": _(
            "I'm sorry about this, and I understand your frustration. Tell me what happened with your "
            "order and I'll help, or a human agent can take it from here: {contact} ({hours})."
        ),
        "handoff": _("Of course. A human agent can help you: {contact} ({hours})."),
        "no_answer": _(
            "I couldn't find a confident answer in our help articles, so I'd rather not guess. "
            "A human agent can help: {contact} ({hours})."
        ),
    }


_WRITTEN: dict[str, dict[str, str]] = {
    "es": {
        "abstain": "Lo siento, no encontré esto en nuestros artículos de ayuda y no quiero adivinar nuestras políticas. Un agente humano puede responderle: {contact} ({hours}).",
        "label": "De nuestros artículos de ayuda:",
        "offline_note": "El asistente no está disponible ahora; esto es lo más parecido de nuestros artículos de ayuda. Si no responde a su pregunta, un agente humano puede ayudarle: {contact} ({hours}).",
        "greeting": "¡Hola! ¿En qué puedo ayudarle hoy?",
        "thanks": "¡De nada! ¿Puedo ayudarle con algo más?",
        "small_talk": "Soy el asistente de la tienda. Pregúnteme sobre pedidos, envíos, devoluciones o productos.",
        "complaint": "Lamento mucho lo ocurrido y entiendo su molestia. Cuénteme qué pasó con su pedido y le ayudo, o un agente humano puede atenderle: {contact} ({hours}).",
        "handoff": "Por supuesto. Un agente humano puede ayudarle: {contact} ({hours}).",
        "no_answer": "No encontré una respuesta segura en nuestros artículos de ayuda y prefiero no adivinar. Un agente humano puede ayudarle: {contact} ({hours}).",
    },
    "fr": {
        "abstain": "Désolé, je n'ai pas trouvé cela dans nos articles d'aide et je ne veux pas deviner nos conditions. Un conseiller peut vous répondre : {contact} ({hours}).",
        "label": "Extrait de nos articles d'aide :",
        "offline_note": "L'assistant est indisponible pour le moment ; voici le passage le plus proche de nos articles d'aide. S'il ne répond pas à votre question, un conseiller peut vous aider : {contact} ({hours}).",
        "greeting": "Bonjour ! Comment puis-je vous aider ?",
        "thanks": "Avec plaisir ! Puis-je vous aider pour autre chose ?",
        "small_talk": "Je suis l'assistant de la boutique. Posez-moi vos questions sur les commandes, la livraison, les retours ou nos produits.",
        "complaint": "Je suis désolé et je comprends votre mécontentement. Dites-moi ce qui s'est passé avec votre commande et je vous aide, ou un conseiller peut prendre le relais : {contact} ({hours}).",
        "handoff": "Bien sûr. Un conseiller peut vous aider : {contact} ({hours}).",
        "no_answer": "Je n'ai pas trouvé de réponse sûre dans nos articles d'aide et je préfère ne pas deviner. Un conseiller peut vous aider : {contact} ({hours}).",
    },
    "de": {
        "abstain": "Das habe ich in unseren Hilfeartikeln leider nicht gefunden, und ich möchte bei unseren Richtlinien nicht raten. Ein Mitarbeiter kann Ihnen antworten: {contact} ({hours}).",
        "label": "Aus unseren Hilfeartikeln:",
        "offline_note": "Der Assistent ist gerade nicht erreichbar; dies ist die passendste Stelle aus unseren Hilfeartikeln. Falls sie Ihre Frage nicht beantwortet, hilft Ihnen ein Mitarbeiter: {contact} ({hours}).",
        "greeting": "Hallo! Wie kann ich Ihnen helfen?",
        "thanks": "Gern geschehen! Kann ich sonst noch etwas für Sie tun?",
        "small_talk": "Ich bin der Assistent des Shops. Fragen Sie mich zu Bestellungen, Versand, Rückgaben oder Produkten.",
        "complaint": "Das tut mir leid, und ich verstehe Ihren Ärger. Schildern Sie mir, was mit Ihrer Bestellung passiert ist, oder ein Mitarbeiter übernimmt: {contact} ({hours}).",
        "handoff": "Natürlich. Ein Mitarbeiter hilft Ihnen gern: {contact} ({hours}).",
        "no_answer": "Ich habe in unseren Hilfeartikeln keine sichere Antwort gefunden und möchte nicht raten. Ein Mitarbeiter hilft Ihnen: {contact} ({hours}).",
    },
    "pt": {
        "abstain": "Desculpe, não encontrei isso nos nossos artigos de ajuda e não quero adivinhar as nossas políticas. Um atendente pode responder: {contact} ({hours}).",
        "label": "Dos nossos artigos de ajuda:",
        "offline_note": "O assistente está indisponível agora; este é o trecho mais próximo dos nossos artigos de ajuda. Se não responder à sua pergunta, um atendente pode ajudar: {contact} ({hours}).",
        "greeting": "Olá! Como posso ajudar?",
        "thanks": "De nada! Posso ajudar em mais alguma coisa?",
        "small_talk": "Sou o assistente da loja. Pergunte-me sobre pedidos, entregas, devoluções ou produtos.",
        "complaint": "Lamento muito e entendo a sua frustração. Conte-me o que aconteceu com o seu pedido, ou um atendente pode ajudar: {contact} ({hours}).",
        "handoff": "Claro. Um atendente pode ajudar: {contact} ({hours}).",
        "no_answer": "Não encontrei uma resposta segura nos nossos artigos de ajuda e prefiro não adivinhar. Um atendente pode ajudar: {contact} ({hours}).",
    },
    "it": {
        "abstain": "Mi dispiace, non ho trovato questa informazione nei nostri articoli di assistenza e non voglio tirare a indovinare. Un operatore può risponderle: {contact} ({hours}).",
        "label": "Dai nostri articoli di assistenza:",
        "offline_note": "L'assistente non è disponibile al momento; questo è il passaggio più vicino dei nostri articoli. Se non risponde alla sua domanda, un operatore può aiutarla: {contact} ({hours}).",
        "greeting": "Ciao! Come posso aiutarla?",
        "thanks": "Prego! Posso aiutarla con altro?",
        "small_talk": "Sono l'assistente del negozio. Mi chieda di ordini, spedizioni, resi o prodotti.",
        "complaint": "Mi dispiace molto e capisco il suo disagio. Mi racconti cosa è successo con l'ordine, oppure un operatore può aiutarla: {contact} ({hours}).",
        "handoff": "Certo. Un operatore può aiutarla: {contact} ({hours}).",
        "no_answer": "Non ho trovato una risposta sicura nei nostri articoli e preferisco non tirare a indovinare. Un operatore può aiutarla: {contact} ({hours}).",
    },
    "ja": {
        "abstain": "申し訳ありません。ヘルプ記事に該当する情報が見つかりませんでした。推測でお答えすることは控えます。担当者がお答えします：{contact}（{hours}）。",
        "label": "ヘルプ記事より：",
        "offline_note": "アシスタントは現在オフラインのため、ヘルプ記事から最も近い内容をお示ししました。解決しない場合は担当者がお手伝いします：{contact}（{hours}）。",
        "greeting": "こんにちは！ご用件をお聞かせください。",
        "thanks": "どういたしまして！ほかにお手伝いできることはありますか？",
        "small_talk": "ストアのアシスタントです。注文、配送、返品、製品についてお気軽にお尋ねください。",
        "complaint": "ご不便をおかけして申し訳ありません。ご注文で何があったかお聞かせください。担当者も対応できます：{contact}（{hours}）。",
        "handoff": "かしこまりました。担当者がお手伝いします：{contact}（{hours}）。",
        "no_answer": "ヘルプ記事に確かな回答が見つからなかったため、推測は控えます。担当者がお手伝いします：{contact}（{hours}）。",
    },
    "ko": {
        "abstain": "죄송합니다. 도움말 문서에서 해당 내용을 찾지 못했으며, 정책을 추측해서 답변하고 싶지 않습니다. 상담원이 답변해 드립니다: {contact} ({hours}).",
        "label": "도움말 문서에서:",
        "offline_note": "지금은 어시스턴트를 사용할 수 없어 도움말 문서에서 가장 가까운 내용을 보여 드립니다. 해결되지 않으면 상담원이 도와드립니다: {contact} ({hours}).",
        "greeting": "안녕하세요! 무엇을 도와드릴까요?",
        "thanks": "천만에요! 더 도와드릴 일이 있을까요?",
        "small_talk": "스토어 어시스턴트입니다. 주문, 배송, 반품, 제품에 대해 물어보세요.",
        "complaint": "불편을 드려 죄송합니다. 주문에 어떤 문제가 있었는지 알려 주시면 도와드리겠습니다. 상담원도 도와드릴 수 있습니다: {contact} ({hours}).",
        "handoff": "물론입니다. 상담원이 도와드립니다: {contact} ({hours}).",
        "no_answer": "도움말 문서에서 확실한 답을 찾지 못해 추측하지 않겠습니다. 상담원이 도와드립니다: {contact} ({hours}).",
    },
    "ru": {
        "abstain": "К сожалению, я не нашёл этого в наших справочных статьях и не хочу гадать о наших правилах. Оператор ответит вам: {contact} ({hours}).",
        "label": "Из наших справочных статей:",
        "offline_note": "Ассистент сейчас недоступен, поэтому вот самый близкий фрагмент из наших статей. Если он не отвечает на ваш вопрос, поможет оператор: {contact} ({hours}).",
        "greeting": "Здравствуйте! Чем могу помочь?",
        "thanks": "Пожалуйста! Могу ли я помочь чем-то ещё?",
        "small_talk": "Я ассистент магазина. Спрашивайте о заказах, доставке, возвратах и товарах.",
        "complaint": "Мне очень жаль, я понимаю ваше недовольство. Расскажите, что случилось с заказом, или вам поможет оператор: {contact} ({hours}).",
        "handoff": "Конечно. Вам поможет оператор: {contact} ({hours}).",
        "no_answer": "Я не нашёл надёжного ответа в наших статьях и не хочу гадать. Вам поможет оператор: {contact} ({hours}).",
    },
}

WRITTEN_LANGUAGES = ("en", "zh", *_WRITTEN)


def texts_for(language: str) -> dict[str, str]:
    """Every fixed text in ``language`` (an engine.language code), contact details filled in.
    Languages without texts get English (the fallback)."""
    if language in _WRITTEN:
        raw = _WRITTEN[language]
    else:
        with translation.override("zh-hans" if language == "zh" else "en"):
            raw = _catalogue()
    contact = {"contact": settings.ANYHOUR_HUMAN_CONTACT, "hours": settings.ANYHOUR_AGENT_HOURS}
    return {key: text.format(**contact) for key, text in raw.items()}


def is_fallback(language: str) -> bool:
    """Whether ``language``'s fixed texts are the English fallback."""
    return language not in WRITTEN_LANGUAGES
