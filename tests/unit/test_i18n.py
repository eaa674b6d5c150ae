"""Every string the pages show is in both tables of myapp/web/frontend/src/i18n.ts (English, Chinese).

Fails on: a key missing from (or empty in) the Chinese table; a `t("key")` the English table lacks;
a state, trigger, sort or template category a page shows by a computed key (`state_${s}`) with
no string; English words written straight into the JSX instead of going through `t()`.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from myapp.core.states import RunState, TaskState, Trigger
from myapp.db.pipeline_views import SORTS

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "myapp" / "web" / "frontend" / "src"
SOURCES = sorted(p for p in SRC.rglob("*.ts*") if p.name != "i18n.ts")
# Words that are the same in every language: product and protocol names, column codes.
SAME_IN_EVERY_LANGUAGE = {"ID", "YAML", "JSON", "README", "PID", "CPU", "GPU"}
NAMES = {"myapp_line", "category_kubernetes"}  # keys whose string is a product name in both languages


def table(name: str) -> dict[str, str]:
    text = (SRC / "i18n.ts").read_text(encoding="utf-8")
    start = re.search(rf"const {name}[^=]*= {{\n", text)
    assert start is not None, f"no table {name} in i18n.ts"
    body = text[start.end() : text.index("\n};", start.end())]
    pairs = re.findall(r'(?:^|[,{\s])("?[\w-]+"?):\s*("(?:[^"\\]|\\.)*")', body, re.M)
    return {key.strip('"'): value[1:-1] for key, value in pairs}


def test_the_chinese_table_has_every_english_key_translated() -> None:
    en, zh = table("en"), table("zh")
    assert len(en) > 300
    assert sorted(set(en) - set(zh)) == [], "keys without a Chinese string"
    assert sorted(set(zh) - set(en)) == [], "Chinese strings of keys English does not have"
    assert [k for k, v in zh.items() if not v.strip()] == []
    same = [k for k, v in zh.items() if v == en[k] and re.search(r"[a-z]{4,}", v) and "{" not in v and k not in NAMES]
    assert same == [], f"Chinese strings left in English: {same}"


def test_every_key_the_pages_use_exists() -> None:
    en = table("en")
    used = {key for path in SOURCES for key in re.findall(r"\bt\(\s*\"([\w-]+)\"", path.read_text(encoding="utf-8"))}
    assert used, 'no t("key") call found: the scan is broken'
    assert sorted(used - set(en)) == []


def test_keys_computed_from_states_triggers_sorts_and_categories_exist() -> None:
    en = table("en")
    states = {s.value for s in RunState} | {s.value for s in TaskState} | {"waiting", "launched", "expired"}
    wanted = {f"state_{s}" for s in states} | {f"trigger_{t.value}" for t in Trigger}
    pipelines_page = (SRC / "pages" / "Pipelines.tsx").read_text(encoding="utf-8")
    page_sorts = re.search(r"const SORTS = \[(.*?)\]", pipelines_page)
    assert page_sorts is not None
    sorts = re.findall(r'"([\w-]+)"', page_sorts.group(1))
    assert set(sorts) <= set(SORTS)
    wanted |= {f"sort_{s}" for s in sorts}
    categories = {yaml.safe_load(p.read_text())["category"] for p in (REPO / "plugins").glob("*/template.yaml")}
    wanted |= {f"category_{c}" for c in categories}
    assert sorted(wanted - set(en)) == []


def test_no_english_words_are_written_into_the_jsx() -> None:
    found = []
    for path in SOURCES:
        if path.suffix != ".tsx":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for text in re.findall(r"(?<![=-])>\s*([A-Za-z][A-Za-z ,.'!?:-]*[A-Za-z.!?])\s*<", line):
                if text not in SAME_IN_EVERY_LANGUAGE:
                    found.append(f"{path.relative_to(SRC)}:{number}: {text}")
            for attr in re.findall(r'\b(?:placeholder|title|aria-label|label)="([^"{]*[a-z]{3,}[^"]*)"', line):
                if "&#10;" not in attr and (not re.fullmatch(r"[\w/:. &;#-]*", attr) or " " in attr.strip()):
                    found.append(f"{path.relative_to(SRC)}:{number}: {attr}")
    assert found == []
