"""The dashboard in a real browser: Debian's Chromium driven by Playwright against `shelfcast dashboard` on a demo
workspace built by the CLI.

Playwright cannot download its own browser on these machines, so it launches the system's Chromium. Where Chromium
is missing the tests skip with the command that installs it (`make test` installs it where it can), except on CI
(CI=true), where they fail. SHELFCAST_SCREENSHOTS=DIR also writes the README's screenshots of the Store and Item
pages into DIR (docs/images), as small PNGs of one 1280x800 screen.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pytest
from browser import CHROMIUM_ARGS, IDLE, chromium, stop_group
from browser import wait_healthy as health
from helpers import run_cli
from serving import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PAGES = {"store": "Store", "item": "Item", "models": "Models", "monitoring": "Monitoring", "data": "Data"}
VIEWPORT = {"width": 1280, "height": 800}
# Generous: the first run of a page imports the models and reads the lake, on a loaded 2-core machine.
LOAD_MS = 120_000
README_SHOTS = {"store": "dashboard-store.png", "item": "dashboard-item.png"}
# Read (and resolved against the directory pytest started in) before the fixtures clear SHELFCAST_* and change
# into a temporary folder.
README_SHOTS_DIR = (
    Path(os.environ["SHELFCAST_SCREENSHOTS"]).resolve() if os.environ.get("SHELFCAST_SCREENSHOTS") else None
)
README_SHOT_MAX_BYTES = 300_000


@dataclass(frozen=True)
class Dashboard:
    url: str
    workspace: Path
    predictions: pl.DataFrame  # the latest scoring, a row per series: store_id, item_id, order_quantity, stockout_risk


def latest_series(workspace: Path) -> pl.DataFrame:
    """The prediction store's latest scoring read straight from its Parquet files, one row per series."""
    rows = pl.read_parquet(workspace / "predictions" / "**" / "*.parquet", hive_partitioning=True)
    latest = rows.filter(pl.col("scored_on") == pl.col("scored_on").max())
    # A series' risk and advice are the same on each of its rows (one per date ahead).
    return latest.group_by("store_id", "item_id").agg(pl.col("order_quantity").first(), pl.col("stockout_risk").first())


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path, *, seconds: float = 120) -> None:
    problem = health(url, process, seconds=seconds, poll=0.5)
    if problem is not None:
        pytest.fail(f"{problem}:\n{log.read_text(errors='replace')}")


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    chromium()  # skip before the minutes of setup when there is no browser
    root = tmp_path_factory.mktemp("dashboard")
    workspace = root / ".shelfcast"  # the name `make demo` gives it, shown in the sidebar of the README shots
    demo = run_cli(
        "demo", "-w", str(workspace), "--stores", "3", "--items", "8", "--days", "300", "--seed", "1", cwd=root
    )
    assert demo.returncode == 0, demo.stderr
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SHELFCAST_", "MLFLOW_"))}
    log = root / "dashboard.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "shelfcast", "dashboard", "-w", str(workspace), "--port", str(port)],
            cwd=root,
            env=clean,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_healthy(url, process, log)
        yield Dashboard(url, workspace, latest_series(workspace))
    finally:
        stop_group(process)


@pytest.fixture(scope="module")
def browser(dashboard: Dashboard) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def urls(browser: Browser, dashboard: Dashboard) -> dict[str, str]:
    """Each page's address as the app's own navigation links to it (the default page is at the root), by title."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        tab = context.new_page()
        open_page(tab, dashboard.url, PAGES["store"])
        links = tab.get_by_test_id("stSidebarNavLink")
        return {
            link.get_by_test_id("stMarkdownContainer").inner_text().strip(): str(link.get_attribute("href"))
            for link in links.all()
        }
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    try:
        yield context.new_page()
    finally:
        context.close()


def open_page(page: Page, url: str, title: str) -> None:
    """Load `url` and wait until its script has run and its content is drawn."""
    page.goto(url)
    page.wait_for_function(IDLE, arg=title, timeout=LOAD_MS)


def errors_shown(page: Page) -> list[str]:
    """Streamlit's tracebacks, error boxes and dialogs ("Page not found") on the page, as text."""
    shown = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"], [role="dialog"]')
    return list(dict.fromkeys(text.strip() for text in shown.all_inner_texts()))  # a traceback is in an error box


def full_page_screenshot(page: Page, path: Path) -> None:
    """The whole page: Streamlit scrolls inside its main element, not the document, so Playwright's full_page
    would stop at the window; the window is made as tall as the content for the shot."""
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": VIEWPORT["width"], "height": max(VIEWPORT["height"], int(height))})
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
    page.screenshot(path=path, full_page=True)
    page.set_viewport_size(VIEWPORT)


def readme_screenshot(page: Page, path: Path) -> None:
    """One screen, as a palette PNG: small enough for the repository."""
    from PIL import Image

    shot = Image.open(io.BytesIO(page.screenshot()))
    shot.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    assert path.stat().st_size < README_SHOT_MAX_BYTES, (path, path.stat().st_size)


def table_items(page: Page) -> list[str]:
    """The item ids in the Store page's table (its first column), from the grid's accessible table."""
    # The grid draws on a canvas; its accessible table (hidden) is filled a moment after the element appears.
    page.locator('[data-testid="stDataFrame"] [role="gridcell"]').first.wait_for(state="attached", timeout=LOAD_MS)
    rows = page.locator('[data-testid="stDataFrame"] [role="row"]')
    return [(row.locator('[role="gridcell"]').first.text_content() or "").strip() for row in rows.all()[1:]]


def ranked(dashboard: Dashboard, store: str) -> list[str]:
    """A store's items as the prediction store ranks them: riskiest first."""
    rows = dashboard.predictions.filter(pl.col("store_id") == store)
    return rows.sort(["stockout_risk", "item_id"], descending=[True, False])["item_id"].to_list()


def test_the_navigation_lists_the_five_pages(urls: dict[str, str], dashboard: Dashboard) -> None:
    # st.navigation's titles (a `pages/` folder beside app.py would list its files instead), each on its own address.
    assert list(urls) == list(PAGES.values())
    assert len(set(urls.values())) == len(PAGES)
    assert all(url.startswith(dashboard.url) for url in urls.values())


@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_loads_with_no_error(
    path: str, dashboard: Dashboard, urls: dict[str, str], page: Page, tmp_path: Path
) -> None:
    store = str(dashboard.predictions["store_id"].min())
    query = f"?store={store}&item={ranked(dashboard, store)[0]}" if path == "item" else ""
    open_page(page, urls[PAGES[path]] + query, PAGES[path])
    assert errors_shown(page) == []
    # The sidebar that the entry script draws on every page.
    assert str(dashboard.workspace) in page.get_by_test_id("stSidebarUserContent").inner_text()
    shot = tmp_path / f"{path}.png"
    full_page_screenshot(page, shot)
    assert shot.stat().st_size > 10_000
    if README_SHOTS_DIR is not None and path in README_SHOTS:
        readme_screenshot(page, README_SHOTS_DIR / README_SHOTS[path])


@pytest.mark.parametrize("path", list(PAGES))
def test_each_page_opens_at_its_own_path(path: str, dashboard: Dashboard, page: Page) -> None:
    # Links name pages by their path (`/store?store=S001`, `/item?store=S001&item=I0001`): no "Page not found".
    open_page(page, f"{dashboard.url}/{path}", PAGES[path])
    assert errors_shown(page) == []


def test_choosing_a_store_shows_its_items(dashboard: Dashboard, urls: dict[str, str], page: Page) -> None:
    stores = dashboard.predictions["store_id"].unique().sort().to_list()
    first, other = stores[0], stores[-1]
    open_page(page, urls["Store"], "Store")
    assert page.url.endswith(f"?store={first}")  # the default choice is written to the link
    before = table_items(page)
    assert before == ranked(dashboard, first)  # every item, riskiest first

    picker = page.get_by_role("combobox", name="Store")
    picker.click()
    picker.fill(other)
    page.get_by_role("option", name=other, exact=True).click()
    page.wait_for_url(lambda url: url.endswith(f"?store={other}"), timeout=LOAD_MS)
    page.wait_for_function(IDLE, arg="Store", timeout=LOAD_MS)
    wanted = ranked(dashboard, other)
    assert wanted != before
    # The grid redraws its rows a moment after the run that changed them.
    deadline = time.monotonic() + 30
    while (after := table_items(page)) != wanted and time.monotonic() < deadline:
        time.sleep(0.2)
    assert after == wanted
    assert errors_shown(page) == []


def test_the_order_list_downloads_as_csv(dashboard: Dashboard, urls: dict[str, str], page: Page) -> None:
    store = str(dashboard.predictions["store_id"].max())
    open_page(page, f"{urls['Store']}?store={store}", "Store")
    with page.expect_download(timeout=LOAD_MS) as download:
        page.get_by_test_id("stDownloadButton").get_by_role("button").click()
    assert download.value.suggested_filename.startswith(f"order-list-{store}-")
    text = Path(download.value.path()).read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    header = text.splitlines()[0].split(",")
    assert header == [
        "store_id",
        "item_id",
        "order_quantity",
        "on_hand",
        "reorder_point",
        "order_up_to",
        "stockout_risk",
    ]
    wanted = dashboard.predictions.filter((pl.col("store_id") == store) & (pl.col("order_quantity") > 0))
    assert wanted.height > 0  # the demo chain has something to order in every store
    assert len(rows) == wanted.height
    assert {r["store_id"] for r in rows} == {store}
    by_item = dict(wanted.select("item_id", "order_quantity").iter_rows())
    assert {r["item_id"]: float(r["order_quantity"]) for r in rows} == pytest.approx(by_item, abs=0.05)
    quantities = [float(r["order_quantity"]) for r in rows]
    assert quantities == sorted(quantities, reverse=True)  # largest order first


def test_an_unknown_store_in_the_link_gets_a_clear_warning(urls: dict[str, str], page: Page) -> None:
    open_page(page, f"{urls['Store']}?store=NOPE", "Store")
    warning = page.get_by_test_id("stAlertContentWarning")
    assert warning.count() == 1
    assert "Unknown store NOPE in the link: it is not in the latest scoring" in warning.inner_text()
    assert errors_shown(page) == []
