"""The dashboard in a real browser: headless Chromium driven by Selenium against a real control plane.

Signs in with a `deploy` token, sees the services, watches a canary step forward without a reload,
aborts it, sees the rollback in the rollout and events views, opens the logs. A screenshot of each view
goes to the test's tmp dir; with SHIPYARD_SCREENSHOTS=DIR (e.g. docs/images) also there.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.cli.test_data_plane import endpoint_port
from tests.controlplane import ControlPlane, free_port, wait_for
from tests.load import Load
from tests.projects import probe_service, write_project

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(CHROMEDRIVER is None or shutil.which("chromium") is None,
                                reason="needs Debian's chromium and chromium-driver (scripts/system-deps.sh)")


def canary(version: str) -> dict[str, Any]:
    steps = {"steps": [10, 20, 30, 40, 60, 80, 100], "interval": "2s", "minRequests": 5, "failureThreshold": 2,
             "analysis": [{"metric": "successRate", "min": 90}]}
    return probe_service("alpha", replicas=2, version=version, strategy={"type": "canary", "canary": steps})


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[ControlPlane]:
    project = write_project(tmp_path / "project", [canary("1.0.0"), probe_service("beta")])
    created = ControlPlane(project, tmp_path / "state")
    yield created
    created.teardown()


@pytest.fixture
def browser() -> Iterator[Any]:
    options = Options()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1300",
                     "--disable-gpu"):
        options.add_argument(argument)
    options.binary_location = shutil.which("chromium") or ""
    options.page_load_strategy = "eager"  # the pages keep an event stream open; the DOM is what the test reads
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def text(browser: Any, selector: str) -> str:
    """The element's text; found afresh when the page swapped its content between finding and reading it."""
    for _ in range(20):
        try:
            return str(browser.find_element(By.CSS_SELECTOR, selector).text)
        except StaleElementReferenceException:
            continue
    raise AssertionError(f"{selector}: the page kept replacing it")


def test_sign_in_watch_a_canary_abort_it_and_read_the_logs(plane, browser, tmp_path):
    port = free_port()
    plane.up("--api-listen", f"127.0.0.1:{port}")
    url = f"http://127.0.0.1:{port}"
    token = plane.cli("token", "create", "ops", "--scope", "deploy").stdout.strip()
    shots = [tmp_path / "screenshots", *([Path(os.environ["SHIPYARD_SCREENSHOTS"])]
                                         if os.environ.get("SHIPYARD_SCREENSHOTS") else [])]

    def shoot(name: str) -> None:
        for directory in shots:
            directory.mkdir(parents=True, exist_ok=True)
            assert browser.save_screenshot(str(directory / f"{name}.png"))

    browser.get(url + "/ui")
    assert browser.current_url.endswith("/ui/login")
    shoot("login")
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "sign-in").click()
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, 'tr[data-service="beta"]'), 15, 0.1, "the overview")
    assert text(browser, "#who") == "ops · deploy"
    wait_for(lambda: "live on" in browser.find_element(By.ID, "live").get_attribute("class"), 10, 0.1, "live updates")
    shoot("overview")

    with Load(endpoint_port(plane, "alpha"), clients=2, pause=0.02):
        write_project(plane.project, [canary("2.0.0"), probe_service("beta")])
        browser.get(url + "/ui/rollouts/alpha")
        browser.execute_script("window.loadedOnce = 'yes'")  # gone if the page reloads
        plane.cli("apply")
        wait_for(lambda: text(browser, "#phase") == "progressing" or text(browser, "#step").startswith("1 "),
                 30, 0.1, "the canary to start on the page")
        wait_for(lambda: text(browser, "#step").split()[0] not in ("-", "1"), 40, 0.1, "the canary to take a second step")
        seen = text(browser, "#step")
        assert browser.execute_script("return window.loadedOnce") == "yes"  # no reload: the page updated itself
        assert text(browser, "#rollout-status") == "progressing"
        assert browser.find_elements(By.CSS_SELECTOR, "#timeline li[data-state='done']")
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#decisions tbody tr td"), 10, 0.1, "a decision row")
        wait_for(lambda: text(browser, "#step").split()[0] not in ("-", "1", "2"), 40, 0.1, "a third step (for the chart)")
        assert browser.execute_script("return window.loadedOnce") == "yes"
        points = browser.execute_script("return Chart.getChart('chart-success').data.datasets[0].data.length")
        assert points >= 2  # the chart (Chart.js, under the page's CSP) plots each analysis
        shoot("rollout")
        # the page swaps its content on every change: find the button afresh until one click lands
        wait_for(lambda: browser.find_element(By.ID, "act-abort").click() is None, 10, 0.1, "a click on abort")
        wait_for(lambda: text(browser, "#rollout-status") == "failed", 20, 0.1, "the rollback on the page")
        # (the page may swap its content between finding an element and reading it: read again until it holds)
        wait_for(lambda: "Aborted" in text(browser, "#reason") and text(browser, "#weight") == "0%", 10, 0.1,
                 "the abort's reason and weight 0% on the page")
        assert browser.execute_script("return window.loadedOnce") == "yes"
        shoot("rollout-aborted")
    assert seen

    browser.get(url + "/ui/events?reason=RolledBackAborted")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#events tr[data-reason='RolledBackAborted']"), 10, 0.1,
             "the rollback in the events view")
    browser.get(url + "/ui/events")
    shoot("events")

    browser.get(url + "/ui/instances/alpha")
    wait_for(lambda: "listening on" in text(browser, "#log-lines"), 15, 0.2, "the instance's log lines")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#instances tr[data-instance]")) >= 2  # 2 + a canary stopping
    shoot("instances")
    for page, name in (("/ui/history", "history"), ("/ui/matrix", "versions"), ("/ui/audit", "audit")):
        browser.get(url + page)
        shoot(name)
    audit = text(browser, "#audit")
    assert "ops ui sign-in" in audit and "ops rollout abort alpha ok" in audit
