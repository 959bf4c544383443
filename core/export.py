"""Figures and handouts for teaching material, without a browser and without Streamlit.

    python -m core.export --out figures/                     every figure of every page, defaults and presets
    python -m core.export --out f/ --pages loss_scaling --presets adam_eps_dominates --formats svg,csv
    python -m core.export --handout --out handouts/          one self-contained HTML file per page

For each figure and setting it writes <page>/<preset>/<figure>.{png,svg,csv,json}: a PNG at twice the
pixel density and an SVG rendered offline by vl-convert, the charted data as CSV, and a JSON with the
settings, the seed and the versions that reproduce it. It draws with the very FIGURES registry the pages
draw with (core/figures.py), so the page and the export cannot disagree.
"""

from __future__ import annotations

import argparse
import copy
import html
import json
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

import content
import core
from content import DEFAULT_LANG, LANGS, words
from core.controls import preset_settings
from core.figures import registry
from core.figures import spec as figure_spec
from core.registry import PAGES
from core.registry import page as page_info

# Latin, Cyrillic and Chinese: the handout's text in any of the app's languages, with the fonts a reader is likely to
# have (Debian's fonts-noto-cjk provides Noto Sans CJK)
FONT_STACK = ('system-ui,-apple-system,"Segoe UI","Noto Sans","Noto Sans CJK SC","Source Han Sans SC","PingFang SC",'
              '"Microsoft YaHei",sans-serif')

DEFAULT = "default"  # the folder name of the default settings, beside the presets
FORMATS = ("png", "svg", "csv", "json")
WIDTH = 720  # pixels: the page's charts take their column's width, a figure file needs a number


def settings_for(page: str, preset: str | None, seed: int = 0) -> dict[str, Any]:
    """Every control of the page at a preset (None: the defaults), plus the seed."""
    module = page_info(page).core
    return {**preset_settings(module.CONTROLS, getattr(module, "PRESETS", {}), preset), "seed": seed}


def fixed_size(spec: dict, width: int = WIDTH) -> dict:
    """The spec with its container-relative width replaced by a number, for an offline renderer."""
    spec = copy.deepcopy(spec)
    if spec.get("width") in (None, "container"):
        spec["width"] = width
    spec.setdefault("autosize", {"type": "fit", "contains": "padding"})
    return spec


def to_svg(spec: dict) -> str:
    import vl_convert

    return vl_convert.vegalite_to_svg(fixed_size(spec))


def to_png(spec: dict, scale: float = 2.0) -> bytes:
    import vl_convert

    return vl_convert.vegalite_to_png(fixed_size(spec), scale=scale)


def provenance(page: str, figure: str, preset: str | None, settings: dict) -> dict:
    return {
        "page": page, "figure": figure, "preset": preset or DEFAULT, "settings": settings, "seed": settings["seed"],
        "versions": {"gradient_lab": core.__version__, "torch": torch.__version__},
        "reproduce": f"python -m core.export --pages {page} --presets {preset or DEFAULT} --out DIR",
    }


def write_figure(out: Path, page: str, name: str, preset: str | None, settings: dict, formats: Iterable[str]) -> None:
    df, spec = figure_spec(page, name, settings)
    folder = out / page / (preset or DEFAULT)
    folder.mkdir(parents=True, exist_ok=True)
    formats = set(formats)
    if "csv" in formats:
        df.to_csv(folder / f"{name}.csv", index=False, lineterminator="\n")
    if "svg" in formats:
        (folder / f"{name}.svg").write_text(to_svg(spec), encoding="utf-8")
    if "png" in formats:
        (folder / f"{name}.png").write_bytes(to_png(spec))
    if "json" in formats:
        record = provenance(page, name, preset, settings)
        (folder / f"{name}.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def plan(pages: Sequence[str] | None, presets: Sequence[str] | None) -> list[tuple[str, str | None]]:
    """(page, preset) pairs to export; unknown names are a ValueError listing the valid ones."""
    names = [p.name for p in PAGES]
    for name in pages or ():
        if name not in names:
            raise ValueError(f"unknown page {name!r}; valid: {', '.join(names)}")
    jobs, valid_any = [], [DEFAULT]
    for name in pages or names:
        valid = (DEFAULT, *getattr(page_info(name).core, "PRESETS", {}))
        valid_any += [p for p in valid if p not in valid_any]
        jobs += [(name, None if p == DEFAULT else p) for p in (presets or valid) if p in valid]
    if unknown := [p for p in presets or () if p not in valid_any]:
        raise ValueError(f"unknown preset {', '.join(unknown)}; valid: {', '.join(valid_any)}")
    return jobs


def progress(done: int, total: int, label: str, started: float) -> None:
    width = 30
    filled = int(width * done / total)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {time.monotonic() - started:5.1f}s "
                     f"{label[:48]:<48}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def export(out: Path, pages=None, presets=None, formats: Iterable[str] = FORMATS, seed: int = 0) -> int:
    """Write every chosen figure; returns how many figures were written."""
    jobs = [(page, preset, name) for page, preset in plan(pages, presets) for name in registry(page)]
    started = time.monotonic()
    for i, (page, preset, name) in enumerate(jobs, start=1):
        write_figure(out, page, name, preset, settings_for(page, preset, seed), formats)
        progress(i, len(jobs), f"{page}/{preset or DEFAULT}/{name}", started)
    return len(jobs)


def handout(out: Path, page: str, seed: int = 0, lang: str = DEFAULT_LANG) -> Path:
    """One self-contained HTML file: the page's words (in lang) and its charts as live Vega-Lite, JavaScript bundled.

    The file declares its language and a font stack that covers Latin, Cyrillic and Chinese; a handout in another
    language than English is written as <page>.<lang>.html beside the English one.
    """
    import vl_convert

    w, app = words(page, lang), words("app", lang)
    settings = settings_for(page, None, seed)
    figures = registry(page)
    placed: dict[str, list[str]] = {}
    for name, figure in figures.items():
        placed.setdefault(figure.experiment, []).append(name)
    specs, parts = [], [f"<h1>{html.escape(w['title'])}</h1>", f"<blockquote>{_md(w['question'])}</blockquote>",
                        f"<p><strong>{html.escape(app['predict.short_answer'])}</strong> {_md(w['short_answer'])}</p>"]

    def charts(names: list[str]) -> None:
        for name in names:
            specs.append(fixed_size(figure_spec(page, name, settings)[1]))
            parts.append(f'<div class="chart" id="chart{len(specs) - 1}"></div>')

    readers = getattr(page_info(page).core, "READINGS", {})
    for key, experiment in (w.get("experiments") or {}).items():
        if "title" in experiment:
            parts.append(f"<h2>{html.escape(experiment['title'])}</h2>")
        if "intro" in experiment:
            parts.append(f"<p>{_md(experiment['intro'])}</p>")
        charts(placed.pop(key, []))
        if key in readers:
            parts.append(readout_html(w, readers[key](settings)))
    charts([name for names in placed.values() for name in names])
    parts.append(f"<h2>{html.escape(app['takeaways.title'])}</h2><ul>"
                 + "".join(f"<li>{_md(t)}</li>" for t in w["takeaways"]) + "</ul>")
    parts.append(f"<h2>{html.escape(app['takeaways.references'])}</h2><ul>" + "".join(
        f'<li><a href="{html.escape(r["url"])}">{html.escape(r["title"])}</a></li>' for r in w["references"]) + "</ul>")
    parts.append(f"<p class=\"small\">Gradient Lab {core.__version__}, torch {torch.__version__}, seed {seed}, "
                 "default settings.</p>")
    script = vl_convert.javascript_bundle()
    embeds = "".join(f"vegaEmbed('#chart{i}', {json.dumps(s)}, {{actions: false}});" for i, s in enumerate(specs))
    document = (
        f"<!doctype html><html lang=\"{html.escape(lang)}\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(w['title'])} · Gradient Lab</title>"
        f"<style>body{{font-family:{FONT_STACK};max-width:820px;margin:2em auto;padding:0 1em;line-height:1.5}}"
        "blockquote{color:#555;border-left:3px solid #ccc;margin:0;padding-left:1em}.chart{margin:1em 0}"
        "code{background:#f3f3f3;padding:0 .2em}.small{color:#595959;font-size:.85em}"
        ".warning{border-left:3px solid #D55E00;padding-left:.6em}.metrics{list-style:none;padding:0}</style>"
        f"<script>{script}</script></head><body>{''.join(parts)}<script>{embeds}</script></body></html>"
    )
    out.mkdir(parents=True, exist_ok=True)
    path = out / (f"{page}.html" if lang == DEFAULT_LANG else f"{page}.{lang}.html")
    path.write_text(document, encoding="utf-8")
    return path


def readout_html(w, readout) -> str:
    """An experiment's live numbers and the paragraphs that read them, as the page shows them."""
    items = "".join(f"<li>{html.escape(w[f'metrics.{k}'])}: <strong>{html.escape(v)}</strong></li>"
                    for k, v in readout.metrics.items())
    out = f'<ul class="metrics">{items}</ul>' if items else ""
    for reading in readout.readings:
        tag = "p class=\"warning\"" if reading.tone == "warning" else "p"
        out += f"<{tag}>{_md(w(reading.key, **reading.values))}</p>"
    return out


def _md(text: str) -> str:
    """The little Markdown the words use: `code`, **strong**, *emphasis* and [links](...), HTML-escaped.

    A link to another page of the app (a path such as /explosion) has no target in a lone file: its text stays.
    """
    import re

    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    escaped = re.sub(r"\[([^\]]+)\]\((https?://[^)\s]+)\)", r'<a href="\2">\1</a>', escaped)
    escaped = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", escaped)
    escaped = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)
    return re.sub(r"\*([^*]+)\*", r"<em>\1</em>", escaped)


CJK_FONT_DIRS = (Path("/usr/share/fonts/opentype/noto"), Path("/usr/share/fonts/truetype/noto"),
                 Path("/usr/share/fonts/opentype/noto-cjk"))


def cjk_fonts() -> Path:
    """The folder of Noto Sans CJK, which a PNG with Chinese text needs (vl-convert has no CJK glyphs of its own);
    without it a Chinese export would draw boxes, so it stops and names the package instead."""
    for folder in CJK_FONT_DIRS:
        if folder.is_dir() and any(folder.glob("NotoSansCJK*")):
            return folder
    raise ValueError("Chinese PNGs need a CJK font: install Debian's fonts-noto-cjk (apt-get install fonts-noto-cjk), "
                     "or pass --fonts with a folder of CJK fonts")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.export", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("figures"), help="output folder (default: figures/)")
    names = ", ".join(p.name for p in PAGES)
    parser.add_argument("--pages", nargs="+", help=f"pages to export (default: all): {names}")
    parser.add_argument("--presets", nargs="+", help=f"presets to export, '{DEFAULT}' for the defaults (default: all)")
    parser.add_argument("--formats", default=",".join(FORMATS), help=f"comma-separated, of {', '.join(FORMATS)}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fonts", type=Path, help="a folder of fonts to register (for Chinese or Cyrillic titles)")
    parser.add_argument("--handout", action="store_true", help="write one self-contained HTML handout per page")
    parser.add_argument("--lang", default=DEFAULT_LANG,
                        help=f"the figures' and handouts' language, of {', '.join(LANGS)}; not English: in OUT/LANG/")
    args = parser.parse_args(argv)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    try:
        if unknown := sorted(set(formats) - set(FORMATS)):
            raise ValueError(f"unknown format {', '.join(unknown)}; valid: {', '.join(FORMATS)}")
        if args.fonts:
            if not args.fonts.is_dir():
                raise ValueError(f"--fonts {args.fonts} is not a folder")
            import vl_convert

            vl_convert.register_font_directory(str(args.fonts))
        if args.lang not in LANGS:
            raise ValueError(f"unknown language {args.lang!r}; valid: {', '.join(LANGS)}")
        content.use(args.lang)
        if args.lang == "zh" and "png" in formats and not args.handout:
            import vl_convert

            vl_convert.register_font_directory(str(cjk_fonts()))
        if args.handout:
            for name, _ in plan(args.pages, [DEFAULT]):
                print(handout(args.out, name, args.seed, args.lang))
            return 0
        out = args.out if args.lang == DEFAULT_LANG else args.out / args.lang
        count = export(out, args.pages, args.presets, formats, args.seed)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {count} figures to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
