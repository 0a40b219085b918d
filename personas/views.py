"""The persona editor in the app (docs/personas.md). Thin: rules in ``services``, files in
``importexport``; the preview console's conversations are the chat app's (chat/preview.py).

Access: admins edit, preview, activate, import and export; agents read the active version of
each persona (read-only); everyone else gets 404, as for anything they may not know exists.
Agents asking for an admin-only action get 403. Staff without MFA are sent to set it up by
the middleware before reaching here.
"""
from __future__ import annotations


from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import roles
from accounts.access import admin_required, request_actor, staff_required
from accounts.services import audit

from . import importexport as persona_io
from . import prompt as persona_prompt
from . import services as personas
from .defaults import DEFAULT_PERSONA
from .forms import ImportForm, NewPersonaForm, PersonaForm
from .models import Persona, PersonaVersion


def _persona(slug: str) -> Persona:
    return get_object_or_404(Persona.objects.select_related("active_version"), slug=slug)


def _version(persona: Persona, number: int) -> PersonaVersion:
    return get_object_or_404(PersonaVersion, persona=persona, number=number)


def _variables() -> list[tuple[str, str]]:
    return [(f"{{{name}}}", str(help_text)) for name, help_text in persona_prompt.VARIABLES.items()]


@require_GET
@staff_required
def persona_list(request: HttpRequest) -> HttpResponse:
    role = request_actor(request).role
    items = Persona.objects.select_related("active_version").order_by("-is_default", "name")
    return render(request, "personas/list.html", {
        "personas": items, "can_edit": role == roles.ADMIN, "import_form": ImportForm(),
    })


@require_http_methods(["GET", "POST"])
@admin_required
def persona_new(request: HttpRequest) -> HttpResponse:
    form = NewPersonaForm(request.POST or None, initial={
        **{k: v for k, v in DEFAULT_PERSONA.items() if k in personas.SETTINGS_FIELDS}, "name": "", "slug": "",
    })
    if request.method == "POST" and form.is_valid():
        try:
            persona = personas.create_persona(
                form.cleaned_data["name"], form.cleaned_data["slug"], form.settings_fields(), request.user,
                note=form.cleaned_data["note"],
            )
        except ValidationError as error:
            form.add_validation_error(error)
        else:
            messages.success(request, _("Persona created; version 1 is active."))
            return redirect("personas:editor", slug=persona.slug)
    return render(request, "personas/new.html", {"form": form, "variables": _variables()})


@require_http_methods(["GET", "POST"])
@staff_required
def persona_editor(request: HttpRequest, slug: str) -> HttpResponse:
    role = request_actor(request).role
    persona = _persona(slug)
    if role != roles.ADMIN:
        if request.method == "POST":
            raise PermissionDenied("Only admins change personas")
        return render(request, "personas/read.html", {
            "persona": persona, "version": persona.active_version, "variables": _variables(),
        })
    versions = list(persona.versions.order_by("-number"))
    start_from = versions[0] if versions else persona
    if request.GET.get("from", "").isdigit():
        start_from = _version(persona, int(request.GET["from"]))
    form = PersonaForm(request.POST or None, initial=PersonaForm.initial_from(persona, start_from))
    if request.method == "POST" and form.is_valid():
        try:
            version = personas.save_version(
                persona, form.settings_fields(), request.user, note=form.cleaned_data["note"],
                name=form.cleaned_data["name"],
            )
        except ValidationError as error:
            form.add_validation_error(error)
        else:
            messages.success(request, _("Saved as version %(number)d (a draft until you activate it).")
                             % {"number": version.number})
            return redirect(reverse("personas:editor", args=[persona.slug]) + f"?from={version.number}#preview")
    active = persona.active_version
    return render(request, "personas/editor.html", {
        "persona": persona,
        "form": form,
        "versions": versions,
        "active": active,
        "editing_from": start_from if isinstance(start_from, PersonaVersion) else None,
        "variables": _variables(),
        "preview_url_template": reverse("chat:persona_preview", args=[persona.slug, 0]).replace("/0/", "/{n}/"),
    })


@require_POST
@admin_required
def persona_activate(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    persona = _persona(slug)
    version = _version(persona, number)
    previous = persona.active_version.number if persona.active_version else None
    personas.activate(version, request.user, note=request.POST.get("note", "")[:500])
    if previous is not None and number < previous:
        messages.success(request, _("Rolled back to version %(number)d.") % {"number": number})
    else:
        messages.success(request, _("Version %(number)d is now active.") % {"number": number})
    return redirect("personas:editor", slug=persona.slug)


@require_GET
@admin_required
def persona_diff(request: HttpRequest, slug: str) -> HttpResponse:
    persona = _persona(slug)
    versions = list(persona.versions.order_by("-number"))
    try:
        a = int(request.GET.get("a") or (versions[1].number if len(versions) > 1 else versions[0].number))
        b = int(request.GET.get("b") or versions[0].number)
    except (ValueError, IndexError):
        raise Http404("No such versions") from None
    old, new = _version(persona, a), _version(persona, b)
    unified = request.GET.get("view") == "unified"
    return render(request, "personas/diff.html", {
        "persona": persona, "versions": versions, "old": old, "new": new, "unified": unified,
        "diffs": personas.diff_versions(old, new),
    })


@require_GET
@admin_required
def persona_export(request: HttpRequest, fmt: str) -> HttpResponse:
    if fmt not in persona_io.FORMATS:
        raise Http404("Unknown format")
    slugs = request.GET.getlist("slug")
    try:
        text = persona_io.dumps(persona_io.export_data(slugs or None), fmt)
    except persona_io.PersonaFileError:
        raise Http404("No such persona") from None
    content_type = "application/json" if fmt == "json" else "application/yaml"
    response = HttpResponse(text.encode("utf-8"), content_type=f"{content_type}; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    name = slugs[0] if len(slugs) == 1 else "personas"
    response["Content-Disposition"] = f'attachment; filename="anyhour-{name}-{stamp}.{fmt}"'
    response["Cache-Control"] = "private, no-store"
    audit(request.user, "persona.exported", ",".join(slugs) or "all", format=fmt)
    return response


@require_POST
@admin_required
def persona_import(request: HttpRequest) -> HttpResponse:
    form = ImportForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, _("Choose a persona file to import."))
        return redirect("personas:list")
    upload = form.cleaned_data["file"]
    if upload.size > 5 * 1024 * 1024:
        messages.error(request, _("The file is too large (at most 5 MB)."))
        return redirect("personas:list")
    try:
        result = persona_io.import_data(
            persona_io.loads(upload.read()), request.user, activate=form.cleaned_data["activate"]
        )
    except persona_io.PersonaFileError as error:
        messages.error(request, _("Nothing was imported: %(error)s") % {"error": error})
        return redirect("personas:list")
    if not result.changed:
        messages.info(request, _("Nothing new: every persona and version in the file is already here."))
    else:
        added = sum(len(v) for v in result.added.values())
        messages.success(request, _("Imported: %(personas)d new persona(s), %(versions)d new version(s).")
                         % {"personas": len(result.created), "versions": added})
    return redirect("personas:list")

