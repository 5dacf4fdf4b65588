"""The search page in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``) driven by Selenium against a real uvicorn server on 127.0.0.1.

Types a query, sees highlighted snippets, opens "why this result", pages, opens a
document, checks that a document holding ``<script>`` and an ``onerror`` handler stays
inert, checks the page on a narrow screen, and keeps screenshots as artefacts (in
``$RETRIEVAL_SCREENSHOTS`` when set, else the test's temporary folder).
Skipped, with the reason, only when Chromium, its driver or Selenium is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import warnings
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the 'serve' extra (starlette) is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="the 'serve' extra (uvicorn) is not installed")
webdriver = pytest.importorskip("selenium.webdriver",
                                reason="selenium is not installed (pip install selenium)")

from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from retrieval.lifecycle import build_index  # noqa: E402
from retrieval.serve import ServedIndex, create_app  # noqa: E402

pytestmark = pytest.mark.slow

SCRIPT_DOC = ("Onerror notes <script>window.__pwned = 1; document.title = 'pwned'</script>\n"
              "<img src=x onerror=\"window.__pwned = 2\"> <b>bold</b> glacier\n")


def _browser_paths():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("no Chromium here: install Debian's chromium and chromium-driver "
                    "(apt-get install -y chromium chromium-driver; .ci/run does)")
    return chromium, driver


@pytest.fixture(scope="module")
def server(tmp_path_factory, sample_dir):
    folder = tmp_path_factory.mktemp("browser")
    docs = folder / "docs"
    shutil.copytree(sample_dir / "docs", docs)
    (docs / "evil.txt").write_text(SCRIPT_DOC, encoding="utf-8")
    build_index([docs], folder / "notes.idx")
    app = create_app({"notes": ServedIndex("notes", folder / "notes.idx", warm=False)})
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        assert time.monotonic() < deadline, "the server did not start in 60 s"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(30)
    sock.close()


@pytest.fixture(scope="module")
def driver():
    chromium, chromedriver = _browser_paths()
    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1100,900"):
        opts.add_argument(arg)
    opts.binary_location = chromium
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        drv = webdriver.Chrome(service=Service(chromedriver), options=opts)
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    env = os.environ.get("RETRIEVAL_SCREENSHOTS")
    folder = Path(env) if env else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def wait(driver, condition, timeout=30):
    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,)
                         ).until(lambda d: condition(d))


def visible(driver, css):
    return [e for e in driver.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()]


def first_rank(driver):
    ranks = visible(driver, ".result .rank")
    return ranks[0].text if ranks else None


def search_for(driver, text):
    box = driver.find_element(By.ID, "q")
    box.clear()
    box.send_keys(text, Keys.ENTER)


def test_search_page(server, driver, shots):
    driver.get(server + "/")
    wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    assert driver.switch_to.active_element.get_attribute("id") == "q"   # focus starts there

    search_for(driver, "glaciers move")
    wait(driver, lambda d: len(visible(d, ".result")) == 10)
    assert first_rank(driver) == "#1"
    assert visible(driver, ".result h3 .open")[0].text == "How Glaciers Move"
    marks = [m.text.lower() for m in driver.find_elements(By.CSS_SELECTOR, ".snippet mark")]
    assert marks and all(m.startswith(("glacier", "mov")) for m in marks)
    assert float(visible(driver, ".result .score")[0].text) < 0
    driver.save_screenshot(str(shots / "results.png"))

    # why this result: the per-term breakdown, opened from the keyboard
    why = visible(driver, ".why")[0]
    why.send_keys(Keys.ENTER)
    wait(driver, lambda d: len(visible(d, ".explain tbody tr")) >= 3)
    terms = [r.find_elements(By.TAG_NAME, "td")[0].text
             for r in visible(driver, ".explain tbody tr")]
    assert {"glacier", "move"} <= set(terms) and "score" in terms
    assert why.get_attribute("aria-expanded") == "true"
    driver.save_screenshot(str(shots / "explain.png"))

    # the next page, then back
    driver.find_element(By.ID, "next").click()
    wait(driver, lambda d: first_rank(d) == "#11")
    assert "Page 2" in driver.find_element(By.ID, "page-label").text
    driver.find_element(By.ID, "prev").click()
    wait(driver, lambda d: first_rank(d) == "#1")

    # a document with its matches marked, opened from the keyboard; Escape goes back
    visible(driver, ".result h3 .open")[0].send_keys(Keys.ENTER)
    wait(driver, lambda d: d.find_element(By.ID, "doc-view").is_displayed())
    assert driver.find_element(By.ID, "doc-title").text == "geology/glacier-flow.txt"
    assert not driver.find_element(By.ID, "pager").is_displayed()
    assert not driver.find_element(By.ID, "results").is_displayed()
    doc_marks = [m.text.lower() for m in driver.find_elements(By.CSS_SELECTOR, "#doc-text mark")]
    assert len(doc_marks) >= 5 and "glaciers" in doc_marks
    driver.save_screenshot(str(shots / "document.png"))
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    wait(driver, lambda d: not d.find_element(By.ID, "doc-view").is_displayed())
    assert len(visible(driver, ".result")) == 10

    # the settings panel: another model changes the ranking label
    driver.find_element(By.ID, "settings-toggle").click()
    wait(driver, lambda d: d.find_element(By.ID, "settings").is_displayed())
    driver.find_element(By.CSS_SELECTOR, "#model option[value='jm']").click()
    assert not driver.find_element(By.ID, "mu").is_displayed()
    driver.find_element(By.ID, "lam").send_keys("0.7")
    search_for(driver, "glaciers move")
    wait(driver, lambda d: "jm(lam=0.7)" in d.find_element(By.ID, "status").text)
    driver.save_screenshot(str(shots / "screenshot.png"))
    driver.find_element(By.CSS_SELECTOR, "#model option[value='dirichlet']").click()
    driver.find_element(By.ID, "settings-toggle").click()


def test_markup_in_documents_is_inert(server, driver, shots):
    driver.get(server + "/")
    wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    search_for(driver, "onerror pwned")
    wait(driver, lambda d: len(visible(d, ".result")) >= 1)
    assert visible(driver, ".result .docid")[0].text == "evil.txt"
    assert "<script>" in visible(driver, ".snippet")[0].text
    visible(driver, ".result h3 .open")[0].click()
    wait(driver, lambda d: d.find_element(By.ID, "doc-view").is_displayed())
    shown = driver.find_element(By.ID, "doc-text").text
    assert "<script>window.__pwned = 1;" in shown and "<img src=x onerror=" in shown
    time.sleep(0.5)   # an injected handler would have fired by now
    assert driver.execute_script("return typeof window.__pwned") == "undefined"
    assert driver.title != "pwned"
    for css in ("#doc-text script", "#doc-text img", "#doc-text b", "#results script",
                "#results img"):
        assert driver.find_elements(By.CSS_SELECTOR, css) == []
    driver.save_screenshot(str(shots / "inert.png"))


def test_narrow_screen(server, driver, shots):
    driver.set_window_size(380, 800)
    try:
        driver.get(server + "/#q=ice+sheets")
        wait(driver, lambda d: len(visible(d, ".result")) >= 1)
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"the page is {overflow}px wider than a 380px screen"
        driver.save_screenshot(str(shots / "narrow.png"))
    finally:
        driver.set_window_size(1100, 900)
