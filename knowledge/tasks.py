"""Background work of the knowledge base, run by the worker (``manage.py db_worker``)."""
from __future__ import annotations

from django_tasks import task

from .ingestion import ingest_source


@task()
def ingest(source_id: int, version: int) -> str:
    return ingest_source(source_id, version)
