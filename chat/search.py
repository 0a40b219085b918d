"""The message search index: which messages contain a piece of text, literally and
case-insensitively, in Chinese as well as English (no word boundaries needed).

- PostgreSQL: a ``pg_trgm`` GIN index on ``UPPER(content)``, the very expression Django's
  ``icontains`` compares (``UPPER(content::text) LIKE UPPER('%…%')``), so a plain ``icontains``
  filter is answered from the index. Queries shorter than three characters (``退货``) have no
  trigram to look up: PostgreSQL then scans the table (measured in docs/transcripts.md).
- SQLite: an FTS5 table with the ``trigram`` tokenizer over ``chat_message.content`` (external
  content, no second copy of the text), kept in sync by insert/update/delete triggers. Queries of
  three characters or more go through ``MATCH`` as one quoted phrase (so ``"``, ``*``, ``AND``,
  ``NEAR(`` are plain text); shorter ones fall back to ``LIKE``.

Only this module knows the difference; callers use ``messages_containing``. See
docs/transcripts.md.
"""
from __future__ import annotations

from django.db import connection as default_connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

from .models import Message

FTS_TABLE = "chat_message_fts"
PG_INDEX = "chat_message_content_trgm"
MIN_INDEXED_CHARS = 3  # a trigram index has nothing to look up in shorter text

SQLITE_TRIGGERS = {
    f"{FTS_TABLE}_ai": f"""
        CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_ai AFTER INSERT ON chat_message BEGIN
            INSERT INTO {FTS_TABLE}(rowid, content) VALUES (new.id, new.content);
        END""",
    f"{FTS_TABLE}_ad": f"""
        CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_ad AFTER DELETE ON chat_message BEGIN
            INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, content) VALUES ('delete', old.id, old.content);
        END""",
    # Only content changes touch the index (status and checkpoint updates do not).
    f"{FTS_TABLE}_au": f"""
        CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_au AFTER UPDATE OF content ON chat_message BEGIN
            INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, content) VALUES ('delete', old.id, old.content);
            INSERT INTO {FTS_TABLE}(rowid, content) VALUES (new.id, new.content);
        END""",
}


def ensure_sqlite_index(connection: BaseDatabaseWrapper = default_connection) -> bool:
    """Create the FTS5 table and its triggers if missing; rebuild the index when anything was
    missing (a later migration that remakes ``chat_message`` drops its triggers). Idempotent;
    returns True if it had to (re)build. Does nothing on other databases."""
    if connection.vendor != "sqlite":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM sqlite_master WHERE (type = 'table' AND name = %s) OR "
            "(type = 'trigger' AND tbl_name = 'chat_message' AND name LIKE %s)",
            [FTS_TABLE, FTS_TABLE + "%"],
        )
        present = {row[0] for row in cursor.fetchall()}
        if present >= {FTS_TABLE, *SQLITE_TRIGGERS}:
            return False
        cursor.execute(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5("
            "content, content='chat_message', content_rowid='id', tokenize='trigram')"
        )
        for sql in SQLITE_TRIGGERS.values():
            cursor.execute(sql)
        cursor.execute(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")
    return True


def drop_sqlite_index(connection: BaseDatabaseWrapper = default_connection) -> None:
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        for name in SQLITE_TRIGGERS:
            cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
        cursor.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")


def fts_phrase(query: str) -> str:
    """``query`` as one FTS5 string literal: inside double quotes every character is text
    (``*``, ``AND``, ``NEAR(``, ``:``, parentheses); a double quote is written twice."""
    return '"' + query.replace('"', '""') + '"'


def normalise_query(query: str | None, max_length: int = 200) -> str:
    """Whitespace runs become one space (as typed text is compared), trimmed and bounded. NUL
    is dropped: no stored text contains it, and PostgreSQL refuses it as a parameter."""
    return " ".join((query or "").replace("\x00", "").split())[:max_length]


def uses_index(query: str) -> bool:
    return len(query) >= MIN_INDEXED_CHARS


def messages_containing(
    query: str, queryset: QuerySet[Message] | None = None, *, prefer_index: bool = True
) -> QuerySet[Message]:
    """Messages (of ``queryset``, default all) whose content contains ``query``
    (case-insensitive, literal: ``%``, ``_``, quotes and FTS operators are plain characters).
    ``query`` should be normalised; an empty query matches nothing.

    ``prefer_index=False`` says ``queryset`` is small (one customer's messages): on SQLite it is
    then cheaper to scan those rows than to look the text up in the index of every message.
    (PostgreSQL's planner makes that choice itself.)"""
    queryset = Message.objects.all() if queryset is None else queryset
    if not query:
        return queryset.none()
    if default_connection.vendor == "sqlite" and prefer_index and uses_index(query):
        # The FTS5 trigram match is exact substring matching, case-folded like icontains.
        return queryset.filter(
            pk__in=RawSQL(f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s", [fts_phrase(query)])
        )
    if not uses_index(query) and query.upper() == query.lower():
        # A short query without letter case (退货, 50, %): a scan either way, and comparing the
        # content as it is saves an UPPER() of every row (3x faster on PostgreSQL; bench/history.py).
        return queryset.filter(content__contains=query)
    # PostgreSQL: answered from the UPPER(content) trigram index (>= 3 characters).
    # SQLite, short query: LIKE (ASCII case-insensitive), a scan.
    return queryset.filter(content__icontains=query)
