"""Every rule code the code cites is stated in docs/rules.md, and no citation points outside the repo.

Codes: R1-R12 and D1-D14 (cited bare, `R10`), P1-P7 and S1-S16 (cited as `rules.md P2` or `rules S6`).
Each must be a `### CODE title` heading of docs/rules.md. The rules' source documents are not in
the repository: citing them (PRODUCT.md, SEMANTICS.md, STYLE.md) is refused everywhere users and
engineers look.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "docs" / "rules.md"
HEADING = re.compile(r"^### ([RDPS]\d+) \S", re.MULTILINE)
BARE = re.compile(r"(?<![\w/.#-])([RD](?:[1-9]|1[0-9]))(?![\w-])")
PREFIXED = re.compile(r"rules(?:\.md)?(?: §| )([PS]\d+)")
OUTSIDE = re.compile(r"\b(?:PRODUCT|SEMANTICS|STYLE)\.md\b|\bPRODUCT §|\bSEMANTICS R")


def stated() -> set[str]:
    return set(HEADING.findall(RULES.read_text()))


def cited(text: str) -> set[str]:
    return set(BARE.findall(text)) | set(PREFIXED.findall(text))


def sources(*roots: str, suffixes: tuple[str, ...] = (".py",)) -> list[Path]:
    """Files to scan: this test names the codes and documents it checks for, so it is left out."""
    return sorted(
        p
        for root in roots
        for p in (REPO / root).rglob("*")
        if p.suffix in suffixes and "static" not in p.parts and "node_modules" not in p.parts and p != Path(__file__)
    )


def test_every_rule_code_cited_in_the_code_is_stated() -> None:
    missing = {
        f"{p.relative_to(REPO)}: {code}"
        for p in sources("myapp", "tests")
        for code in cited(p.read_text())
        if code not in stated()
    }
    assert not missing, sorted(missing)


def test_every_rule_code_cited_in_the_docs_is_stated() -> None:
    docs = [*sources("docs", suffixes=(".md",)), REPO / "README.md"]
    missing = {f"{p.relative_to(REPO)}: {code}" for p in docs for code in cited(p.read_text()) if code not in stated()}
    assert not missing, sorted(missing)


def test_no_citation_points_outside_the_repository() -> None:
    roots = [
        *sources("myapp", "tests", "benchmarks", "scripts"),
        *sources("docs", suffixes=(".md",)),
        REPO / "README.md",
        REPO / "config" / "myapp.yaml",
    ]
    found = [f"{p.relative_to(REPO)}: {m.group(0)}" for p in roots for m in OUTSIDE.finditer(p.read_text())]
    assert not found, found


def test_every_rule_is_stated_once_with_its_code_and_tests() -> None:
    text = RULES.read_text()
    codes = HEADING.findall(text)
    assert len(codes) == len(set(codes)), "a rule stated twice"
    expected = (
        {f"R{n}" for n in range(1, 16)}
        | {f"D{n}" for n in range(1, 15)} - {"D3"}
        | {f"P{n}" for n in range(1, 8)}
        | {f"S{n}" for n in range(1, 17)}
    )
    assert set(codes) == expected
    sections = re.split(r"^### ", text, flags=re.MULTILINE)[1:]
    for section in sections:
        code = section.split()[0]
        if code[0] in "RD":  # the semantics: each names where it is implemented and tested
            assert "Code:" in section and "Tests:" in section, code
            for path in re.findall(r"`((?:myapp|tests|benchmarks)/[\w/.]+?)(?:::\w+)?`", section):
                assert (REPO / path.rstrip("/")).exists() or list(REPO.glob(path)), f"{code}: {path} does not exist"


def test_the_checks_see_what_they_look_for() -> None:
    assert cited("see R10 and D8; rules.md P2, rules S6") == {"R10", "D8", "P2", "S6"}
    assert cited("R100 D99 x/R2 HR3 sR4 R5-like") == set()
    assert OUTSIDE.search("as PRODUCT.md §2 says") and OUTSIDE.search("SEMANTICS R12")
    assert not OUTSIDE.search("PRODUCT_TIMING MYAPP_PRODUCTION")
