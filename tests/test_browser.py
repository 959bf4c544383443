"""Every page in a real browser: Debian's Chromium, driven by Playwright, against `streamlit run`.

Without /usr/bin/chromium (or axe-core in .axe/, for the contrast check) these tests skip and say why;
with GRADIENT_LAB_REQUIRE_BROWSER=1 (as .ci/run sets it) a missing browser or axe-core is a failure
instead. Screenshots land in artifacts/screenshots/, which git ignores; `make screenshot` copies the
README's from there.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote, urljoin

import pytest

from content import words
from core.figures import registry
from core.registry import PAGES
from tests.helpers import ROOT
from tests.test_app import EXPECTED_CHARTS

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("GRADIENT_LAB_CHROMIUM", "/usr/bin/chromium")
REQUIRED = os.environ.get("GRADIENT_LAB_REQUIRE_BROWSER") == "1"
SHOTS = ROOT / "artifacts" / "screenshots"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic"]
LOAD_TIMEOUT_MS = 120_000  # a cold page on a busy 2-core machine
AXE = ROOT / ".axe" / "node_modules" / "axe-core" / "axe.min.js"  # .ci/run installs it: npm install axe-core
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    if not Path(CHROMIUM).exists() or shutil.which("streamlit", path=str(Path(sys.executable).parent)) is None:
        message = f"no Chromium at {CHROMIUM}: install it with `apt-get install -y chromium` to run the browser tests"
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "streamlit"), "run", "streamlit_app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail(f"streamlit did not start: {process.stdout.read().decode()[-2000:]}")
    yield url
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, device_scale_factor=1)
    page = context.new_page()
    own = server.split("/")[2]
    foreign: list[str] = []
    page.on("request", lambda r: None if r.url.split("/")[2] == own or r.url.startswith(("data:", "blob:"))
            else foreign.append(r.url))
    yield page
    context.close()
    assert foreign == [], f"the page asked other hosts: {foreign[:5]}"  # nothing leaves the machine


def settle(page, charts: int) -> None:
    """Wait until the script has finished and every chart has drawn its marks."""
    page.wait_for_selector('[data-testid="stMain"] h1', timeout=LOAD_TIMEOUT_MS)  # the page's title is drawn
    page.wait_for_selector('[data-testid="stSidebar"] [data-testid="stNumberInput"]', state="attached",
                           timeout=LOAD_TIMEOUT_MS)
    if charts:
        page.wait_for_function(
            f"document.querySelectorAll('[data-testid=\"stVegaLiteChart\"] .marks').length >= {charts}",
            timeout=LOAD_TIMEOUT_MS,
        )
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=LOAD_TIMEOUT_MS)
    page.wait_for_timeout(500)  # let Vega finish its last paint before a screenshot


def shoot(page, name: str, width: int = 1400) -> None:
    """The first screen as a reader sees it, then the whole page (Streamlit scrolls inside stMain, so the
    viewport is stretched to the content's height: full_page alone would capture one screen)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}_top.png")
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": width, "height": min(int(height) + 100, 30_000)})
    page.wait_for_timeout(800)
    page.screenshot(path=SHOTS / f"{name}.png")


def errors(page) -> list[str]:
    boxes = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
    return [boxes.nth(i).inner_text() for i in range(boxes.count())]


def test_a_deep_link_as_the_servers_first_request_runs_the_whole_app(server, page):
    """Must run first in this module: before any visit to "/", Streamlit would run a page file alone."""
    page.goto(f"{server}/loss_scaling?present=true&seed=3")
    settle(page, EXPECTED_CHARTS["loss_scaling"])
    assert errors(page) == []
    sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
    assert "Seed" in sidebar and "Presentation mode" in sidebar and "Home" in sidebar
    assert page.locator("[data-testid=\"stMain\"] blockquote").count() == 0  # presentation mode, from the address


def test_home(server, page):
    page.goto(server)
    settle(page, 0)
    assert errors(page) == []
    assert page.get_by_role("heading", name="Gradient Lab").count() >= 1
    shoot(page, "home")


LAYOUT = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const charts = [...main.querySelectorAll('[data-testid="stVegaLiteChart"]')].map(c => {
    const svg = c.querySelector('svg.marks'), frame = svg && svg.querySelector('.role-frame.root');
    const plot = svg && svg.querySelector('.mark-rect.role-frame path, .role-frame .background');
    return {box: c.getBoundingClientRect().width, svg: svg ? svg.getBoundingClientRect().width : 0,
            plot: plot ? plot.getBoundingClientRect().width : (svg ? svg.getBoundingClientRect().width : 0),
            titles: [...c.querySelectorAll('.role-title-text text, .role-title text')].map(e => e.textContent),
            label: c.getAttribute('aria-label') || ''};
  });
  const cut = [...main.querySelectorAll('[data-testid="stMetricValue"], [data-testid="stMetricLabel"]')]
    .flatMap(m => [m, ...m.querySelectorAll('*')])
    .filter(e => e.scrollWidth > e.clientWidth + 1 || getComputedStyle(e).textOverflow === 'ellipsis'
                 && getComputedStyle(e).overflow === 'hidden').map(e => e.textContent.slice(0, 40));
  const wide = [...main.querySelectorAll('pre, [data-testid="stPageLink"]')]
    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1).map(e => e.textContent.slice(0, 40));
  const thumbs = [...main.querySelectorAll('[data-testid="stSlider"] input[type="range"]')]
    .map(i => i.parentElement.parentElement.getBoundingClientRect()).map(r => Math.min(r.width, r.height));
  const links = [...main.querySelectorAll('[data-testid="stPageLink"] a')]
    .filter(a => a.scrollWidth > a.clientWidth + 1).map(a => a.textContent.slice(0, 40));
  return {charts, cut, wide, thumbs, links};
}"""


def contrast_violations(page) -> list[str]:
    """axe-core's color-contrast rule over the page's content (not Streamlit's own sidebar or toolbar)."""
    if not AXE.exists():
        message = f"no axe-core at {AXE}: run `npm install --prefix .axe axe-core` to check contrast"
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("""async () => {
      const r = await axe.run(document.querySelector('[data-testid="stMain"]'), {runOnly: ['color-contrast']});
      return r.violations.flatMap(v => v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary));
    }""")
    return result


@pytest.mark.parametrize("width", WIDTHS, ids=str)
@pytest.mark.parametrize("info", PAGES, ids=lambda p: p.name)
def test_every_page_reads_at_every_width(server, page, info, width):
    """1280 and 390 px: every chart draws its plot, every number and link shows in full, code scrolls in its box;
    the tab names the page; a table of contents links to each part; the page's text passes axe's contrast check."""
    w, h = WIDTHS[width]
    page.set_viewport_size({"width": w, "height": h})
    page.goto(f"{server}/{info.name}")
    settle(page, EXPECTED_CHARTS[info.name])
    assert errors(page) == []
    assert page.locator('[data-testid="stVegaLiteChart"]').count() == EXPECTED_CHARTS[info.name]
    title = words(info.name)["title"]
    assert page.title() == f"{title} · Gradient Lab"
    found = page.evaluate(LAYOUT)
    for chart in found["charts"]:
        assert chart["svg"] >= chart["box"] / 2 and chart["plot"] >= chart["box"] / 3, chart
        assert chart["label"], "a chart with no text description"
        if width == "phone":
            assert not any(line.endswith("…") for line in chart["titles"]), chart["titles"]
    assert found["cut"] == [], "metric values or labels cut"
    assert found["wide"] == [], "code or links wider than the screen"
    assert all(size >= 24 for size in found["thumbs"]), found["thumbs"]
    anchors = page.locator("nav.gl-toc a").evaluate_all("as => as.map(a => a.getAttribute('href'))")
    assert {"#misconceptions", "#code", "#takeaways"} <= set(anchors)
    experiments = [k for k, e in words(info.name)["experiments"].items() if isinstance(e, dict) and "title" in e]
    assert [a for a in anchors if a[1:] in experiments] == [f"#{k}" for k in experiments]
    missing = page.evaluate("hrefs => hrefs.filter(h => !document.getElementById(h.slice(1)))", anchors)
    assert missing == [], "table of contents entries with no target"
    if width == "desktop":
        assert contrast_violations(page) == []
    shoot(page, f"{info.name}_{width}" if width == "phone" else info.name, width=w)


@pytest.mark.parametrize("width", WIDTHS, ids=str)
@pytest.mark.parametrize("lang", ["zh", "ru"])
@pytest.mark.parametrize("info", PAGES, ids=lambda p: p.name)
def test_every_page_reads_in_chinese_and_russian(server, page, info, lang, width):
    """?lang=zh and ?lang=ru at 1280 and 390 px: the page in that language (title, tab, headings), nothing cut or
    wider than the screen in the wider CJK or the longer Cyrillic words, every chart drawn; a screenshot of each."""
    w, h = WIDTHS[width]
    page.set_viewport_size({"width": w, "height": h})
    page.goto(f"{server}/{info.name}?lang={lang}")
    settle(page, EXPECTED_CHARTS[info.name])
    assert errors(page) == []
    title = words(info.name, lang)["title"]
    assert title != words(info.name, "en")["title"]
    assert page.locator('[data-testid="stMain"] h1').first.inner_text().strip() == title
    assert page.title() == f"{title} · Gradient Lab"
    found = page.evaluate(LAYOUT)
    assert found["cut"] == [], "metric values or labels cut"
    assert found["wide"] == [], "code or links wider than the screen"
    for chart in found["charts"]:
        assert chart["svg"] >= chart["box"] / 2, chart
    shoot(page, f"{info.name}_{lang}_{width}", width=w)


def test_the_chosen_language_stays_in_the_address_from_page_to_page(server, page):
    """A reader on ?lang=ru who follows the sidebar to another page reads it in Russian, and its address says so, so
    a link copied there speaks Russian too."""
    page.goto(f"{server}/loss_scaling?lang=ru")
    settle(page, EXPECTED_CHARTS["loss_scaling"])
    title = words("reduction", "ru")["title"]
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).click()
    page.wait_for_url("**/reduction**", timeout=LOAD_TIMEOUT_MS)
    settle(page, EXPECTED_CHARTS["reduction"])
    assert page.locator('[data-testid="stMain"] h1').first.inner_text().strip() == title
    page.wait_for_function("new URL(location.href).searchParams.get('lang') === 'ru'", timeout=LOAD_TIMEOUT_MS)


def test_deep_link_lands_on_its_state(server, page):
    page.goto(f"{server}/loss_scaling?loss_scaling_scale_exp=-9&loss_scaling_lr=0.5")
    settle(page, EXPECTED_CHARTS["loss_scaling"])
    assert errors(page) == []
    slider = page.locator('[data-testid="stSlider"]').filter(has_text="Loss multiplied by s")
    assert "1e-9" in slider.inner_text()
    assert page.get_by_text("At s = 1e-09, every gradient").count() == 1
    assert "loss_scaling_scale_exp=-9" in page.url


def test_a_bad_link_value_is_ignored_with_a_note(server, page):
    page.goto(f"{server}/loss_scaling?loss_scaling_lr=banana")
    settle(page, EXPECTED_CHARTS["loss_scaling"])
    assert errors(page) == []
    assert page.get_by_text("loss_scaling_lr=banana").count() == 1


def test_a_preset_link_lands_on_its_settings(server, page):
    page.goto(f"{server}/loss_scaling")
    settle(page, EXPECTED_CHARTS["loss_scaling"])
    link = page.get_by_role("link", name="Adam when eps dominates").first
    assert link.get_attribute("target") in (None, "_self")  # the same tab
    page.goto(urljoin(page.url, link.get_attribute("href")))
    assert "loss_scaling_scale_exp=-9" in page.url
    settle(page, EXPECTED_CHARTS["loss_scaling"])
    assert errors(page) == []
    assert "1e-9" in page.locator('[data-testid="stSlider"]').filter(has_text="Loss multiplied by s").inner_text()


def test_choosing_a_preset_sets_the_controls_and_the_address(server, page):
    page.goto(f"{server}/loss_scaling")
    settle(page, EXPECTED_CHARTS["loss_scaling"])
    page.locator('[data-testid="stButtonGroup"]').get_by_text("SGD with weight decay").click()
    page.wait_for_url("**loss_scaling_weight_decay=0.1**", timeout=LOAD_TIMEOUT_MS)
    settle(page, EXPECTED_CHARTS["loss_scaling"])
    assert errors(page) == []
    assert "0.10" in page.locator('[data-testid="stSlider"]').filter(has_text="SGD weight decay").inner_text()
    assert page.get_by_role("link", name="SGD with weight decay").get_attribute("aria-current") == "true"


def test_presentation_mode_hides_the_prose(server, page):
    page.goto(f"{server}/loss_scaling?present=true")
    settle(page, EXPECTED_CHARTS["loss_scaling"])
    assert errors(page) == []
    assert page.locator("[data-testid=\"stMain\"] blockquote").count() == 0
    assert page.get_by_role("heading", name="Show the code").count() == 0
    shoot(page, "loss_scaling_present")


def test_embed_gives_a_clean_page(server, page):
    page.goto(f"{server}/loss_scaling?embed=true")
    settle(page, EXPECTED_CHARTS["loss_scaling"])
    assert errors(page) == []
    shoot(page, "loss_scaling_embed")
    for chrome in ("stToolbar", "stDecoration", "stMainMenu", "stAppDeployButton"):
        located = page.locator(f'[data-testid="{chrome}"]')
        assert located.count() == 0 or not located.first.is_visible(), chrome


def test_a_handout_renders_its_charts_offline(browser, tmp_path):
    from core.export import handout
    from core.figures import registry

    path = handout(tmp_path, "loss_scaling")
    context = browser.new_context(offline=True)
    page = context.new_page()
    page.goto(path.as_uri())
    page.wait_for_function(f"document.querySelectorAll('.chart .marks').length >= {len(registry('loss_scaling'))}",
                           timeout=LOAD_TIMEOUT_MS)
    shoot_file = SHOTS / "handout_loss_scaling.png"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=shoot_file, full_page=True)
    context.close()


def test_a_link_in_a_link_value_stays_plain_text(server, page):
    injected = "` [Your session expired: log in here](https://example.com) `"
    page.goto(f"{server}/loss_scaling?loss_scaling_lr=" + quote(injected))
    settle(page, EXPECTED_CHARTS["loss_scaling"])
    assert errors(page) == []
    assert page.get_by_text("[Your session expired: log in here](ht", exact=False).count() == 1
    assert page.locator('a[href*="example.com"]').count() == 0


@pytest.mark.parametrize(("query", "label", "shown"), [
    ("loss_scaling_lr=0.001", "Learning rate", "0.001"),  # a preset's value, not 0.00
    ("loss_scaling_lr=0.123", "Learning rate", "0.123"),
    ("loss_scaling_weight_decay=0.07", "SGD weight decay", "0.07"),
])
def test_a_slider_reads_the_value_in_use(server, page, query, label, shown):
    page.goto(f"{server}/loss_scaling?{query}")
    settle(page, EXPECTED_CHARTS["loss_scaling"])
    slider = page.locator('[data-testid="stSlider"]').filter(has_text=label).first
    assert shown in slider.inner_text().split()


def test_one_arrow_key_step_reads_as_the_address_says(server, page):
    page.goto(f"{server}/loss_scaling")
    settle(page, EXPECTED_CHARTS["loss_scaling"])
    thumb = page.locator('[data-testid="stSlider"]').filter(has_text="Learning rate").locator('input[type="range"]')
    thumb.focus()
    outline = thumb.evaluate("i => getComputedStyle(i.parentElement.parentElement).outlineWidth")
    page.keyboard.press("ArrowRight")
    page.wait_for_url("**loss_scaling_lr=0.101**", timeout=LOAD_TIMEOUT_MS)
    settle(page, EXPECTED_CHARTS["loss_scaling"])
    assert "0.101" in page.locator('[data-testid="stSlider"]').filter(has_text="Learning rate").inner_text().split()
    assert outline not in ("0px", ""), "no visible focus on the slider"


# What a chart draws: its marks' geometry and its text, in order (ids and clip paths differ between two drawings).
DRAWN = """(i) => {
  const chart = document.querySelectorAll('[data-testid="stVegaLiteChart"] .marks')[i];
  return [...chart.querySelectorAll('path, text')].map(e => e.getAttribute('d') ?? e.textContent).join('|');
}"""


def test_a_move_that_changes_only_a_charts_rows_keeps_the_chart_and_draws_the_new_rows(server, page):
    """The browser swaps the rows of a chart whose spec is otherwise unchanged (core.figures.steady) instead of
    drawing it anew; what it then shows is what a fresh page at the new setting shows."""
    page.goto(f"{server}/loss_scaling")
    settle(page, EXPECTED_CHARTS["loss_scaling"])
    page.evaluate("() => document.querySelectorAll('[data-testid=\"stVegaLiteChart\"] .marks')"
                  ".forEach((chart, i) => { chart.dataset.glDrawn = i; })")
    before = page.evaluate(DRAWN, 1)
    thumb = page.locator('[data-testid="stSlider"]').filter(has_text="Learning rate").locator('input[type="range"]')
    thumb.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_url("**loss_scaling_lr=0.101**", timeout=LOAD_TIMEOUT_MS)
    settle(page, EXPECTED_CHARTS["loss_scaling"])
    page.wait_for_function(f"({DRAWN})(1) !== {before!r}", timeout=LOAD_TIMEOUT_MS)
    kept = page.evaluate("() => [...document.querySelectorAll('[data-testid=\"stVegaLiteChart\"] .marks')]"
                         ".map(chart => chart.dataset.glDrawn ?? null)")
    moved = page.evaluate(DRAWN, 1)
    assert kept[1] == "1", kept  # the learning rate's runs: the same chart, its rows swapped
    fresh = page.context.new_page()
    fresh.goto(page.url)
    settle(fresh, EXPECTED_CHARTS["loss_scaling"])
    assert fresh.evaluate(DRAWN, 1) == moved


def test_predict_then_check_names_the_right_answer(server, page):
    page.goto(f"{server}/loss_scaling")
    settle(page, EXPECTED_CHARTS["loss_scaling"])
    options = words("loss_scaling")["predict.options"]
    right = options[words("loss_scaling")["predict.answer"]]
    page.get_by_text(options[0], exact=True).click()
    page.keyboard.press("ArrowDown")  # arrow keys move the choice and reveal nothing
    page.wait_for_timeout(1500)
    assert page.get_by_text("Short answer:").count() == 0
    page.get_by_role("button", name="Check my answer").click()
    page.get_by_text("Short answer:").wait_for(timeout=LOAD_TIMEOUT_MS)
    box = page.locator('[class*="st-key-loss_scaling_predict_box"]')
    assert right in box.inner_text()
    SHOTS.mkdir(parents=True, exist_ok=True)
    box.screenshot(path=SHOTS / "predict_feedback.png")


def test_presentation_mode_reads_from_the_back_of_the_room(server, page):
    """1920x1080: chart text of 18 px and more, dark; the sidebar collapsed; the predict question kept."""
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto(f"{server}/loss_scaling?present=true")
    settle(page, EXPECTED_CHARTS["loss_scaling"])
    assert errors(page) == []
    sizes = page.evaluate("""() => [...document.querySelectorAll('[data-testid="stVegaLiteChart"] '
        + ':is(.role-axis-label, .role-axis-title, .role-legend-label, .role-legend-title) text')]
        .filter(e => e.textContent.trim() && getComputedStyle(e).visibility !== 'hidden')
        .map(e => { const m = e.getScreenCTM();  // a rotated y-axis title scales by hypot(a, b)
          return [parseFloat(getComputedStyle(e).fontSize) * Math.hypot(m.a, m.b), e.getAttribute('fill')]; })""")
    assert sizes and min(size for size, _ in sizes) >= 18, min(sizes)
    assert {fill for _, fill in sizes} <= {"#1f2328"}
    sidebar = page.locator('[data-testid="stSidebar"]').evaluate("s => s.getBoundingClientRect().toJSON()")
    assert sidebar["right"] <= 1 or sidebar["width"] <= 1, sidebar  # collapsed
    assert page.locator('[data-testid="stRadio"]').count() == 1
    page.screenshot(path=SHOTS / "loss_scaling_present_1920.png")


# Each chart scrolled to the bottom of a 1024x768 screen: where its pinned controls are, and where it is.
PINNED = """() => [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stVegaLiteChart"]')].map(c => {
  const block = c.closest('[class*="st-key-gl_block_"]');
  const pinned = block && block.querySelector('[class*="st-key-gl_pinned_"]');
  c.scrollIntoView({block: 'end'});
  const r = c.getBoundingClientRect(), p = pinned && pinned.getBoundingClientRect();
  const header = document.querySelector('[data-testid="stHeader"]').getBoundingClientRect().bottom;
  return {header, chart: [r.top, r.bottom],
          pinned: p && [p.top, p.bottom], height: window.innerHeight};
})"""


@pytest.mark.parametrize("info", PAGES, ids=lambda p: p.name)
def test_presentation_mode_shows_each_chart_with_its_controls(server, page, info):
    """1024x768, presentation mode: an experiment's controls stay pinned under the top bar while its charts scroll
    by, so every chart that a control drives is seen whole, on one screen, below all of them (those of earlier
    experiments stated in the pinned box). A chart with no pinned box is driven by the sidebar's seed alone."""
    page.set_viewport_size({"width": 1024, "height": 768})
    page.goto(f"{server}/{info.name}?present=true")
    settle(page, EXPECTED_CHARTS[info.name])
    seen = page.evaluate(PINNED)
    drawn = re.findall(r'page\.figure\("(\w+)"\)', (ROOT / info.path).read_text())  # in the order the page draws
    assert len(seen) == len(drawn) == EXPECTED_CHARTS[info.name]
    for name, chart in zip(drawn, seen):
        figure = registry(info.name)[name]
        if chart["pinned"] is None:
            assert set(figure.inputs) | set(figure.chart_inputs) <= {"seed"}, (name, chart)
            continue
        (top, bottom), (p_top, p_bottom) = chart["chart"], chart["pinned"]
        assert p_top >= chart["header"] - 1 and p_bottom <= top + 1 and bottom <= chart["height"] + 1, (name, chart)
    page.screenshot(path=SHOTS / f"{info.name}_present_1024.png")


def test_an_embed_shows_one_experiment(server, page):
    page.goto(f"{server}/loss_scaling?embed=true&section=update")
    settle_embed = sum(f.experiment == "update" for f in registry("loss_scaling").values())
    page.wait_for_selector('[data-testid="stMain"] h2', timeout=LOAD_TIMEOUT_MS)
    page.wait_for_function(f"document.querySelectorAll('[data-testid=\"stVegaLiteChart\"] .marks').length >= "
                           f"{settle_embed}", timeout=LOAD_TIMEOUT_MS)
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=LOAD_TIMEOUT_MS)
    headings = page.locator('[data-testid="stMain"] h1, [data-testid="stMain"] h2').all_inner_texts()
    assert headings == [words("loss_scaling")["experiments.update.title"]]
    assert page.locator('[data-testid="stVegaLiteChart"]').count() == settle_embed
    shoot(page, "loss_scaling_embed_update")


def test_home_links_wrap_on_a_phone(server, page):
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(server)
    settle(page, 0)
    found = page.evaluate(LAYOUT)
    assert found["links"] == [] and found["wide"] == [], found
    assert page.title() == "Gradient Lab"
    assert contrast_violations(page) == []
    shoot(page, "home_phone", width=390)
