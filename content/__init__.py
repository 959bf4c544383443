"""The words of Gradient Lab, looked up by key from content/<lang>/<page>.toml.

Pages never hold prose: they ask for it by dotted key ("experiments.update.reading") and fill in
live numbers with str.format. Adding a language is adding a folder (and a line to LANGS): a key missing
there falls back to English, and a key missing in English is a KeyError that names the file.

The reader's language belongs to the session: the entry script calls use(lang) at the start of each run, in
the run's own thread, and every Words made without a language (the module-level ones of ui/ included) speaks
the current one. A text may come in plural forms, a table `{count = "n", one = "...", few = "...", many = "...",
other = "..."}`: the form is chosen for the value of the placeholder named by count, by the language's CLDR
rules (Babel).
"""

from __future__ import annotations

import functools
import threading
import tomllib
from pathlib import Path
from typing import Any

from babel import Locale

ROOT = Path(__file__).parent
DEFAULT_LANG = "en"
LANGS = {"en": "English", "zh": "中文", "ru": "Русский"}  # each in its own words, as the language control lists them
PLURAL_FORMS = ("zero", "one", "two", "few", "many", "other")
_session = threading.local()


def use(lang: str | None) -> str:
    """Make lang the language of this thread's run (an unknown one: English); returns the language in use."""
    _session.lang = lang if lang in LANGS else DEFAULT_LANG
    return _session.lang


def current() -> str:
    """The language of this thread's run: English where no run has chosen one (the export, a worker, a test)."""
    return getattr(_session, "lang", DEFAULT_LANG)


def language_of(locale: str | None) -> str | None:
    """The app's language for a browser locale ("zh-CN", "ru_RU", "en"), or None when the app has none for it."""
    if not locale:
        return None
    code = str(locale).replace("_", "-").split("-")[0].lower()
    return code if code in LANGS else None


def is_plural(value: Any) -> bool:
    """A table of plural forms: the placeholder it counts by, and at least the form "other" (CLDR's catch-all)."""
    return isinstance(value, dict) and isinstance(value.get("count"), str) and isinstance(value.get("other"), str)


@functools.cache
def _plural_rule(lang: str):
    return Locale.parse(lang).plural_form


def plural(lang: str, count: Any, forms: dict[str, str]) -> str:
    """The form of forms for count in lang (CLDR: ru has one, few, many; zh has only other)."""
    try:
        category = _plural_rule(lang)(abs(count))
    except (TypeError, ValueError):
        category = "other"
    return forms.get(category) or forms["other"]


@functools.cache
def _load(page: str, lang: str) -> dict[str, Any]:
    path = ROOT / lang / f"{page}.toml"
    return tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _dig(tree: dict[str, Any], key: str) -> Any:
    node: Any = tree
    for part in key.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]  # "predict.why.2": a list's item
    return node


class Words:
    """One page's words in one language (None: the run's, see use()), with English as the fallback."""

    def __init__(self, page: str, lang: str | None = None):
        self.page, self.fixed = page, lang

    @property
    def lang(self) -> str:
        return self.fixed or current()

    def get(self, key: str, default: Any = None) -> Any:
        for lang in dict.fromkeys((self.lang, DEFAULT_LANG)):
            try:
                return _dig(_load(self.page, lang), key)
            except (KeyError, TypeError, IndexError, ValueError):
                continue
        return default

    def __getitem__(self, key: str) -> Any:
        value = self.get(key)
        if value is None:
            raise KeyError(f"content/{DEFAULT_LANG}/{self.page}.toml has no key {key!r}")
        return value

    def __call__(self, key: str, /, **values: Any) -> str:
        """The text at key with live numbers filled in: words("reading", ratio=0.1); plural forms chosen by count."""
        return self.text(self[key], values).format(**values)

    def text(self, value: Any, values: dict[str, Any]) -> str:
        """A text, or the right plural form of a table of forms for the count among values."""
        if is_plural(value):
            return plural(self.lang, values.get(value["count"]), value)
        return value


def words(page: str, lang: str | None = None) -> Words:
    return Words(page, lang)
