"""Checks a language folder against English: `python -m content.check zh` (exit 1 and a list on any problem).

For every content/en/<file>.toml that content/<lang>/ holds: the same keys (a missing key falls back to English and
is listed; an extra key is an error), lists of the same length, non-text values (predict.answer, say) equal, and in
every text the same {placeholders}, the same `code spans` and the same link targets as the English.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Any

from content import is_plural

ROOT = Path(__file__).parent
PLACEHOLDER = re.compile(r"(?<!\{)\{([^{}]*)\}(?!\})")
CODE = re.compile(r"`([^`]+)`")
LINK = re.compile(r"\]\(([^)]+)\)")
# Placeholders a translation may leave out, by file and key: the English names a legend by its field id ("one
# series per run"), a word that other languages cannot show untranslated.
OPTIONAL = {"app": {"describe.series_plain": {"field"}}}


def _leaves(tree: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if is_plural(tree):  # a text in plural forms is one text
        out[prefix] = tree
    elif isinstance(tree, dict):
        for key, value in tree.items():
            out |= _leaves(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(tree, list):
        out[prefix + "#len"] = len(tree)
        for i, value in enumerate(tree):
            out |= _leaves(value, f"{prefix}.{i}")
    else:
        out[prefix] = tree
    return out


def parts(text: str) -> dict[str, list[str]]:
    """What must survive a translation unchanged: placeholders, code spans, link targets."""
    return {"placeholders": sorted(PLACEHOLDER.findall(text)), "code": sorted(CODE.findall(text)),
            "links": sorted(LINK.findall(text))}


def problems(lang: str, name: str) -> tuple[list[str], list[str]]:
    """(errors, missing keys) of content/<lang>/<name>.toml against English."""
    english = _leaves(tomllib.loads((ROOT / "en" / f"{name}.toml").read_text(encoding="utf-8")))
    path = ROOT / lang / f"{name}.toml"
    if not path.exists():
        return [], sorted(english)
    theirs = _leaves(tomllib.loads(path.read_text(encoding="utf-8")))
    errors = [f"{name}: extra key {key!r}" for key in sorted(set(theirs) - set(english))]
    missing = [f"{name}: {key}" for key in sorted(set(english) - set(theirs))]
    for key in sorted(set(english) & set(theirs)):
        en, other = english[key], theirs[key]
        if isinstance(en, str) and is_plural(other):  # each plural form keeps what the English text has
            forms = {form: text for form, text in other.items() if form != "count"}
            other = "".join(sorted(set(forms.values()), key=len)[-1:])  # checked below as the longest form
            errors += [f"{name}: {key}: plural form {form!r} differs from the others in its placeholders"
                       for form, text in forms.items() if parts(text) != parts(other)]
        if isinstance(en, str) and isinstance(other, str):
            a, b = parts(en), parts(other)
            optional = OPTIONAL.get(name, {}).get(key, set())
            a["placeholders"] = [p for p in a["placeholders"] if p not in optional or p in b["placeholders"]]
            for what in a:
                if a[what] != b[what]:
                    errors.append(f"{name}: {key}: {what} {a[what]} in English, {b[what]} here")
        elif en != other:
            errors.append(f"{name}: {key}: {other!r} where English has {en!r}")
    return errors, missing


def main(argv: list[str]) -> int:
    lang = argv[0] if argv else "zh"
    names = [p.stem for p in sorted((ROOT / "en").glob("*.toml"))]
    errors, missing = [], []
    for name in names:
        e, m = problems(lang, name)
        errors += e
        missing += m if (ROOT / lang / f"{name}.toml").exists() else []
    for line in errors + [f"missing (English shows): {m}" for m in missing]:
        print(line)
    print(f"{lang}: {len(errors)} errors, {len(missing)} missing keys in the files it has")
    return 1 if errors or missing else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
