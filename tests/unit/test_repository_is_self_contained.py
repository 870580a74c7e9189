"""A fresh clone has everything it needs: nothing under src/, tests/, benchmarks/ (nor the CI
scripts) reaches for the project's ``shared`` folder beside the repository, and the files the
README and the tests rely on are in the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("src", "tests", "benchmarks", "scripts", ".ci")
SUFFIXES = {".py", ".sh", ".toml", ".ini", ".cfg", ".json", ".md", ".txt", ""}

# the shared folder by a relative or absolute path, as a path segment joined with "/", or as
# the start of a relative path; the samples below are assembled from pieces, so this file
# holds no such path itself
OUTSIDE = re.compile(
    r"""(\.\./|/work/)shared\b|/\s*["']shared["']|["']shared["']\s*/|["']shared/[\w.]"""
)


def scanned_files() -> list[Path]:
    files = []
    for top in SCANNED:
        for path in (ROOT / top).rglob("*"):
            if not path.is_file() or path.suffix not in SUFFIXES:
                continue
            if any(
                part in {".venv", "__pycache__", ".git"} or part.endswith(".egg-info")
                for part in path.relative_to(ROOT).parts
            ):
                continue
            files.append(path)
    return files


def test_the_pattern_catches_the_old_read_of_the_shared_folder() -> None:
    folder = "sha" + "red"
    old = f'EXAMPLES = Path(__file__).resolve().parents[2] / "{folder}" / "examples"'
    assert OUTSIDE.search(old)
    assert OUTSIDE.search(f'open("../{folder}/examples/directory.json")')
    assert OUTSIDE.search(f"/work/{folder}/SPEC.md")
    assert not OUTSIDE.search("a shared lock; shared_key = 1")


def test_no_file_reads_the_shared_folder_outside_the_repository() -> None:
    files = scanned_files()
    assert len(files) > 50  # the scan saw the tree
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {text.strip()}"
        for path in files
        if path != Path(__file__).resolve()
        for number, text in enumerate(
            path.read_text(encoding="utf-8", errors="replace").splitlines(), 1
        )
        if OUTSIDE.search(text)
    ]
    assert offenders == []


def test_the_documents_the_readme_cites_are_in_the_repository() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("docs/assignment.md", "docs/examples/directory.json", "LICENSE", "CHANGELOG.md"):
        assert (ROOT / name).is_file(), name
    assert "docs/assignment.md" in readme
    assert "SPEC §2" not in readme  # the rules are cited from the repository, not an outside spec
