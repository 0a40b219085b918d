"""Static files: the vendored libraries are the recorded ones, and collected ES modules import
each other under hashed names (as the pages load them: immutable caching, no mixed versions)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "static" / "vendor"
# The specifier of every static import and re-export: `import ... from "x"`, `export ... from "x"`, `import "x"`.
SPECIFIER = re.compile(r"""^(?:import|export)\s+(?:[\w*{}\s,$]+?\s+from\s+)?['"]([^'"]+)['"]""", re.MULTILINE)
HASHED = re.compile(r"\.[0-9a-f]{12}\.js$")


def check_vendor(directory: Path) -> subprocess.CompletedProcess[str]:
    # The same command `make lint` runs.
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "check_vendor.py"), str(directory)],
                          capture_output=True, text=True, timeout=30, check=False)


def test_vendored_files_match_their_recorded_checksums():
    result = check_vendor(VENDOR)
    assert result.returncode == 0, result.stderr


def test_a_changed_missing_or_unlisted_vendored_file_fails_the_check(tmp_path):
    copy = tmp_path / "vendor"
    shutil.copytree(VENDOR, copy)
    with open(copy / "purify.min.js", "a") as handle:
        handle.write("\nwindow.leak = 1;\n")
    (copy / "marked.umd.js.map").unlink()
    (copy / "extra.js").write_text("// dropped in by hand\n")
    result = check_vendor(copy)
    assert result.returncode == 1
    assert set(result.stderr.splitlines()) == {
        "check_vendor: purify.min.js: SHA-256 differs from SHA256SUMS",
        "check_vendor: marked.umd.js.map: listed in SHA256SUMS but missing",
        "check_vendor: extra.js: not listed in SHA256SUMS",
    }


def module_sources() -> list[Path]:
    """Our ES modules (everything under static/ but the vendored and the embed loader's classic scripts)."""
    classic = {VENDOR / "marked.umd.js", VENDOR / "purify.min.js", ROOT / "static" / "widget" / "anyhour-widget.js"}
    return [path for path in sorted((ROOT / "static").rglob("*.js")) if path not in classic]


def test_collected_modules_import_hashed_names_that_exist():
    # conftest.py has run collectstatic for this session, with the production storage.
    from django.contrib.staticfiles.storage import staticfiles_storage

    static_root = Path(settings.STATIC_ROOT)
    imports = 0
    for source in module_sources():
        name = source.relative_to(ROOT / "static").as_posix()
        collected = static_root / staticfiles_storage.stored_name(name)
        assert HASHED.search(collected.name), name
        written = SPECIFIER.findall(source.read_text())
        served = SPECIFIER.findall(collected.read_text())
        assert len(served) == len(written), name
        for specifier in served:
            assert HASHED.search(specifier), f"{name} imports {specifier} under its unhashed name"
            assert (collected.parent / specifier).resolve().is_file(), f"{name} imports missing {specifier}"
        imports += len(served)
    assert imports >= 20  # the chat page alone imports a dozen modules
