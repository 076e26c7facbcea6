"""The metric catalogue: every SPEC §4 metric's name, labels, unit, type and the scopes it
honours, and the organisations' names. The CLI, the read API, the bulletins, the wall and
the Grafana dashboards take their names and labels from here.

The rules that compute each metric are SPEC §4 (docs/contract.md); they are implemented
over the store in sinks/metric_reads.py and the `metrics_at` view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SITE_SCOPES = ("city", "district", "street", "community", "site_id")
PERSON_SCOPES = ("org", "role", "team_id")
SCOPES = SITE_SCOPES + PERSON_SCOPES

Kind = Literal["count", "hours", "ratio"]


@dataclass(frozen=True)
class Metric:
    name: str  # the contract's name: API field, CLI key, store column
    zh: str  # label on Chinese screens
    en: str  # label on English screens
    kind: Kind  # count: an integer; hours: a float in hours; ratio: a float in [0, 1]
    scopes: tuple[str, ...]  # the scopes that narrow it; others leave it as it is
    null_under: tuple[str, ...] = ()  # scopes under which it has no value (null)

    @property
    def is_float(self) -> bool:
        return self.kind != "count"

    def unit(self, lang: str) -> str:
        """The unit printed after a figure: 小时 / h for hours, % for a ratio."""
        if self.kind == "hours":
            return "小时" if lang == "zh" else "h"
        return "%" if self.kind == "ratio" else ""

    def label(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


CATALOGUE = (
    Metric(
        "recruited",
        "招募志愿者",
        "Recruited",
        "count",
        ("org", "team_id"),
        null_under=(*SITE_SCOPES, "role"),
    ),
    Metric("on_post_now", "目前在岗", "On post now", "count", SCOPES),
    Metric("on_post_today", "当日上岗", "On post today", "count", SCOPES),
    Metric("cumulative_people", "累计上岗人数", "People to date", "count", SCOPES),
    Metric("person_times", "累计上岗人次", "Person-times", "count", SCOPES),
    Metric("hours", "上岗总时长", "Service hours", "hours", SCOPES),
    Metric("hours_auto", "未签出待核", "Hours unconfirmed", "hours", SCOPES),
    Metric("teams", "服务队", "Teams to date", "count", SCOPES),
    Metric("sites_active", "点位", "Active sites", "count", SITE_SCOPES),
    Metric("sites_covered", "达标点位", "Sites covered", "count", SITE_SCOPES),
    Metric("coverage", "覆盖率", "Coverage", "ratio", SITE_SCOPES),
    Metric("orphan_checkouts", "无对应签出", "Orphan check-outs", "count", ()),
    Metric("dlq", "拒收记录", "Rejected records", "count", ()),
)
BY_NAME = {m.name: m for m in CATALOGUE}
NAMES = tuple(m.name for m in CATALOGUE)
FLOATS = frozenset(m.name for m in CATALOGUE if m.is_float)
# The three about sites: the Grafana wall counts them from its one read of every site
SITE_METRICS = ("sites_active", "sites_covered", "coverage")
# The bulletin's headline figures, in its order.
HEADLINE = ("recruited", "on_post_now", "on_post_today", "cumulative_people", "person_times")

COVERAGE_TARGET = 0.8  # the default of MUSTER_COVERAGE_TARGET


def coverage_level(coverage: float | None, target: float) -> str:
    """How a coverage figure is coloured on every screen: `low` (red) below the command
    centre's target (MUSTER_COVERAGE_TARGET), `ok` (green) at or above it, `none` (grey)
    with no figure."""
    if coverage is None:
        return "none"
    return "ok" if coverage >= target else "low"


# Organisations the simulated cities and the seed use, by code (SPEC §2: `org` matches
# ^[a-z][a-z0-9_]{0,31}$). A code not listed is shown as it is.
ORGS = {
    "youth_league": ("共青团", "Youth League"),
    "union": ("工会", "Trade unions"),
    "party": ("党员志愿者", "Party members"),
    "womens_federation": ("妇联", "Women's Federation"),
    "social_org": ("社会组织", "Social organisations"),
    "government": ("机关干部", "Government staff"),
}


def org_name(code: str, lang: str) -> str:
    """An organisation's name on screens: from ORGS, else the code itself."""
    names = ORGS.get(code)
    if names is None:
        return code
    return names[0] if lang == "zh" else names[1]
