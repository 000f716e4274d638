"""The example shop's flag, end to end: the frontend asks OFREP and shows its new section to exactly the users
the flag picks (@example.com users, and the 10 % split of the others)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from shipyard.flags.evaluate import evaluate
from shipyard.spec.render import render
from tests.controlplane import free_port
from tests.examples.test_shop_apps import APPS_DIR, Launcher, http_request

from .ofrep_server import OfrepServer


@pytest.fixture
def frontend(tmp_path: Path) -> Iterator[tuple[str, object]]:
    flag_set = render(APPS_DIR.parent, "prod").flags
    assert flag_set is not None
    launcher = Launcher(tmp_path)
    try:
        with OfrepServer(flag_set) as ofrep:
            catalog = launcher.start("catalog")
            app = launcher.start("frontend", {"CATALOG_URL": catalog.url, "ORDERS_URL": f"http://127.0.0.1:{free_port()}",
                                              "SHIPYARD_OFREP_URL": ofrep.url})
            yield app.url, flag_set
    finally:
        launcher.close()


def test_the_new_section_follows_the_flag(frontend: tuple[str, object]) -> None:
    url, flag_set = frontend
    page = http_request(f"{url}/?user=ann&email=ann@example.com").text
    assert '<section id="recommendations">' in page
    shown = []
    for index in range(100):
        user = f"customer-{index}"
        summary = http_request(f"{url}/api/summary?user={user}&email={user}@example.org").json()
        expected = evaluate(flag_set, "recommendations", {"targetingKey": user, "email": f"{user}@example.org"}, 0)
        assert summary["recommendations"] is expected.value, user
        shown.append(summary["recommendations"])
    assert 0 < sum(shown) < 30  # about 10 % of 100


def test_without_flags_the_frontend_shows_no_new_section(tmp_path: Path) -> None:
    launcher = Launcher(tmp_path)
    try:
        catalog = launcher.start("catalog")
        app = launcher.start("frontend", {"CATALOG_URL": catalog.url, "ORDERS_URL": f"http://127.0.0.1:{free_port()}",
                                          "SHIPYARD_OFREP_URL": f"http://127.0.0.1:{free_port()}"})
        page = http_request(f"{app.url}/?user=ann&email=ann@example.com")
        assert page.status == 200 and "recommendations" not in page.text
    finally:
        launcher.close()
