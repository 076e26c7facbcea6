"""The picture bulletin: drawn from the same figures as `muster metrics`, in a font that
really has Chinese glyphs, as a PNG page."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from clickhouse_connect.driver.client import Client
from PIL import Image, ImageChops, ImageDraw

from sinks.queries import Scope, metrics
from sinks.reader import LocalReader
from streams import picture
from tests.conftest import CITY_NOW, CITY_ZONE


def test_the_font_draws_chinese_not_boxes() -> None:
    """Two different characters drawn in a font without them come out as the same box."""
    font = picture.find_fonts().get(48)
    drawn = []
    for ch in ("岗", "志"):
        img = Image.new("L", (64, 64), 0)
        ImageDraw.Draw(img).text((4, 0), ch, font=font, fill=255)
        drawn.append(img)
    assert ImageChops.difference(*drawn).getbbox() is not None
    assert "CJK" in font.getname()[0] or "SC" in font.getname()[0]


def test_the_page_shows_the_cli_figures(city: Client, tmp_path: Path) -> None:
    at = (CITY_NOW - timedelta(hours=2)).astimezone(CITY_ZONE)
    reader = LocalReader(city)
    data = picture.gather(reader, at, CITY_ZONE)
    assert data["metrics"] == metrics(reader, at, CITY_ZONE, Scope())
    assert abs(sum(h for _, h in data["orgs"]) - data["metrics"]["hours"]) < 1e-6
    last = sum(v[-1] for v in data["series"]["people"].values())
    assert last == data["metrics"]["on_post_now"]
    assert data["worst"], "the simulated city has understaffed sites"
    for lang in ("zh", "en"):
        out = picture.render(data, at, lang, tmp_path / f"bulletin-{lang}.png")
        with Image.open(out) as img:
            assert img.format == "PNG" and img.size == (picture.WIDTH, picture.HEIGHT)
            # most of the page is drawn on, not left blank
            assert len(img.convert("L").getcolors(65536) or []) > 50
