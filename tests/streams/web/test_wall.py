"""The built-in wall at GET /, opened in a real browser (headless Chromium) on a real
worker: its headline figures equal /api/metrics, it shows the understaffed sites, the open
alerts and the day's chart, switches to English, and loads nothing from outside muster."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from sinks.queries import METRICS
from tests import browser
from tests.scenarios import Scenario, cin, cout, site
from tests.workers import Worker, produce


class Figures(HTMLParser):
    """data-metric -> data-value, and every src/href the page names."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self.links: list[str] = []
        self.text: list[str] = []
        self.at = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body":
            self.at = str(a.get("data-at") or "")
        if "data-metric" in a:
            self.values[str(a["data-metric"])] = str(a.get("data-value") or "")
        self.links += [str(a[k]) for k in ("src", "href") if a.get(k)]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Figures:
    figures = Figures()
    figures.feed(html)
    return figures


def test_the_wall_in_a_browser_shows_what_the_api_says(worker: Worker, tmp_path: Path) -> None:
    w = worker
    w.start()
    now = datetime.now(UTC)
    h = lambda hours: (now - timedelta(hours=hours)).isoformat()  # noqa: E731
    s = Scenario()
    s.add("sites", site("S1", h(30), "s1", name="花木采样点", requirements={"guide": 2}))
    s.add("sites", site("S2", h(30), "s2", name="外滩卡口", district="黄浦区", requirements={}))
    s.add("sites", site("S3", h(30), "s3", name="陆家嘴酒店", requirements={"marshal": 1}))
    s.add("events", cin("A", h(3), "a1", role="guide"))
    s.add("events", cin("B", h(2), "b1", sid="S3", role="marshal", org="union"))
    s.add("events", cin("C", h(5), "c1", sid="S2", role="marshal"))
    s.add("events", cout("C", h(4), "c2"))
    s.add("events", cin("D", h(20), "d1", sid="S3", role="marshal"))
    s.add("events", cout("D", h(12), "d2"))
    produce(w, s)

    _settled(w, person_times=4)
    html = browser.dom(w.url + "/")
    page = parse(html)
    assert page.at, "the page names the cutoff of its figures"
    api = w.get(f"/api/metrics?at={quote(page.at)}")[1]
    assert set(METRICS) <= set(page.values), page.values
    for metric in METRICS:
        want = api[metric]
        got = page.values[metric]
        if want is None:
            assert got == ""
        else:
            assert float(got) == float(want), (metric, got, want)
    text = " ".join(page.text)
    assert "花木采样点" in text and "外滩卡口" in text  # understaffed (S1 short a guide; S2 empty)
    assert "陆家嘴酒店" not in re.sub(r"未解除告警.*", "", text)  # S3 is covered
    assert "<polyline" in html  # the day's chart drew its lines
    assert all(not re.match(r"^(https?:)?//", link) for link in page.links), page.links
    assert "数据未更新" not in text  # every read the script made answered
    # one site of three covered: 33.3%, below the default target of 80%, drawn red
    assert api["coverage"] == pytest.approx(1 / 3)
    assert re.search(r'class="panel coverage low"', html), "coverage below target is red"
    assert "共 2 个" in text  # the understaffed list says how many there are
    # an unknown scope value is refused, naming it and the values the store knows
    status, body = w.get("/api/metrics?district=Atlantis")
    assert status == 400 and "Atlantis" in body["error"] and "黄浦区" in body["error"], body

    english = parse(browser.dom(w.url + f"/?lang=en&at={quote(api['at'])}"))
    assert "Volunteers on post" in " ".join(english.text)
    assert english.at == api["at"]  # pinned: the figures at that cutoff, not now
    assert {m: english.values[m] for m in METRICS} == {m: page.values[m] for m in METRICS}

    shot = browser.screenshot(w.url + "/", tmp_path / "wall.png")
    assert shot.stat().st_size > 20_000  # a drawn page, not a blank one


def test_the_wall_serves_its_own_assets_and_a_series_that_adds_up(worker: Worker) -> None:
    w = worker
    w.start()
    now = datetime.now(UTC)
    s = Scenario()
    s.add("sites", site("S1", (now - timedelta(hours=30)).isoformat(), "s1"))
    s.add("events", cin("A", (now - timedelta(minutes=30)).isoformat(), "a1", role="guide"))
    produce(w, s)
    api = _settled(w, person_times=1)
    for asset, kind in (("/wall/wall.js", "javascript"), ("/wall/wall.css", "css")):
        status, _ = _raw(w, asset)
        assert status == (200, kind), asset
    assert _raw(w, "/wall/../worker.py")[0][0] == 404
    status, series = w.get(f"/api/wall/series?at={api['at'].replace('+', '%2B')}")
    assert status == 200
    assert series["times"][-1] == api["at"]
    assert sum(v[-1] for v in series["people"].values()) == api["on_post_now"] == 1
    assert w.get("/api/wall/series?at=yesterday")[0] == 400


def _settled(w: Worker, person_times: int) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, body = w.get("/api/metrics")
        if status == 200 and body["person_times"] == person_times:
            time.sleep(1.5)  # let the live layer publish too
            return dict(w.get("/api/metrics")[1])
        time.sleep(0.2)
    raise AssertionError(f"metrics never settled: {body}")


def _raw(w: Worker, path: str) -> tuple[tuple[int, str], bytes]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(w.url + path, timeout=10) as answer:
            kind = answer.headers.get_content_subtype()
            return (answer.status, kind), answer.read()
    except urllib.error.HTTPError as exc:
        return (exc.code, ""), b""
