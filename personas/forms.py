"""The persona editor's forms. Validation of the prompt and settings is ``personas.validate``
(the same rules for the editor, imports and code); the form maps its errors onto fields."""
from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from engine.language import LANGUAGES

from . import services as personas
from .models import LanguagePolicy, Persona


class PersonaForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    description = forms.CharField(label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    system_prompt = forms.CharField(
        label=_("System prompt"), widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false", "class": "mono"}),
        strip=False,
    )
    greeting = forms.CharField(label=_("Greeting"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    unavailable_text = forms.CharField(
        label=_("Text shown when the assistant is unavailable"), required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    language_policy = forms.ChoiceField(label=_("Reply language"), choices=LanguagePolicy.choices)
    fixed_language = forms.ChoiceField(
        label=_("Fixed language"), required=False, choices=[("", "—"), *LANGUAGES.items()],
    )
    model = forms.CharField(label=_("Model"), max_length=200, required=False,
                            help_text=_("Empty: the deployment's ENGINE_MODEL."))
    temperature = forms.FloatField(label=_("Temperature"), min_value=0, max_value=2)
    top_p = forms.FloatField(label=_("Top p"), min_value=0.01, max_value=1)
    max_tokens = forms.IntegerField(label=_("Max tokens"), min_value=1)
    presence_penalty = forms.FloatField(label=_("Presence penalty"), min_value=-2, max_value=2)
    frequency_penalty = forms.FloatField(label=_("Frequency penalty"), min_value=-2, max_value=2)
    stop = forms.CharField(
        label=_("Stop sequences"), required=False, widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}),
        help_text=_("One per line, at most 4."), strip=False,
    )
    note = forms.CharField(label=_("Change note"), max_length=500, required=False,
                           help_text=_("What changed and why: shown in the version list and the audit log."))

    @classmethod
    def initial_from(cls, persona: Persona, source: Any) -> dict[str, Any]:
        initial = personas.snapshot(source)
        initial["stop"] = "\n".join(initial["stop"] or [])
        initial["name"] = persona.name
        return initial

    def settings_fields(self) -> dict[str, Any]:
        data = {k: v for k, v in self.cleaned_data.items() if k in personas.SETTINGS_FIELDS}
        data["stop"] = [line for line in (data.get("stop") or "").replace("\r\n", "\n").split("\n") if line]
        return data

    def add_validation_error(self, error: ValidationError) -> None:
        for field, messages in error.message_dict.items():
            self.add_error(field if field in self.fields else None, messages)


RESERVED_SLUGS = {"new", "import", "export"}  # /personas/<these>/ are pages of their own


class NewPersonaForm(PersonaForm):
    slug = forms.SlugField(
        label=_("Slug"), max_length=50, help_text=_("The persona's address: letters, digits, - and _.")
    )

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"]
        if slug in RESERVED_SLUGS:
            raise ValidationError(_("This slug is reserved; choose another."))
        if Persona.objects.filter(slug=slug).exists():
            raise ValidationError(_("A persona with this slug already exists."))
        return slug


class ImportForm(forms.Form):
    file = forms.FileField(label=_("Persona file (JSON or YAML)"))
    activate = forms.BooleanField(
        label=_("Also activate the file's active versions on existing personas"), required=False
    )
