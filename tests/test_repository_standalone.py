"""The repository stands alone: every document it cites is in it, and no file points at a path of
the machine it was built on.

Checks over the tracked text files (`git ls-files`; binary files and .gz skipped):
- no citation of the design notes that were never part of the repository (their facts live in
  docs/OBJECTIVES.md, docs/DATASETS.md, docs/GENERATED_DATA.md and docs/RUNTIME_NOTES.md);
- every `*.md` name mentioned in code, configs, scripts and docs is the name of a tracked file,
  and every relative `dir/NAME.md` path is one (from the root or from the citing file's folder);
- every "NAME.md §N" citation points at a doc with a heading for §N;
- no absolute path of the machine it was built on and no path that leaves the checkout.
"""

from __future__ import annotations

import posixpath
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SELF = Path(__file__).resolve().relative_to(ROOT).as_posix()

# Where a doc name may be cited: code, configs, scripts, docs.
CITING_SUFFIXES = (".py", ".md", ".yaml", ".yml", ".sh", ".toml")
CITING_NAMES = ("Makefile",)

# The design notes the project was built from; they were never in the repository. Their names
# are assembled here (not spelled out) so that this file does not cite them either.
EXTERNAL_NAMES = ("METH" + "OD", "PLAT" + "FORM", "SYNTH" + "ETIC", "DA" + "TA")
EXTERNAL_DOCS = (re.compile(r"(?<!\w)(?:" + "|".join(EXTERNAL_NAMES) + r")\.md"),)
URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+")
MD_NAME = re.compile(r"(?<![\w.-])([\w-]+\.md)(?![\w-])")
MD_PATH = re.compile(r"(?<![\w./-])((?:[\w.-]+/)+[\w-]+\.md)(?![\w-])")
SECTION_CITE = re.compile(r"(?<![\w.-])([\w-]+\.md),? §(\d+)")
MACHINE_PATHS = (
    re.compile(r"(?<![\w.])/work/[\w.-]"),
    re.compile(r"\.\./shared\b"),
)


@cache
def tracked_text_files() -> dict[str, str]:
    """Path (relative to the root) -> text of every tracked text file, this test excluded."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    files = {}
    for name in listed.decode().split("\0"):
        path = ROOT / name
        if not name or name == SELF or name.endswith(".gz") or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data:
            continue
        try:
            files[name] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
    return files


def citing_files() -> dict[str, str]:
    return {
        name: text
        for name, text in tracked_text_files().items()
        if name.endswith(CITING_SUFFIXES) or Path(name).name in CITING_NAMES
    }


def hits(files: dict[str, str], pattern: re.Pattern[str]) -> list[tuple[str, int, re.Match[str]]]:
    """(path, line number, match) for every match of `pattern`, URLs left out."""
    return [
        (name, lineno, match)
        for name, text in files.items()
        for lineno, line in enumerate(text.splitlines(), 1)
        for match in pattern.finditer(URL.sub("", line))
    ]


def report(found: list[tuple[str, int, re.Match[str]]]) -> str:
    return "\n".join(f"{name}:{lineno}: {match.group(0)}" for name, lineno, match in found)


def test_the_scan_sees_the_repository() -> None:
    files = tracked_text_files()
    assert "README.md" in files and "docs/OBJECTIVES.md" in files
    assert any(name.endswith(".py") for name in citing_files())


def test_no_citation_of_documents_outside_the_repository() -> None:
    found = [hit for pattern in EXTERNAL_DOCS for hit in hits(tracked_text_files(), pattern)]
    assert not found, "cites design notes that are not in the repository:\n" + report(found)


def test_every_cited_markdown_name_is_a_file_of_the_repository() -> None:
    names = {Path(name).name for name in tracked_text_files() if name.endswith(".md")}
    missing = [hit for hit in hits(citing_files(), MD_NAME) if hit[2].group(1) not in names]
    assert not missing, "cites documents the repository lacks:\n" + report(missing)


def test_every_cited_markdown_path_resolves() -> None:
    tracked = set(tracked_text_files()) | {SELF}

    def resolves(citing: str, cited: str) -> bool:
        from_folder = posixpath.normpath(posixpath.join(posixpath.dirname(citing), cited))
        return posixpath.normpath(cited) in tracked or from_folder in tracked

    missing = [
        hit for hit in hits(citing_files(), MD_PATH) if not resolves(hit[0], hit[2].group(1))
    ]
    assert not missing, "cites paths that do not exist:\n" + report(missing)


def test_every_cited_section_exists() -> None:
    docs = {Path(name).name: text for name, text in tracked_text_files().items()}

    def has_section(doc: str, section: str) -> bool:
        heading = re.compile(rf"^#+ §{section}(?!\d)", re.MULTILINE)
        return doc in docs and heading.search(docs[doc]) is not None

    missing = [
        hit for hit in hits(citing_files(), SECTION_CITE) if not has_section(*hit[2].groups())
    ]
    assert not missing, "cites sections that do not exist:\n" + report(missing)


def test_no_machine_paths() -> None:
    found = [hit for pattern in MACHINE_PATHS for hit in hits(tracked_text_files(), pattern)]
    assert not found, "absolute machine paths in tracked files:\n" + report(found)


@pytest.mark.parametrize(
    ("text", "external"),
    [
        *((f"see reference {name}.md §2", True) for name in EXTERNAL_NAMES),
        (f"({EXTERNAL_NAMES[1]}.md)", True),
        (f"notes/{EXTERNAL_NAMES[3]}.md", True),
        ("docs/DATASETS.md §5", False),
        ("docs/GENERATED_DATA.md", False),
        ("docs/RUNTIME_NOTES.md §1", False),
    ],
)
def test_the_external_citation_patterns(text: str, external: bool) -> None:
    assert any(p.search(text) for p in EXTERNAL_DOCS) is external


def test_the_path_patterns() -> None:
    assert MD_NAME.findall("see docs/OBJECTIVES.md §2 and [x](FAULTS.md#top)") == [
        "OBJECTIVES.md",
        "FAULTS.md",
    ]
    assert MD_PATH.findall("see docs/OBJECTIVES.md and BENCHMARKS.md") == ["docs/OBJECTIVES.md"]
    assert SECTION_CITE.findall("docs/OBJECTIVES.md §2, [DATASETS.md §5](DATASETS.md)") == [
        ("OBJECTIVES.md", "2"),
        ("DATASETS.md", "5"),
    ]
    assert any(p.search('out_dir="/work/project/x"') for p in MACHINE_PATHS)
    assert any(p.search("cat ../shared/notes") for p in MACHINE_PATHS)
    assert not any(p.search('assert "/work/" not in text') for p in MACHINE_PATHS)
