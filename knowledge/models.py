"""The knowledge base: collections of sources (articles, files, FAQ pairs) cut into chunks.

Vectors are stored as float32 bytes (``BinaryField``) on both databases; retrieval does exact
cosine search over a cached matrix (docs/knowledge.md explains pgvector as the scale-up path).
"""
from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Collection(models.Model):
    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), unique=True)
    description = models.TextField(_("description"), blank=True)
    personas = models.ManyToManyField(
        "personas.Persona", blank=True, related_name="knowledge_collections", verbose_name=_("personas")
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("collection")
        verbose_name_plural = _("collections")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Source(models.Model):
    class Kind(models.TextChoices):
        MARKDOWN = "md", _("Markdown")
        TEXT = "txt", _("Plain text")
        HTML = "html", _("HTML")
        PDF = "pdf", _("PDF")
        FAQ = "faq", _("FAQ")

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        INGESTING = "ingesting", _("ingesting")
        READY = "ready", _("ready")
        FAILED = "failed", _("failed")

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="sources")
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    title = models.CharField(_("title"), max_length=300)
    # The uploaded bytes for html/pdf (kept so a re-ingest can re-extract); md/txt/faq are edited
    # as text and keep their body in ``body``.
    original = models.BinaryField(blank=True, default=b"", editable=False)
    original_name = models.CharField(max_length=255, blank=True)
    body = models.TextField(_("text"), blank=True)
    normalized_text = models.TextField(blank=True, editable=False)
    language = models.CharField(max_length=8, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    progress = models.PositiveSmallIntegerField(default=0)  # percent
    error = models.TextField(blank=True)
    # Bumped on every edit: an ingestion that finishes for an older version discards its work.
    version = models.PositiveIntegerField(default=1)
    checksum = models.CharField(max_length=64, blank=True)
    chunk_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("source")
        verbose_name_plural = _("sources")
        ordering = ["collection", "title"]

    def __str__(self) -> str:
        return self.title


class FaqEntry(models.Model):
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="faq_entries")
    ordinal = models.PositiveIntegerField(default=0)
    question = models.TextField(_("question"))
    answer = models.TextField(_("answer"))

    class Meta:
        verbose_name = _("FAQ entry")
        verbose_name_plural = _("FAQ entries")
        ordering = ["source", "ordinal"]


class Chunk(models.Model):
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="chunks")
    ordinal = models.PositiveIntegerField()
    heading = models.CharField(max_length=500, blank=True)  # "Title > Section"
    text = models.TextField()
    # For FAQ chunks: the answer alone (offline answers quote it without the question).
    answer = models.TextField(blank=True)
    tokens = models.PositiveIntegerField(default=0)
    # The lexical tokens of heading + text (knowledge.lexical.tokenize), space-separated: computed
    # once by the worker so that rebuilding a process's index does not re-run jieba.
    search_tokens = models.TextField(blank=True, editable=False)
    embedding = models.BinaryField(null=True, blank=True)
    embedding_model = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["source", "ordinal"]
        constraints = [models.UniqueConstraint(fields=["source", "ordinal"], name="chunk_ordinal_unique")]


class IndexState(models.Model):
    """One row: a counter bumped whenever chunks change, so every process (several Daphnes, the
    worker) knows when its in-memory index is stale."""

    version = models.PositiveBigIntegerField(default=0)
