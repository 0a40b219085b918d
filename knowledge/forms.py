"""One form per knowledge write, so every input is parsed and checked in one place.

Contract: a view binds the form of its action to ``request.POST`` (and ``request.FILES``); when
it is valid, ``cleaned_data`` holds exactly the arguments of the matching ``services`` call;
when it is not, the view shows the page again with the form bound, so the admin sees which
field is wrong and keeps everything typed. Error texts are the ones the pages always used.

Re-indexing and deleting take no input (the URL names the object): their views have no form.
"""
from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from personas.models import Persona

from .faq import parse_faq
from .models import Source

TEXT_KINDS = [(kind.value, kind.label) for kind in (Source.Kind.MARKDOWN, Source.Kind.TEXT)]


class CollectionForm(forms.Form):
    """Create a collection, or change a collection's settings (the same fields)."""

    name = forms.CharField(max_length=200, error_messages={"required": _("A collection needs a name.")})
    description = forms.CharField(required=False)
    personas = forms.ModelMultipleChoiceField(
        queryset=Persona.objects.order_by("name"), required=False, widget=forms.CheckboxSelectMultiple
    )


class FileSourceForm(forms.Form):
    """Upload a Markdown, text, HTML or PDF file. The type and the text itself are checked by
    ``services.create_file_source`` (``InvalidUpload``), which the view reports on ``file``."""

    title = forms.CharField(max_length=300, required=False)
    file = forms.FileField(error_messages={
        "required": _("Choose a file to upload."), "empty": _("The file is empty."),
    })

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        limit = settings.KNOWLEDGE_MAX_UPLOAD_BYTES
        if upload.size > limit:
            raise forms.ValidationError(
                _("The file is larger than the limit of %(size)s.") % {"size": filesizeformat(limit)}
            )
        return upload


class TextSourceForm(forms.Form):
    """Write or paste an article. The text is kept exactly as typed (not stripped)."""

    title = forms.CharField(max_length=300, required=False)
    kind = forms.ChoiceField(choices=TEXT_KINDS, required=False)
    body = forms.CharField(strip=False, error_messages={"required": _("The article is empty.")})

    def clean_kind(self) -> str:
        return self.cleaned_data["kind"] or Source.Kind.MARKDOWN

    def clean_body(self) -> str:
        body = self.cleaned_data["body"]
        if not body.strip():
            raise forms.ValidationError(_("The article is empty."))
        return body


def _pairs(text: str) -> list[tuple[str, str]]:
    pairs = parse_faq(text)
    if not pairs:
        raise forms.ValidationError(_("Write at least one question and answer."))
    return pairs


class FaqSourceForm(forms.Form):
    """Write FAQ pairs (format: ``knowledge.faq``); ``pairs`` cleans to a list of pairs."""

    title = forms.CharField(max_length=300, required=False)
    pairs = forms.CharField(strip=False, error_messages={"required": _("Write at least one question and answer.")})

    def clean_pairs(self) -> list[tuple[str, str]]:
        return _pairs(self.cleaned_data["pairs"])


class SourceForm(forms.Form):
    """Edit a source: its title (blank keeps it), and its text (Markdown and plain text) or its
    pairs (FAQ). Fields that do not apply to the source's kind are absent and clean to None."""

    title = forms.CharField(max_length=300, required=False)
    body = forms.CharField(strip=False, error_messages={"required": _("The article is empty.")})
    pairs = forms.CharField(strip=False, error_messages={"required": _("Write at least one question and answer.")})

    def __init__(self, *args: Any, source: Source, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.source = source
        if source.kind not in (Source.Kind.MARKDOWN, Source.Kind.TEXT):
            del self.fields["body"]
        if source.kind != Source.Kind.FAQ:
            del self.fields["pairs"]

    def clean_body(self) -> str:
        body = self.cleaned_data["body"]
        if not body.strip():
            raise forms.ValidationError(_("The article is empty."))
        return body

    def clean_pairs(self) -> list[tuple[str, str]]:
        return _pairs(self.cleaned_data["pairs"])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        data.setdefault("body", None)
        data.setdefault("pairs", None)
        return data
