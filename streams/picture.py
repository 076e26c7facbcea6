"""The picture bulletin: one PNG page for the evening meeting (`muster bulletin --png FILE`).

The headline figures and the bulletin's sentence, people on post over the day by district,
service hours by organisation, coverage, and the most understaffed sites, all at one cutoff
and from the same queries as the CLI, the API and the wall. Drawn with Pillow in a CJK font
found on the machine (Debian's fonts-noto-cjk; `make up` and `make test` install it).
"""

from __future__ import annotations

import glob
import re
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from PIL import Image, ImageDraw, ImageFont

from schemas.errors import MusterError
from schemas.metrics import BY_NAME, coverage_level, org_name
from sinks.queries import Scope, metrics, on_post_series
from sinks.reader import Reader
from sinks.store import ch_time
from streams.bulletin import bulletin_en, bulletin_zh, wan_hours

WIDTH, HEIGHT, MARGIN = 1600, 2260, 70
TILES = ("recruited", "on_post_today", "cumulative_people", "person_times", "hours", "on_post_now")
BG, PANEL, LINE = "#ffffff", "#f3f6fb", "#d5deeb"
INK, DIM, BLUE, GREEN, RED = "#14213d", "#5b6b86", "#1f6feb", "#1a9e5a", "#d93a3a"
COLOURS = ["#1f6feb", "#1a9e5a", "#e8890c", "#d93a3a", "#8a5cf5", "#0fa3a8", "#e0529c", "#8f9b2f"]

FONT_GLOBS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-{weight}.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-{weight}.ttc",
    "/usr/share/fonts/**/NotoSansCJK*-{weight}.tt[cf]",
    "/usr/share/fonts/**/NotoSansSC-{weight}.[ot]tf",
    "/usr/share/fonts/**/SourceHanSans*-{weight}.tt[cf]",
)

# Words of the page besides the metrics' labels (schemas/metrics.py).
TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "title": "志愿者上岗情况通报",
        "at": "截至 {:%Y年%m月%d日 %H:%M}",
        "series": "各区在岗人数（当日）",
        "orgs": "各单位上岗时长（小时）",
        "coverage": "点位覆盖率",
        "covered": "达到岗位配置要求 {} / {} 个点位",
        "worst": "缺员最多的点位",
        "cols": "点位|区|缺员|在岗",
        "none": "无缺员点位",
        "target": "目标 {}%",
        "total": "全市合计",
        "foot": "muster · 数据截至上述时间，口径见 docs/contract.md §4",
    },
    "en": {
        "title": "Volunteer deployment bulletin",
        "at": "As of {:%Y-%m-%d %H:%M}",
        "series": "People on post today, by district",
        "orgs": "Service hours by organisation",
        "coverage": "Site coverage",
        "covered": "{} of {} sites meet their staffing minimums",
        "worst": "Most understaffed sites",
        "cols": "Site|District|Short|On post",
        "none": "No site is short of staff",
        "target": "target {}%",
        "total": "All districts",
        "foot": "muster · figures at the cutoff above, as defined in docs/contract.md §4",
    },
}

ORG_SQL = (
    "SELECT org, hours AS service_hours FROM org_hours_at(at = {at:String}) "
    "ORDER BY service_hours DESC, org"
)
WORST_SQL = (
    "SELECT name, district, short, people FROM site_board_at(at = {at:String}) "
    "WHERE active AND NOT covered ORDER BY short DESC, people ASC, site_id LIMIT 8"
)


@dataclass
class Fonts:
    regular: str
    bold: str

    def get(self, size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
        path = self.bold if bold else self.regular
        index = 2 if path.endswith(".ttc") and "CJK" in path else 0  # the SC face of a CJK .ttc
        return ImageFont.truetype(path, size, index=index)


def find_fonts() -> Fonts:
    """A CJK sans-serif on this machine, or a MusterError that says how to get one."""
    found: dict[str, str] = {}
    for weight in ("Regular", "Bold"):
        for pattern in FONT_GLOBS:
            hits = sorted(glob.glob(pattern.format(weight=weight), recursive=True))
            if hits:
                found[weight] = hits[0]
                break
    if "Regular" not in found:
        try:
            out = subprocess.run(
                ["fc-match", "-f", "%{file}", "sans-serif:lang=zh-cn"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout.strip()
        except OSError:
            out = ""
        if out and Path(out).exists() and ("CJK" in out or "SC" in out):
            found["Regular"] = out
    if "Regular" not in found:
        raise MusterError(
            "no CJK font found for the picture bulletin: install Debian's fonts-noto-cjk "
            "(sudo apt-get install fonts-noto-cjk) or use --lang en with such a font"
        )
    return Fonts(found["Regular"], found.get("Bold", found["Regular"]))


def gather(
    reader: Reader, at: datetime, zone: ZoneInfo, figures: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Everything the page shows, at cutoff `at` (`figures`: the city-wide metrics at `at`,
    when the caller has them already)."""
    parameters = {"at": ch_time(at)}
    return {
        "metrics": figures if figures is not None else metrics(reader, at, zone, Scope()),
        "series": on_post_series(reader, at, zone),
        "orgs": [(str(o), float(h)) for o, h in reader.query(ORG_SQL, parameters).rows],
        "worst": [tuple(r) for r in reader.query(WORST_SQL, parameters).rows],
    }


def render(data: dict[str, Any], at: datetime, lang: str, path: Path, target: float = 0.8) -> Path:
    text, fonts = TEXT[lang], find_fonts()
    m = data["metrics"]
    img = Image.new("RGB", (WIDTH, HEIGHT), BG)
    d = ImageDraw.Draw(img)
    f = fonts.get

    # header
    d.rectangle((0, 0, WIDTH, 170), fill="#14213d")
    d.text((MARGIN, 40), text["title"], font=f(58, True), fill="#ffffff")
    d.text((MARGIN, 116), text["at"].format(at), font=f(30), fill="#c9d6ee")
    y = 200
    lead = (bulletin_zh if lang == "zh" else bulletin_en)(m, at)
    y = _paragraph(d, lead, f(27), MARGIN, y, WIDTH - 2 * MARGIN, INK, 40) + 20

    # headline tiles, 3 x 2
    tile_w, tile_h, gap = (WIDTH - 2 * MARGIN - 2 * 24) // 3, 150, 24
    for i, name in enumerate(TILES):
        metric = BY_NAME[name]
        label, unit, value = metric.label(lang), metric.unit(lang), m[name]
        x0 = MARGIN + (i % 3) * (tile_w + gap)
        y0 = y + (i // 3) * (tile_h + gap)
        d.rounded_rectangle((x0, y0, x0 + tile_w, y0 + tile_h), 14, fill=PANEL, outline=LINE)
        d.text((x0 + 26, y0 + 18), label, font=f(28), fill=DIM)
        shown = _figure(value, hours=metric.kind == "hours", lang=lang)
        d.text((x0 + 26, y0 + 58), shown, font=f(62, True), fill=BLUE)
        if unit:
            w = d.textlength(shown, font=f(62, True))
            d.text((x0 + 36 + w, y0 + 88), unit, font=f(28), fill=DIM)
    y += 2 * tile_h + gap + 40

    # people on post over the day, by district
    y = _heading(d, text["series"], f, y)
    _line_chart(d, data["series"], f, (MARGIN, y, WIDTH - MARGIN, y + 380), text["total"])
    y += 380 + 70

    # hours by organisation | coverage
    half = (WIDTH - 2 * MARGIN - 40) // 2
    _heading(d, text["orgs"], f, y)
    _heading(d, text["coverage"], f, y, MARGIN + half + 40)
    y += 56
    orgs = [(org_name(org, lang), hours) for org, hours in data["orgs"][:8]]
    _bars(d, orgs, f, (MARGIN, y, MARGIN + half, y + 340))
    _coverage(d, m, text, f, (MARGIN + half + 40, y, WIDTH - MARGIN, y + 340), target)
    y += 340 + 50

    # most understaffed sites
    y = _heading(d, text["worst"], f, y)
    _table(d, data["worst"], text, f, y)

    d.text((MARGIN, HEIGHT - 56), text["foot"], font=f(22), fill=DIM)
    img.save(path, "PNG", optimize=True)
    return path


def _figure(value: float | None, hours: bool, lang: str) -> str:
    if value is None:
        return "—"
    if hours:
        if lang == "zh" and value >= 10_000:
            return wan_hours(value).removesuffix("小时")  # 52.5万余
        return f"{value:,.0f}"
    return f"{int(value):,}"


def _heading(d: ImageDraw.ImageDraw, title: str, f: Any, y: int, x: int = MARGIN) -> int:
    d.rectangle((x, y + 6, x + 8, y + 40), fill=BLUE)
    d.text((x + 22, y), title, font=f(34, True), fill=INK)
    return y + 56


def _paragraph(
    d: ImageDraw.ImageDraw, body: str, font: Any, x: int, y: int, width: int, fill: str, step: int
) -> int:
    """Draw `body` wrapped to `width`, between words, or between characters in Chinese (no
    spaces there); return the next y."""
    for para in body.splitlines():
        line = ""
        for token in re.findall(r"[\x21-\x7e]+\s*|.", para):
            if line and d.textlength(line + token.rstrip(), font=font) > width:
                d.text((x, y), line.rstrip(), font=font, fill=fill)
                y += step
                line = token.lstrip()
            else:
                line += token
        if line:
            d.text((x, y), line, font=font, fill=fill)
            y += step
    return y


def _line_chart(
    d: ImageDraw.ImageDraw,
    series: dict[str, Any],
    f: Any,
    box: tuple[int, int, int, int],
    total: str,
) -> None:
    """The city's total (dark) and the busiest districts at the cutoff, over the day."""
    x0, y0, x1, y1 = box
    legend_h, axis_w, axis_h = 44, 60, 34
    px0, py0, px1, py1 = x0 + axis_w, y0, x1, y1 - axis_h - legend_h
    times = [datetime.fromisoformat(t) for t in series["times"]]
    day0 = datetime.fromisoformat(series["day_start"])
    lines = sorted(
        ((name, vals) for name, vals in series["people"].items()), key=lambda nv: -nv[1][-1]
    )
    summed = [sum(v[i] for _, v in lines) for i in range(len(times))]
    lines = lines[: len(COLOURS) - 1]
    colours = [INK, *COLOURS]
    lines = [(total, summed), *lines] if summed else lines
    top = max([1, *(v for _, vals in lines for v in vals)])
    top = _nice(top)

    def px(t: datetime) -> float:
        return px0 + (px1 - px0) * (t - day0).total_seconds() / 86400

    def py(v: float) -> float:
        return py1 - (py1 - py0) * v / top

    for k in range(5):
        v = top * k / 4
        d.line((px0, py(v), px1, py(v)), fill=LINE, width=1)
        d.text((px0 - 10, py(v)), f"{v:,.0f}", font=f(24), fill=DIM, anchor="rm")
    for hour in range(0, 25, 3):
        x = px0 + (px1 - px0) * hour / 24
        d.text((x, py1 + 8), f"{hour:02d}:00", font=f(24), fill=DIM, anchor="ma")
    for i, (_name, vals) in reversed(list(enumerate(lines))):
        points = [(px(t), py(v)) for t, v in zip(times, vals, strict=True)]
        if len(points) > 1:
            d.line(points, fill=colours[i], width=5 if i == 0 else 3, joint="curve")
    lx, ly = x0, y1 - legend_h + 10
    for i, (name, vals) in enumerate(lines):
        colour = colours[i]
        label = f"{name} {vals[-1]:,}"
        d.rectangle((lx, ly + 6, lx + 18, ly + 24), fill=colour)
        d.text((lx + 26, ly), label, font=f(22), fill=INK)
        lx += 26 + int(d.textlength(label, font=f(22))) + 30
    if not lines:
        d.text((px0 + 20, py0 + 20), "—", font=f(30), fill=DIM)


def _bars(
    d: ImageDraw.ImageDraw, rows: list[tuple[str, float]], f: Any, box: tuple[int, int, int, int]
) -> None:
    x0, y0, x1, y1 = box
    if not rows:
        d.text((x0, y0), "—", font=f(30), fill=DIM)
        return
    label_w = 230
    step = (y1 - y0) / max(len(rows), 1)
    top = max(h for _, h in rows) or 1
    for i, (org, hours) in enumerate(rows):
        y = y0 + i * step
        d.text((x0, y + step / 2), org, font=f(24), fill=INK, anchor="lm")
        w = (x1 - x0 - label_w - 130) * hours / top
        d.rounded_rectangle(
            (x0 + label_w, y + 8, x0 + label_w + max(w, 2), y + step - 8), 6, fill=BLUE
        )
        d.text(
            (x0 + label_w + w + 12, y + step / 2),
            f"{hours:,.0f}",
            font=f(24),
            fill=DIM,
            anchor="lm",
        )


def _coverage(
    d: ImageDraw.ImageDraw,
    m: dict[str, Any],
    text: dict[str, Any],
    f: Any,
    box: tuple[int, int, int, int],
    target: float,
) -> None:
    x0, y0, x1, _y1 = box
    d.rounded_rectangle(box, 14, fill=PANEL, outline=LINE)
    share = float(m["coverage"] or 0)
    colour = GREEN if coverage_level(share, target) == "ok" else RED
    d.text((x0 + 30, y0 + 30), f"{share * 100:.1f}%", font=f(96, True), fill=colour)
    bar = (x0 + 30, y0 + 170, x1 - 30, y0 + 214)
    d.rounded_rectangle(bar, 10, fill="#e4e9f2")
    if share > 0:
        d.rounded_rectangle(
            (bar[0], bar[1], bar[0] + (bar[2] - bar[0]) * share, bar[3]), 10, fill=colour
        )
    covered = text["covered"].format(m["sites_covered"], m["sites_active"])
    d.text((x0 + 30, y0 + 240), covered, font=f(28), fill=DIM)
    d.text((x0 + 30, y0 + 284), text["target"].format(round(target * 100)), font=f(28), fill=DIM)


def _table(
    d: ImageDraw.ImageDraw, rows: list[tuple[Any, ...]], text: dict[str, Any], f: Any, y: int
) -> None:
    if not rows:
        d.text((MARGIN, y), text["none"], font=f(28), fill=DIM)
        return
    cols = (MARGIN, MARGIN + 760, WIDTH - MARGIN - 260, WIDTH - MARGIN)
    heads = text["cols"].split("|")
    d.text((cols[0], y), heads[0], font=f(24), fill=DIM)
    d.text((cols[1], y), heads[1], font=f(24), fill=DIM)
    d.text((cols[2] + 100, y), heads[2], font=f(24), fill=DIM, anchor="ra")
    d.text((cols[3], y), heads[3], font=f(24), fill=DIM, anchor="ra")
    y += 40
    for name, district, short, people in rows:
        d.line((MARGIN, y - 6, WIDTH - MARGIN, y - 6), fill=LINE, width=1)
        d.text((cols[0], y), _clip(d, str(name), f(28), 730), font=f(28), fill=INK)
        d.text((cols[1], y), str(district), font=f(28), fill=INK)
        d.text((cols[2] + 100, y), str(short or "—"), font=f(28, True), fill=RED, anchor="ra")
        d.text((cols[3], y), str(people), font=f(28), fill=INK, anchor="ra")
        y += 46


def _clip(d: ImageDraw.ImageDraw, s: str, font: Any, width: int) -> str:
    if d.textlength(s, font=font) <= width:
        return s
    while s and d.textlength(s + "…", font=font) > width:
        s = s[:-1]
    return s + "…"


def _nice(top: float) -> float:
    """A round axis maximum at or above `top`."""
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10_000):
        if top <= step * 4:
            return float(step * 4)
    return float(top)
