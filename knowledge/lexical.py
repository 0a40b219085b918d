"""Lexical retrieval: BM25 (bm25s, Lucene variant, k1=1.5, b=0.75) over bilingual tokens.

Tokens (the same function for documents and queries):
- text is NFKC-normalised and lower-cased;
- Latin/digit words, English stop words removed (bm25s's list), reduced by Harman's S-stemmer
  (plural endings only: conservative, no dictionary);
- runs of Han characters give jieba's search-mode words *and* character bigrams, so a word
  jieba splits differently in a question than in an article still matches by its bigrams.

Abstention uses *coverage*, not the raw BM25 score (which has no fixed scale): the share of the
question's words, each weighted by its specificity (normalised idf, see ``specificity``), that
occur in the article a passage belongs to. A question about something the knowledge never
mentions ("eSIM", "教育优惠") finds its most specific words nowhere. Character bigrams help
ranking but do not count toward coverage (a bigram spanning two words, like 单半 in 下单半小时,
means nothing).
"""
from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections import Counter
from functools import lru_cache

import numpy as np

logger = logging.getLogger(__name__)

K1 = 1.5
B = 0.75

_HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_IDENTIFIER = re.compile(r"(?=.*[0-9])[a-z0-9]{5,}")
# Chinese function words that carry no topic; BM25's idf would mostly discount them anyway.
_ZH_STOP = frozenset(
    "的 了 吗 呢 吧 啊 呀 哦 嘛 么 我 你 您 他 她 它 我们 你们 是 在 有 和 与 及 就 都 也 还 要 能 会 可以 "
    "怎么 怎么办 怎样 如何 什么 为什么 哪 哪里 哪些 多少 多久 几 个 一个 这 那 这个 那个 请问 一下 下 吧 "
    "没 没有 不 被 把 给 让 对 从 到 吗 呢 着 过 得 地 又 很 太 想 请 好".split()
)


@lru_cache(maxsize=1)
def _english_stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    return frozenset(STOPWORDS_EN_PLUS)


def _s_stem(word: str) -> str:
    """Harman's S-stemmer: -ies -> -y, -es -> -e, -s -> (nothing), with its exceptions."""
    if len(word) <= 3 or word.isdigit():
        return word
    if word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if word.endswith("es") and not word.endswith(("aes", "ees", "oes")):
        return word[:-1]
    if word.endswith("s") and not word.endswith(("us", "ss")):
        return word[:-1]
    return word


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def analyze(text: str) -> tuple[list[str], list[str]]:
    """(words, bigrams): stemmed English words and jieba's Chinese words (the units of meaning),
    and the Chinese character bigrams that back them up in ranking."""
    text = unicodedata.normalize("NFKC", text).lower()
    words: list[str] = []
    bigrams: list[str] = []
    stop = _english_stopwords()
    for word in _WORD.findall(_HAN_RUN.sub(" ", text)):
        word = word.replace("'s", "")
        if word not in stop and "'" not in word:
            words.append(_s_stem(word))
    jieba = _jieba()
    for run in _HAN_RUN.findall(text):
        for word in jieba.cut(run):
            if word not in _ZH_STOP:
                words.append(word)
        bigrams.extend(run[i : i + 2] for i in range(len(run) - 1))
    return words, bigrams


def tokenize(text: str) -> list[str]:
    words, bigrams = analyze(text)
    return words + bigrams


class LexicalIndex:
    """BM25 over a fixed list of documents (rebuilt when the knowledge changes)."""

    def __init__(self, documents: list[str] | None = None, *, tokenized: list[list[str]] | None = None):
        import bm25s

        # bm25s sets its logger to DEBUG when imported (one line per index build): undo that.
        logging.getLogger("bm25s").setLevel(logging.WARNING)

        corpus = tokenized if tokenized is not None else [tokenize(doc) for doc in documents or []]
        corpus = [tokens or [""] for tokens in corpus]
        self.size = len(corpus)
        self.df: Counter[str] = Counter()
        self.present = [frozenset(tokens) for tokens in corpus]
        for tokens in self.present:
            self.df.update(tokens)
        self.bm25 = bm25s.BM25(k1=K1, b=B, method="lucene")
        if corpus:
            self.bm25.index(corpus, show_progress=False)

    def idf(self, token: str) -> float:
        df = self.df.get(token, 0)
        return math.log(1 + (self.size - df + 0.5) / (df + 0.5))

    def scores(self, query: str) -> tuple[np.ndarray, float]:
        """BM25 score of every document, and the query's upper bound (for normalisation)."""
        words, bigrams = analyze(query)
        tokens = list(dict.fromkeys(words + bigrams))
        if not self.size or not tokens:
            return np.zeros(self.size, dtype=np.float32), 0.0
        bound = sum(self.idf(t) for t in tokens)
        known = [t for t in tokens if t in self.bm25.vocab_dict]
        if not known:
            return np.zeros(self.size, dtype=np.float32), bound
        return np.asarray(self.bm25.get_scores(known), dtype=np.float32), bound

    def specificity(self, word: str) -> float:
        """How much a word says about a topic, 0..1: its idf over the largest possible idf.

        Chinese words use jieba's IDF table (computed on a large general corpus), so
        conversational words (今天, 的话, 大概) weigh little and a word the table does not know
        (a typo, a new product name) weighs most. Other words use this knowledge base's own idf
        (there is no general English table in the stack); a word in no document weighs 1.
        """
        if _HAN_RUN.fullmatch(word):
            table, top = _general_idf()
            return table.get(word, top) / top
        return self.idf(word) / self.idf("\x00")

    def coverage(self, query: str, present: frozenset[str] | set[str]) -> float:
        """Share of the query's meaning found in a text whose tokens are ``present``, 0..1: the
        query's words weighted by ``specificity``.

        A Chinese word also counts as found when all its character bigrams occur (jieba may cut
        the article differently). Bigrams alone never count: "单半" in 下单半小时 is no topic.
        Identifiers are left out: order, tracking and phone numbers (5+ characters with a digit)
        say *which* order, not what the question is about, and as rare tokens they would outweigh
        the rest ("where is my order LM20261125001?" would cover the tracking article 0.24 and
        abstain). Short numbers stay: "7 days", "P7", "Buds 3" are the topic.
        """
        words = [word for word in dict.fromkeys(analyze(query)[0]) if not _IDENTIFIER.fullmatch(word)]
        if not words:
            return 0.0
        total = found = 0.0
        for word in words:
            weight = self.specificity(word)
            total += weight
            if word in present:
                found += weight
            elif _HAN_RUN.fullmatch(word) and len(word) > 2:
                if all(word[i : i + 2] in present for i in range(len(word) - 1)):
                    found += weight
        return found / total if total else 0.0


@lru_cache(maxsize=1)
def _general_idf() -> tuple[dict[str, float], float]:
    """jieba's shipped IDF table for Chinese words, and its largest value."""
    _jieba()
    from jieba.analyse import default_tfidf

    table = default_tfidf.idf_freq
    return table, max(table.values())
