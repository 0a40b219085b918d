#!/usr/bin/env python3
"""Check the vendored browser libraries against their recorded checksums.

    python3 scripts/check_vendor.py [DIRECTORY]      (default: static/vendor)

DIRECTORY/SHA256SUMS lists every vendored file in ``sha256sum`` format. The check fails (exit
status 1, one line per problem) when a listed file is missing or its SHA-256 differs, or when a
file in the directory is not listed: vendored code changes only together with its manifest, in
a reviewed commit. README.md (documentation, not vendored code) is not listed.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

MANIFEST = "SHA256SUMS"
UNLISTED = {MANIFEST, "README.md"}
DEFAULT_DIRECTORY = Path(__file__).resolve().parent.parent / "static" / "vendor"


def problems(directory: Path) -> list[str]:
    manifest = directory / MANIFEST
    if not manifest.is_file():
        return [f"{manifest}: missing"]
    found: list[str] = []
    listed: set[str] = set()
    for number, line in enumerate(manifest.read_text().splitlines(), 1):
        if not line.strip():
            continue
        expected, _, name = line.partition("  ")
        if len(expected) != 64 or not name or "/" in name:
            found.append(f"{manifest}:{number}: not '<sha256>  <file name>'")
            continue
        listed.add(name)
        path = directory / name
        if not path.is_file():
            found.append(f"{name}: listed in {MANIFEST} but missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != expected:
            found.append(f"{name}: SHA-256 differs from {MANIFEST}")
    for path in sorted(directory.iterdir()):
        if path.is_file() and path.name not in listed | UNLISTED:
            found.append(f"{path.name}: not listed in {MANIFEST}")
    return found


def main(argv: list[str]) -> int:
    directory = Path(argv[1]) if len(argv) > 1 else DEFAULT_DIRECTORY
    found = problems(directory)
    for problem in found:
        print(f"check_vendor: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
