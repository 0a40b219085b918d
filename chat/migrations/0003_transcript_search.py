"""Conversation.language (backfilled from each conversation's first customer message) and the
message search index: pg_trgm GIN on PostgreSQL, an FTS5 trigram table with triggers on SQLite
(chat/search.py, docs/transcripts.md)."""

from django.db import migrations, models

PG_CREATE = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    # UPPER(content) is the expression Django's icontains compares, so icontains uses the index.
    "CREATE INDEX IF NOT EXISTS chat_message_content_trgm ON chat_message USING gin (UPPER(content) gin_trgm_ops)",
]
PG_DROP = ["DROP INDEX IF EXISTS chat_message_content_trgm"]  # the extension may serve others: kept


def backfill_language(apps, schema_editor):
    from engine.language import detect_language

    Conversation = apps.get_model("chat", "Conversation")
    Message = apps.get_model("chat", "Message")
    pending = Conversation.objects.filter(language="").values_list("pk", flat=True)
    batch = []
    for conversation_id in pending.iterator(chunk_size=2000):
        first = (
            Message.objects.filter(conversation_id=conversation_id, role="user")
            .order_by("seq").values_list("content", flat=True).first()
        )
        language = detect_language(first or "")
        if language:
            batch.append(Conversation(pk=conversation_id, language=language))
        if len(batch) >= 1000:
            Conversation.objects.bulk_update(batch, ["language"])
            batch = []
    if batch:
        Conversation.objects.bulk_update(batch, ["language"])


def create_search_index(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        for sql in PG_CREATE:
            schema_editor.execute(sql)
    elif connection.vendor == "sqlite":
        from chat.search import ensure_sqlite_index

        ensure_sqlite_index(connection)


def drop_search_index(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        for sql in PG_DROP:
            schema_editor.execute(sql)
    elif connection.vendor == "sqlite":
        from chat.search import drop_sqlite_index

        drop_sqlite_index(connection)


class Migration(migrations.Migration):

    dependencies = [
        ("chat", "0002_conversation_archived_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="language",
            field=models.CharField(blank=True, db_index=True, max_length=8, verbose_name="language"),
        ),
        migrations.RunPython(backfill_language, migrations.RunPython.noop, elidable=True),
        migrations.RunPython(create_search_index, drop_search_index),
    ]
