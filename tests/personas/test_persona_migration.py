"""Migration 0006 (persona versions): existing personas get version 1 (active); existing answers stay unlinked."""
from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from chat import search

BEFORE = [("chat", "0005_message_sources")]
AFTER = [("chat", "0006_persona_versions")]


@pytest.mark.django_db(transaction=True)
def test_existing_personas_get_an_active_version_one() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    Persona = old.get_model("chat", "Persona")
    Conversation = old.get_model("chat", "Conversation")
    Message = old.get_model("chat", "Message")
    Persona.objects.all().delete()
    persona = Persona.objects.create(name="Old", slug="old", system_prompt="Be kind.", greeting="Hi", temperature=0.4,
                                     top_p=0.8, max_tokens=300, is_default=True)
    conversation = Conversation.objects.create(guest_id="g", persona=persona)
    Message.objects.create(conversation=conversation, seq=1, role="assistant", content="old answer", persona=persona)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    Persona = new.get_model("chat", "Persona")
    Message = new.get_model("chat", "Message")
    persona = Persona.objects.get(slug="old")
    version = persona.active_version
    assert (version.number, version.system_prompt, version.greeting, version.temperature, version.top_p, version.max_tokens) == (
        1, "Be kind.", "Hi", 0.4, 0.8, 300)
    assert (version.source, version.author_label, version.stop, version.language_policy) == ("migration", "migration", [], "customer")
    assert Message.objects.get(content="old answer").persona_version_id is None
    assert new.get_model("chat", "Conversation").objects.get().is_preview is False
    # Leave the database fully migrated for the tests that follow.
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    search.ensure_sqlite_index(connection)  # what post_migrate does after `manage.py migrate`
