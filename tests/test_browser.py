"""Every page in a real browser: Debian's Chromium, driven by Playwright, against `streamlit run`.

Without /usr/bin/chromium these tests skip and say why; with GRADIENT_LAB_REQUIRE_BROWSER=1 (as
.ci/run sets it) a missing browser is a failure instead. Screenshots land in artifacts/screenshots/,
which git ignores; `make screenshot` copies the README's from there.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urljoin

import pytest

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
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, device_scale_factor=1)
    page = context.new_page()
    yield page
    context.close()


def settle(page, charts: int) -> None:
    """Wait until the script has finished and every chart has drawn its marks."""
    page.wait_for_selector('[data-testid="stMain"] h1', timeout=LOAD_TIMEOUT_MS)  # the page's title is drawn
    page.wait_for_selector('[data-testid="stSidebar"] [data-testid="stNumberInput"]', timeout=LOAD_TIMEOUT_MS)
    if charts:
        page.wait_for_function(
            f"document.querySelectorAll('[data-testid=\"stVegaLiteChart\"] .marks').length >= {charts}",
            timeout=LOAD_TIMEOUT_MS,
        )
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=LOAD_TIMEOUT_MS)
    page.wait_for_timeout(500)  # let Vega finish its last paint before a screenshot


def shoot(page, name: str) -> None:
    """The first screen as a reader sees it, then the whole page (Streamlit scrolls inside stMain, so the
    viewport is stretched to the content's height: full_page alone would capture one screen)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}_top.png")
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": min(int(height) + 100, 30_000)})
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
    assert page.get_by_text("Before you look").count() == 0  # presentation mode, from the address


def test_home(server, page):
    page.goto(server)
    settle(page, 0)
    assert errors(page) == []
    assert page.get_by_role("heading", name="Gradient Lab").count() >= 1
    shoot(page, "home")


@pytest.mark.parametrize("info", PAGES, ids=lambda p: p.name)
def test_page_renders_its_charts(server, page, info):
    page.goto(f"{server}/{info.name}")
    settle(page, EXPECTED_CHARTS[info.name])
    assert errors(page) == []
    assert page.locator('[data-testid="stVegaLiteChart"]').count() == EXPECTED_CHARTS[info.name]
    shoot(page, info.name)


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
    href = page.get_by_role("link", name="Adam when eps dominates").first.get_attribute("href")
    page.goto(urljoin(page.url, href))  # markdown links open a new tab; follow it in this one
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


def test_presentation_mode_hides_the_prose(server, page):
    page.goto(f"{server}/loss_scaling?present=true")
    settle(page, EXPECTED_CHARTS["loss_scaling"])
    assert errors(page) == []
    assert page.get_by_text("Before you look").count() == 0
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
