"""The command-centre bulletin in the style of the seeds (seed 002, Shanghai, 2022-03-15)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any


def wan_hours(hours: float) -> str:
    """Hours the way bulletins print them: 52.5万余小时, 336小时, 60余小时."""
    if hours >= 10_000:
        tenths = math.floor(hours / 1_000) / 10
        more = "余" if hours > tenths * 10_000 else ""
        return f"{tenths:g}万{more}小时"
    whole = math.floor(hours)
    return f"{whole}{'余' if hours > whole else ''}小时"


def zh_time(at: datetime) -> str:
    text = f"{at.year}年{at.month}月{at.day}日{at.hour}时"
    return text + (f"{at.minute}分" if at.minute else "")


def bulletin_zh(m: dict[str, Any], at: datetime) -> str:
    lead = (
        f"截至{zh_time(at)}，全市共招募志愿者{m['recruited']}名，当日上岗{m['on_post_today']}人，"
        f"累计上岗{m['cumulative_people']}人、{m['person_times']}人次，"
        f"上岗总时长{wan_hours(m['hours'])}。"
    )
    detail = (
        f"目前在岗{m['on_post_now']}人，服务队{m['teams']}支；点位{m['sites_active']}个，"
        f"达到岗位配置要求{m['sites_covered']}个，覆盖率{m['coverage']:.1%}；"
        f"上岗总时长{m['hours']:.2f}小时，其中未签出待核{m['hours_auto']:.2f}小时；"
        f"无对应签出{m['orphan_checkouts']}条，拒收记录{m['dlq']}条。"
    )
    return lead + "\n" + detail


def bulletin_en(m: dict[str, Any], at: datetime) -> str:
    when = f"{at:%H:%M} on {at.day} {at:%B %Y}"
    lead = (
        f"As of {when}, {m['recruited']:,} volunteers have been recruited city-wide; "
        f"{m['on_post_today']:,} went on post today; {m['cumulative_people']:,} people have "
        f"served {m['person_times']:,} person-times, {m['hours']:,.1f} service hours in all."
    )
    detail = (
        f"On post now: {m['on_post_now']:,}. Teams to date: {m['teams']:,}. Sites: "
        f"{m['sites_active']:,} active, {m['sites_covered']:,} staffed to their minimums "
        f"({m['coverage']:.1%}). Hours credited without a check-out (to verify): "
        f"{m['hours_auto']:,.2f}. Check-outs without a shift: {m['orphan_checkouts']:,}; "
        f"records rejected: {m['dlq']:,}."
    )
    return lead + "\n" + detail
