"""The figure export and handouts: valid files, the page's own figures, the same bytes twice, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from urllib.parse import parse_qsl

import pandas as pd
import pytest

import core
from content import words
from core import export
from core.figures import finish, registry, render, steady
from core.registry import PAGES
from tests.helpers import ROOT, charts, open_page
from ui.controls import preset_query

PAGE, PRESET = "loss_scaling", "adam_eps_dominates"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("figures")
    assert export.export(out, [PAGE], [PRESET]) == len(registry(PAGE))
    return out / PAGE / PRESET


def test_every_figure_is_written_in_every_format(exported):
    for name in registry(PAGE):
        png = (exported / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        root = ET.parse(exported / f"{name}.svg").getroot()
        assert root.tag.endswith("svg") and float(root.get("width")) > 0
        assert (exported / f"{name}.csv").stat().st_size > 0
        assert (exported / f"{name}.json").exists()


def test_png_is_at_twice_the_pixel_density(exported):
    name = next(iter(registry(PAGE)))
    png = (exported / f"{name}.png").read_bytes()
    width = int.from_bytes(png[16:20], "big")
    svg_width = float(ET.parse(exported / f"{name}.svg").getroot().get("width"))
    assert width == pytest.approx(2 * svg_width, abs=2)


def test_csv_equals_the_core_dataframe(exported):
    settings = export.settings_for(PAGE, PRESET)
    for name, figure in registry(PAGE).items():
        expected, _ = render(figure, settings)
        written = pd.read_csv(exported / f"{name}.csv")
        pd.testing.assert_frame_equal(written, expected.reset_index(drop=True), check_dtype=False, rtol=1e-12)


def test_json_reproduces_the_figure(exported, tmp_path):
    record = json.loads((exported / "update_ratio.json").read_text())
    assert record["settings"] == export.settings_for(PAGE, PRESET)
    assert record["versions"]["gradient_lab"] == core.__version__
    again = tmp_path / "again.csv"
    df, _ = render(registry(record["page"])[record["figure"]], record["settings"])
    df.to_csv(again, index=False, lineterminator="\n")
    assert again.read_bytes() == (exported / "update_ratio.csv").read_bytes()


def test_two_exports_are_byte_identical(exported, tmp_path):
    export.export(tmp_path, [PAGE], [PRESET], formats=("csv", "svg"))
    for name in registry(PAGE):
        for suffix in ("csv", "svg"):
            assert (tmp_path / PAGE / PRESET / f"{name}.{suffix}").read_bytes() == \
                (exported / f"{name}.{suffix}").read_bytes(), (name, suffix)


def normalised(spec: dict) -> dict:
    """A Vega-Lite spec without what Streamlit or the export rewrites: data, sizes, schema, config, and the
    null legend titles Streamlit turns into " " (both draw no title)."""
    drop = {"datasets", "data", "$schema", "config", "width", "height", "autosize", "usermeta"}
    if isinstance(spec, dict):
        return {k: normalised(v) for k, v in spec.items()
                if k not in drop and not (k == "title" and v in (None, " "))}
    if isinstance(spec, list):
        return [normalised(v) for v in spec]
    return spec


@pytest.mark.parametrize("info", PAGES, ids=lambda p: p.name)
def test_the_page_shows_the_exported_figure(info):
    """One registry serves both: the charts a page draws at a preset are the ones the export writes."""
    preset = next(iter(info.core.PRESETS))
    at = open_page(info.path, dict(parse_qsl(preset_query(info.name, info.core.CONTROLS, info.core.PRESETS, preset))))
    shown = [normalised(json.loads(c.proto.spec)) for c in charts(at)]
    settings = export.settings_for(info.name, preset)
    for name, figure in registry(info.name).items():
        _, chart = render(figure, settings)
        assert normalised(steady(finish(chart.to_dict()))[0]) in shown, name  # finished the same way (core.figures)


def test_unknown_names_exit_2_listing_the_valid_ones():
    for args, valid in ((["--pages", "nope"], "loss_scaling"), (["--presets", "nope"], PRESET),
                        (["--formats", "gif"], "png, svg")):
        result = subprocess.run([sys.executable, "-m", "core.export", *args, "--out", "/tmp/unused"], cwd=ROOT,
                                capture_output=True, text=True)
        assert result.returncode == 2 and valid in result.stderr, (args, result.stderr)


def test_handout_is_one_self_contained_file(tmp_path):
    path = export.handout(tmp_path, PAGE)
    text = path.read_text(encoding="utf-8")
    assert text.count('class="chart"') == len(registry(PAGE))
    assert "vegaEmbed" in text and "Loss scaling" in text

    class Tags(HTMLParser):
        fetches: list = []

        def handle_starttag(self, tag, attrs):
            self.fetches += [(tag, k, v) for k, v in attrs if k in ("src", "href") and tag != "a"]

    parser = Tags()
    parser.feed(text)
    assert parser.fetches == []  # nothing loaded from elsewhere: the JavaScript is inline (see test_browser)


def test_version_is_the_project_version():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["version"] == core.__version__


@pytest.mark.parametrize("info", PAGES, ids=lambda p: p.name)
def test_every_figure_belongs_to_a_titled_experiment_of_its_page(info):
    """Where a handout places each chart: under the heading of the experiment it belongs to."""
    experiments = words(info.name)["experiments"]
    for name, figure in registry(info.name).items():
        assert "title" in experiments.get(figure.experiment, {}), (info.name, name, figure.experiment)


def test_a_chinese_export_draws_its_words_with_a_cjk_font(tmp_path):
    """--lang zh: the figures in figures/zh/, their words Chinese; the PNG is drawn with Noto CJK (CI installs
    fonts-noto-cjk), and without a CJK font the export stops and names the package instead of drawing boxes."""
    if not any(d.is_dir() and any(d.glob("NotoSansCJK*")) for d in export.CJK_FONT_DIRS):
        with pytest.raises(ValueError, match="fonts-noto-cjk"):
            export.cjk_fonts()
        pytest.skip("no Noto CJK on this machine (apt-get install fonts-noto-cjk)")
    result = subprocess.run([sys.executable, "-m", "core.export", "--lang", "zh", "--pages", "reduction", "--presets",
                             "default", "--formats", "svg,png,csv", "--out", str(tmp_path)], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    svg = (tmp_path / "zh" / "reduction" / "default" / "norms.svg").read_text(encoding="utf-8")
    title = words("reduction", "zh")["charts.norms.title"]
    assert title[:4] in svg  # the title's first characters, drawn as text
    assert (tmp_path / "zh" / "reduction" / "default" / "norms.png").stat().st_size > 1000
    csv = pd.read_csv(tmp_path / "zh" / "reduction" / "default" / "norms.csv")
    english = registry("reduction")["norms"].data(seed=0)
    assert list(csv.columns) == list(english.columns)  # the same columns and ids in every language
    assert set(csv.reduction) == set(english.reduction) == {"mean", "sum"}


def test_without_a_cjk_font_a_chinese_png_export_stops_naming_the_package(monkeypatch):
    monkeypatch.setattr(export, "CJK_FONT_DIRS", ())
    with pytest.raises(ValueError, match="fonts-noto-cjk"):
        export.cjk_fonts()
