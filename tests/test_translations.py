"""Chinese and Russian: every English key translated, nothing a translation must keep changed, plural forms by CLDR
rules, the language chosen by the link or the browser, and a new language a content-only change."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

import content
from content import LANGS, Words, check, plural, words
from core.charts import _label_table
from core.registry import PAGES
from tests.helpers import open_page
from ui.cache import CACHE

CONTENT = Path(content.__file__).parent
FILES = [p.stem for p in sorted((CONTENT / "en").glob("*.toml"))]
TRANSLATIONS = [lang for lang in LANGS if lang != "en"]
COUNTS = (1, 2, 5, 11, 21, 101)
# names that are the same in every language: APIs (dotted too), optimizers, models, activations, dtypes
NAMES = (r"\b(?:\w+\.[\w.]+|RNN|LSTM|SGD|Adam\w*|RMSprop|Adagrad|PCGrad|MGDA|GradScaler|LayerNorm|BatchNorm\w*|linear|"
         r"tanh|relu|sigmoid|softmax|b?float\d+)\b")


@pytest.mark.parametrize("lang", TRANSLATIONS)
@pytest.mark.parametrize("name", FILES)
def test_every_english_key_is_translated_and_keeps_what_it_must(lang, name):
    """Same keys, lists of the same length, equal non-text values; the same {placeholders}, `code` and link targets."""
    errors, missing = check.problems(lang, name)
    assert errors == []
    assert missing == [], f"content/{lang}/{name}.toml lacks keys English has (they show in English)"


def _texts(node, key=""):
    if isinstance(node, dict):
        if content.is_plural(node):  # a table of plural forms
            yield key, node
            return
        for k, v in node.items():
            yield from _texts(v, f"{key}.{k}" if key else k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _texts(v, f"{key}.{i}")
    elif isinstance(node, str):
        yield key, node


def _all(lang: str):
    for name in FILES:
        path = CONTENT / lang / f"{name}.toml"
        if path.exists():
            for key, text in _texts(tomllib.loads(path.read_text(encoding="utf-8"))):
                yield name, key, text


@pytest.mark.parametrize("lang", TRANSLATIONS)
def test_translations_are_in_their_language(lang):
    """Every text of two or more English words also holds the language's own script (code and names aside)."""
    script = {"zh": r"[\u4e00-\u9fff]", "ru": r"[а-яё]"}[lang]
    untranslated = []
    for name, key, text in _all(lang):
        if isinstance(text, dict) or key.startswith("references") or key.endswith(".url"):
            continue
        prose = re.sub(r"`[^`]*`|\{[^}]*\}|\[[^\]]*\]\([^)]*\)|https?://\S+|Gradient Lab", " ", text)  # + the name
        prose = re.sub(NAMES, " ", prose)  # API, model and activation names stay as they are
        if re.search(script, prose, re.IGNORECASE):
            continue
        sentence = re.search(r"\b[A-Za-z]{2,}(?:[ ,]+[A-Za-z]{2,}){2,}\b", prose)  # three English words in a row
        label = len(re.findall(r"\b[A-Za-z]{2,}\b", prose)) >= 2 and not re.search(r"[=()^Σ∘·'+*/]", prose)
        if sentence or label:  # a formula or a line of code ("out = model(x)") is neither
            untranslated.append(f"{name}: {key}: {text[:80]}")
    assert untranslated == []


def test_russian_plural_forms_follow_cldr():
    forms = {"count": "n", "one": "{n} шаг", "few": "{n} шага", "many": "{n} шагов", "other": "{n} шага"}
    said = {n: plural("ru", n, forms).format(n=n) for n in COUNTS}
    assert said == {1: "1 шаг", 2: "2 шага", 5: "5 шагов", 11: "11 шагов", 21: "21 шаг", 101: "101 шаг"}
    assert plural("zh", 5, {"count": "n", "other": "{n} 步"}) == "{n} 步"
    assert plural("en", 1, {"count": "n", "one": "{n} step", "other": "{n} steps"}) == "{n} step"


@pytest.mark.parametrize("lang", TRANSLATIONS)
def test_every_plural_table_reads_at_every_count(lang):
    """Each text held in plural forms gives a filled sentence at 1, 2, 5, 11, 21 and 101, and has the forms its
    language needs (Russian: one, few, many)."""
    tables = [(name, key, t) for name, key, t in _all(lang) if isinstance(t, dict)]
    needed = {"ru": {"one", "few", "many", "other"}, "zh": {"other"}}[lang]
    for name, key, table in tables:
        assert needed <= set(table), (name, key)
        for n in COUNTS:
            text = Words(name, lang).text(table, {table["count"]: n})
            assert str(n) in text.format(**{table["count"]: n}), (name, key, n)


@pytest.mark.parametrize("lang", ["ru"])
def test_no_russian_count_is_written_against_a_fixed_noun_form(lang):
    """'{steps} шагов' is wrong at 1, 2, 21: a count beside a noun is a plural table, or written as 'шагов: {steps}'."""
    counts = r"(steps|n|k|depth|epochs|count|layers|micro_batches|examples|bins|b|batch_size|seq_len|micro|total)"
    wrong = [f"{name}: {key}: {text[:90]}" for name, key, text in _all(lang) if isinstance(text, str)
             for _ in re.finditer(r"\{" + counts + r"(:[^}]*)?\} (шаг|слой|слоя|слоёв|эпох|пример|микробатч|бин|батч)",
                                  text)]
    assert wrong == []


def test_a_language_of_one_key_still_renders_every_page(tmp_path, monkeypatch):
    """Adding a language is a content-only change: a folder holding a single key renders every page and home, that
    key in its language and every other word in English."""
    (tmp_path / "ru").mkdir()
    (tmp_path / "ru" / "loss_scaling.toml").write_text('title = "Один ключ"\n', encoding="utf-8")
    (tmp_path / "en").symlink_to(CONTENT / "en")
    monkeypatch.setattr("content.ROOT", tmp_path)
    content._load.cache_clear()
    _label_table.cache_clear()
    CACHE.clear()
    try:
        for info in PAGES:
            at = open_page(info.path, {"lang": "ru"})
            assert not at.exception, info.name
            expected = "Один ключ" if info.name == "loss_scaling" else words(info.name, "en")["title"]
            assert at.title[0].value == expected
            assert words(info.name, "en")["experiments"] and not any(
                "KeyError" in str(e.value) for e in at.exception)
        assert not open_page("pages/home.py", {"lang": "ru"}).exception
    finally:  # what this one-key Russian made must not outlive it: the words, the labels, the charts drawn with them
        content._load.cache_clear()
        _label_table.cache_clear()
        CACHE.clear()


@pytest.mark.parametrize("lang", TRANSLATIONS)
def test_a_page_opened_with_lang_speaks_it(lang):
    at = open_page("pages/loss_scaling.py", {"lang": lang})
    assert not at.exception
    assert at.title[0].value == words("loss_scaling", lang)["title"] != words("loss_scaling", "en")["title"]
    assert at.sidebar.selectbox[0].value == lang
    headers = [h.value for h in at.header]
    assert words("loss_scaling", lang)["experiments.update.title"] in headers


def test_a_language_the_app_lacks_is_english_with_a_note():
    at = open_page("pages/loss_scaling.py", {"lang": "xx"})
    assert not at.exception
    assert at.title[0].value == words("loss_scaling", "en")["title"]
    notes = [h.proto.body for h in at.get("html") if 'class="gl-link-notes"' in h.proto.body]
    assert notes and "lang=xx" in notes[0]


@pytest.mark.parametrize(("locale", "lang"), [("zh-CN", "zh"), ("ru_RU", "ru"), ("en-US", "en"), ("de-DE", None),
                                              ("", None), (None, None)])
def test_the_browser_locale_picks_a_language_the_app_has(locale, lang):
    assert content.language_of(locale) == lang


def test_the_language_is_the_runs_own():
    """Two threads, two languages: a Words made without a language speaks the one its thread chose."""
    import threading

    app, said = words("app"), {}

    def session(lang: str) -> None:
        content.use(lang)
        said[lang] = app["lang.label"]

    threads = [threading.Thread(target=session, args=(lang,)) for lang in LANGS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert said == {lang: words("app", lang)["lang.label"] for lang in LANGS}
    assert len(set(said.values())) == len(LANGS)


LEFT_NAMES = (r"\b(?:\w+\.[\w.]+|RNN|LSTM|GRU|SGD|Adam\w*|RMSprop|Adagrad|PCGrad|MGDA|GradScaler|LayerNorm|"
              r"BatchNorm\w*|linear|tanh|relu|sigmoid|softmax|b?float\d+|PyTorch|Gradient Lab|NaN|inf|ECE|NLL|MSE|lr|"
              r"eps|max_norm)\b")


def _english_left(text: str, script: str) -> list[str]:
    """Sentences of two or more English words with none of the language's own script (code, names, references and
    quoted library messages aside)."""
    text = re.sub(r"(?m)^>.*(?:\n(?!\n).*)*", " ", text)  # a quoted library message, as the library says it
    text = re.sub(r"\[[^\]]*\]\([^)]*\)", " ", text)  # links: a reference keeps its original title
    found = []
    for chunk in re.split(r"\n+|(?<=[.!?。；;])\s+", text):
        prose = re.sub(LEFT_NAMES, " ", re.sub(r"`[^`]*`|https?://\S+", " ", chunk))
        if not re.search(script, prose, re.IGNORECASE) and re.search(r"\b[A-Za-z]{2,}(?:[ ,]+[A-Za-z]{2,})+\b", prose):
            found.append(chunk.strip()[:120])
    return found


def _chart_words(node, key: str = ""):
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("title", "description", "text") and isinstance(v, (str, list)):
                yield from ([v] if isinstance(v, str) else [x for x in v if isinstance(x, str)])
            yield from _chart_words(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from _chart_words(v, key)


@pytest.mark.parametrize("lang", TRANSLATIONS)
@pytest.mark.parametrize("info", PAGES, ids=lambda p: p.name)
def test_a_page_in_chinese_or_russian_shows_no_english_sentence(info, lang):
    """The page as drawn (prose, readings, metrics, notes, chart titles, axes, legends and descriptions) at its
    defaults: no sentence of English words left, live values included."""
    import json

    script = {"zh": r"[\u4e00-\u9fff]", "ru": r"[а-яё]"}[lang]
    at = open_page(info.path, {"lang": lang})
    assert not at.exception
    texts = [str(e.value) for kind in ("markdown", "caption", "warning", "info", "success", "text", "title", "header")
             for e in at.get(kind)]
    texts += [f"{m.label}: {m.value}" for m in at.get("metric")]
    for chart in at.get("vega_lite_chart"):
        texts += list(_chart_words(json.loads(chart.proto.spec)))
    left = sorted({line for text in texts for line in _english_left(text, script)})
    assert left == []
