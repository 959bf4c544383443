"""The words: every page has every part of the template, every control a label, in valid TOML."""

from __future__ import annotations

import string
import tomllib

import pytest

from content import ROOT as CONTENT
from content import Words, words
from core.registry import PAGES

TEMPLATE_KEYS = ("title", "question", "short_answer", "takeaways", "predict.prompt", "predict.options",
                 "predict.answer", "misconceptions", "references")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_template_part_is_written(page):
    w = words(page.name)
    for key in TEMPLATE_KEYS:
        assert w.get(key) not in (None, "", []), f"{page.name}: {key}"
    assert 0 <= w["predict.answer"] < len(w["predict.options"])
    for item in w["misconceptions"]:
        assert item["claim"] and item["evidence"]
    for ref in w["references"]:
        assert ref["url"].startswith("https://")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_control_has_a_label(page):
    w = words(page.name)
    for control in page.core.CONTROLS:
        assert w.get(f"controls.{control.key}.label"), f"{page.name}: controls.{control.key}.label"


def test_missing_key_names_the_file():
    with pytest.raises(KeyError, match="content/en/loss_scaling.toml has no key 'nope'"):
        words("loss_scaling")["nope"]


def test_another_language_falls_back_to_english_key_by_key(tmp_path, monkeypatch):
    (tmp_path / "xx").mkdir()
    (tmp_path / "xx" / "loss_scaling.toml").write_text('title = "Масштаб потерь"\n', encoding="utf-8")
    (tmp_path / "en").symlink_to(CONTENT / "en")
    monkeypatch.setattr("content.ROOT", tmp_path)
    w = Words("loss_scaling", "xx")
    assert w["title"] == "Масштаб потерь"
    assert w["question"] == words("loss_scaling")["question"]


def _templates(node, key=""):
    """(key, text) of every string the pages fill with live numbers: readings, evidence, short answers."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _templates(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from _templates(v, key)
    elif isinstance(node, str) and key in ("reading", "evidence", "short_answer"):
        yield key, node


def test_templates_name_only_fields_they_are_given():
    """Every {field} in a template is a Python identifier: a typo shows as a KeyError in the AppTest run."""
    for path in (CONTENT / "en").glob("*.toml"):
        for key, text in _templates(tomllib.loads(path.read_text(encoding="utf-8"))):
            for _, field, _, _ in string.Formatter().parse(text):
                if field:
                    assert field.split(".")[0].split("[")[0].isidentifier(), (path.name, key, field)
