"""One site's live state (SPEC §6 at T = now): what the site agent keeps and how it changes.

Pure Python: the Faust site agent (streams/agents/live_sites.py) stores a `SiteLive` per site in a
changelogged table and calls `apply_version`, `apply_diffs` and `step`. Times are integers of
microseconds since the epoch (UTC), as in the store.

What is kept per site, and why:
- the site version in force now and any later-dated ones (a `site_upserted` may be dated up
  to 10 minutes ahead: it takes effect when its time comes);
- every shift still on post or due to start, plus the shifts that ended in the last
  `RECENT`: enough to say when coverage was lost or regained (alert times) and to take back
  the last activity when a late event moves a shift's end;
- for shifts forgotten before that, only their latest activities (`ACTIVITY_FLOOR` of them);
- the open alert, and what was last published (a status is published only when it changes).

Alerts follow coverage in event time, not in the order records arrive: each step walks
the site's coverage from where it last stood (the open alert's opening, or the last step)
to now, and every change on the way is an alert event of its own. A worker catching up,
which brings a site's whole day in one message, so opens and resolves the same alerts at
the same times as one that read the records as they came.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from schemas.events import SiteUpserted
from streams.core.person import ShiftChange
from streams.core.rows import from_micros, to_micros
from streams.core.shifts import Shift
from streams.core.status import SiteAttrs, is_covered, iso_micros, shortfall, site_status

RECENT = int(timedelta(hours=2).total_seconds() * 1e6)
# While an alert is open, the shifts that ended up to a day before it opened are kept too: a
# late event may still move its opening earlier (a check-out that ended a shift sooner), and
# a catch-up that brings days of shifts at once walks them from there (`_walk`). No further
# back than the 72 h late events may reach (SPEC §3), and a day more.
BEFORE_OPEN = int(timedelta(hours=24).total_seconds() * 1e6)
KEEP_AT_MOST = int(timedelta(hours=96).total_seconds() * 1e6)
ACTIVITY_FLOOR = 4
ACTIVITY_REASONS = ("check_out", "transfer")  # SPEC §6: ends that count as activity

Version = tuple[int, int, int]  # (ts, partition, offset): SPEC §4 "latest, ties by topic order"


@dataclass(frozen=True, slots=True)
class LiveShift:
    """One version of a shift as the site sees it."""

    shift_id: str
    person_id: str
    role: str
    org: str
    start: int
    end: int
    reason: str
    version: int = 0

    def same_values(self, other: LiveShift) -> bool:
        return self.to_json()[:-1] == other.to_json()[:-1]

    def activities(self) -> list[int]:
        ends = [self.end] if self.reason in ACTIVITY_REASONS else []
        return [self.start, *ends]

    def to_json(self) -> list[Any]:
        return [
            self.shift_id,
            self.person_id,
            self.role,
            self.org,
            self.start,
            self.end,
            self.reason,
            self.version,
        ]

    @classmethod
    def from_json(cls, data: list[Any]) -> LiveShift:
        return cls(*data)


@dataclass(frozen=True, slots=True)
class Diff:
    """SPEC-derived shift change: -1 retracts a version, +1 asserts one."""

    sign: int
    shift: LiveShift


@dataclass
class Step:
    """What changed at one step: the status to publish (None if unchanged), alert objects
    to publish (opened, changed or resolved), and per-(role, org) people on post."""

    status: dict[str, Any] | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)
    on_post_by: dict[tuple[str, str], int] | None = None


@dataclass
class SiteLive:
    site_id: str
    versions: list[tuple[Version, SiteAttrs]] = field(default_factory=list)
    shifts: dict[str, LiveShift] = field(default_factory=dict)
    floor: list[tuple[int, str]] = field(default_factory=list)
    gone: int = 0
    alert: dict[str, Any] | None = None
    resolved: dict[str, Any] | None = None
    alert_seq: int = 0
    published: dict[str, Any] | None = None
    published_by: dict[str, int] = field(default_factory=dict)
    walked: int = 0  # the time up to which alerts follow the shifts kept (the last step)
    dirty: bool = True  # shifts or versions changed since the last step
    settled: int = 0  # when the last alert was resolved: alerts never reach back past it

    # --- inputs -------------------------------------------------------------------------

    def apply_version(self, version: Version, attrs: SiteAttrs, now: int) -> None:
        """A `site_upserted`: kept if it is the latest dated at or before now, or later-dated."""
        if any(v == version for v, _ in self.versions):
            return
        self.dirty = True
        self.versions.append((version, attrs))
        self.versions.sort(key=lambda v: v[0])
        self._promote(now)

    def apply_diffs(self, diffs: list[Diff], now: int) -> None:
        """Retract and assert shift versions; resent diffs change nothing."""
        self.dirty = self.dirty or bool(diffs)
        for diff in diffs:
            shift = diff.shift
            held = self.shifts.get(shift.shift_id)
            if diff.sign < 0:
                if held is not None and held.same_values(shift):
                    del self.shifts[shift.shift_id]
                self.floor = [f for f in self.floor if f[1] != shift.shift_id]
            elif held is None or shift.version > held.version:
                self.floor = [f for f in self.floor if f[1] != shift.shift_id]
                if shift.end > self._keep_from(now):
                    self.shifts[shift.shift_id] = shift
                else:
                    self.shifts.pop(shift.shift_id, None)
                    self._let_go(shift)

    # --- what the site looks like at `now` -------------------------------------------------

    def attrs(self, now: int) -> SiteAttrs | None:
        """The version in force at `now`: the latest dated at or before it."""
        due = [a for v, a in self.versions if v[0] <= now]
        return due[-1] if due else None

    def on_post_at(self, t: int) -> dict[str, int]:
        """Distinct people on post at `t` per role (SPEC §4: start <= t < end)."""
        return next(self._timeline(t, t))[1]

    def last_activity(self, t: int) -> int | None:
        """SPEC §6: latest shift start, or check-out/transfer end, at or before `t`."""
        times = [a for s in self.shifts.values() for a in s.activities() if a <= t]
        times += [a for a, _ in self.floor if a <= t]
        return max(times, default=None)

    def status(self, now: int, zone: ZoneInfo) -> dict[str, Any] | None:
        attrs = self.attrs(now)
        if attrs is None:
            return None
        last = self.last_activity(now)
        return site_status(
            attrs, self.on_post_at(now), None if last is None else from_micros(last), zone
        )

    def next_due(self, now: int) -> int | None:
        """The next moment the status can change with no event: a shift starts or reaches
        its end (SPEC §3 rule 4 closes it at start + MAX), or a later-dated version applies."""
        moments = [m for s in self.shifts.values() for m in (s.start, s.end) if m > now]
        moments += [v[0] for v, _ in self.versions if v[0] > now]
        return min(moments, default=None)

    # --- one step: forget, compare, alert ---------------------------------------------------

    def step(self, now: int, zone: ZoneInfo, republish: bool = False) -> Step:
        """Bring the site to `now` and say what to publish (SPEC §6). `republish` says it
        all again (after a restart: what a crash kept from the store is written anew)."""
        self._promote(now)
        out = Step()
        status = self.status(now, zone)
        if status != self.published or republish:
            out.status = status
            self.published = status
        by = self._on_post_by(now)
        if by != self.published_by or republish:
            out.on_post_by = {
                (role, org): by.get(f"{role}|{org}", 0)
                for key in by.keys() | self.published_by.keys()
                for role, org in [key.split("|", 1)]
            }
            self.published_by = by
        alerts = self._walk(status, now, zone)
        if republish:  # the walk's changes, and the last resolved and the open alert again
            again = [a for a in (self.resolved, self._open_json(zone)) if a is not None]
            alerts = list({a["alert_id"]: a for a in alerts + again}.values())
        out.alerts += alerts
        self.walked = max(self.walked, now)
        self._forget(now)
        return out

    def _open_json(self, zone: ZoneInfo) -> dict[str, Any] | None:
        return None if self.alert is None else self._alert_json(self.alert, None, zone)

    def _walk(
        self, status: dict[str, Any] | None, now: int, zone: ZoneInfo
    ) -> list[dict[str, Any]]:
        """Follow the site's coverage from where alerts last stood to now (SPEC §6): an
        alert opens at each moment the active site stops being covered and is resolved at
        each moment it is covered again. Returns the alerts that changed, each once, as
        they stand after the walk."""
        attrs = self.attrs(now)
        if attrs is None or status is None:
            return []
        in_force = max(v[0] for v, _ in self.versions if v[0] <= now)
        # what changed since the last step may reach back to the open alert's opening;
        # with nothing changed, only the time since the last step is new
        dirty, self.dirty = self.dirty, False
        reach_back = self.alert is not None and dirty
        start = self.alert["opened_us"] if reach_back and self.alert else self.walked
        start = min(max(start, in_force, self.settled), now)
        before = dict(self.alert) if self.alert is not None else None
        changed: dict[str, dict[str, Any]] = {}
        stale = False  # the open alert's opening turned out covered (a late event)
        for i, (t, on_post) in enumerate(self._timeline(start, now)):
            uncovered = attrs.active and not is_covered(attrs, on_post)
            counts = {role: n for role, n in on_post.items() if n > 0}
            numbers = {
                "short": shortfall(attrs.requirements, counts),
                "people": sum(counts.values()),
            }
            if i == 0 and self.alert is not None:
                if not uncovered and reach_back:
                    stale = True  # resolved where the walk began, unless lost again below
                elif not uncovered:
                    self._resolve(t, changed, zone)  # a version taking effect, say
                elif reach_back:
                    # a late event may show cover was lost earlier (or later) than known
                    lost, bounded = self._lost_since(t)
                    held = self.alert["opened_us"]
                    # a run reaching back past what is kept began no later than it shows
                    self.alert |= {"opened_us": min(held, lost) if bounded else lost, **numbers}
            elif uncovered and stale:
                # the open alert moves to where cover was lost again, as the events now show
                assert self.alert is not None
                self.alert |= {"opened_us": t, **numbers}
                stale = False
            elif uncovered and self.alert is None:
                # at the walk's start, a late event may show cover was lost before it
                lost = self._lost_since(t)[0] if i == 0 else t
                self.alert_seq += 1
                alert_id = f"understaffed:{self.site_id}:{self.alert_seq}"
                self.alert = {"alert_id": alert_id, "opened_us": lost, **numbers}
            elif not uncovered and self.alert is not None and not stale:
                self._resolve(t, changed, zone)
        if stale:
            self._resolve(start, changed, zone)
        if self.alert is not None:  # open now: its numbers are the status's
            self.alert |= {"short": status["short"], "people": status["people"]}
            if self.alert != before:
                changed[self.alert["alert_id"]] = self._alert_json(self.alert, None, zone)
        return list(changed.values())

    def _resolve(self, at: int, changed: dict[str, dict[str, Any]], zone: ZoneInfo) -> None:
        assert self.alert is not None
        closed, self.alert = self.alert, None
        self.settled = max(at, closed["opened_us"])
        self.resolved = self._alert_json(closed, self.settled, zone)
        changed[closed["alert_id"]] = self.resolved

    def _alert_json(
        self, alert: dict[str, Any], resolved: int | None, zone: ZoneInfo
    ) -> dict[str, Any]:
        return {
            "alert_id": alert["alert_id"],
            "kind": "understaffed",
            "site_id": self.site_id,
            "opened_at": iso_micros(alert["opened_us"], zone),
            "short": alert["short"],
            "people": alert["people"],
            "resolved_at": iso_micros(resolved, zone),
        }

    def _lost_since(self, now: int) -> tuple[int, bool]:
        """When the site's current run without cover began: the earliest moment from which
        it has not been covered up to now. The shifts kept are every shift on post since
        the last one let go ended, so the run is known back to then, to when the version in
        force took effect, or to the last alert's resolution; a run reaching that far is
        said to begin there, and the second value is True."""
        attrs = self.attrs(now)
        assert attrs is not None
        in_force = max(v[0] for v, _ in self.versions if v[0] <= now)
        bound = min(max(in_force, self.gone, self.settled), now)
        start = now
        for t, on_post in reversed(list(self._timeline(bound, now))):
            if is_covered(attrs, on_post):
                return start, False
            start = t
        return start, True

    def _timeline(self, since: int, until: int) -> Iterator[tuple[int, dict[str, int]]]:
        """People on post per role (as `on_post_at`) at `since` and at every moment in
        (since, until] at which a shift starts or ends: one sweep over the shifts kept."""
        moves: list[tuple[int, int, LiveShift]] = []
        people: dict[str, Counter[str]] = {}
        for s in self.shifts.values():
            if s.start <= since < s.end:
                people.setdefault(s.role, Counter())[s.person_id] += 1
            if since < s.start <= until:
                moves.append((s.start, 1, s))
            if since < s.end <= until and s.start < s.end:
                moves.append((s.end, -1, s))
        moves.sort(key=lambda m: m[0])

        def counts() -> dict[str, int]:
            return {role: len(p) for role, p in people.items() if p}

        yield since, counts()
        i = 0
        while i < len(moves):
            t = moves[i][0]
            while i < len(moves) and moves[i][0] == t:
                _, sign, s = moves[i]
                held = people.setdefault(s.role, Counter())
                held[s.person_id] += sign
                if held[s.person_id] <= 0:
                    del held[s.person_id]
                i += 1
            yield t, counts()

    # --- housekeeping -------------------------------------------------------------------------

    def _promote(self, now: int) -> None:
        """Keep the latest version dated at or before now, and those dated later."""
        current = [i for i, (v, _) in enumerate(self.versions) if v[0] <= now]
        if len(current) > 1:
            del self.versions[: current[-1]]

    def _keep_from(self, now: int) -> int:
        """Shifts that ended at or before this are let go (see BEFORE_OPEN)."""
        if self.alert is None:
            return now - RECENT
        opened: int = self.alert["opened_us"]
        return max(min(now - RECENT, opened - BEFORE_OPEN), now - KEEP_AT_MOST)

    def _forget(self, now: int) -> None:
        keep_from = self._keep_from(now)
        for shift_id, s in list(self.shifts.items()):
            if s.end <= keep_from:
                del self.shifts[shift_id]
                self._let_go(s)

    def _let_go(self, shift: LiveShift) -> None:
        """Stop keeping a shift that ended: keep its activities if among the latest, and
        how late the shifts no longer kept ended."""
        self.gone = max(self.gone, shift.end)
        self.floor += [(a, shift.shift_id) for a in shift.activities()]
        self.floor = sorted(self.floor, reverse=True)[:ACTIVITY_FLOOR]

    def _on_post_by(self, now: int) -> dict[str, int]:
        counts = Counter(
            f"{s.role}|{s.org}" for s in self.shifts.values() if s.start <= now < s.end
        )
        return dict(counts)

    # --- persistence ----------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "v": [[*v, a.to_json()] for v, a in self.versions],
            "s": [s.to_json() for s in self.shifts.values()],
            "f": [list(f) for f in self.floor],
            "g": self.gone,
            "a": self.alert,
            "r": self.resolved,
            "q": self.alert_seq,
            "p": self.published,
            "b": self.published_by,
            "w": self.walked,
            "z": self.settled,
            "d": self.dirty,
        }

    @classmethod
    def from_json(cls, site_id: str, data: dict[str, Any] | None) -> SiteLive:
        if not data:
            return cls(site_id)
        return cls(
            site_id,
            versions=[((v[0], v[1], v[2]), SiteAttrs.from_json(v[3])) for v in data["v"]],
            shifts={s[0]: LiveShift.from_json(s) for s in data["s"]},
            floor=[(f[0], f[1]) for f in data["f"]],
            gone=data["g"],
            alert=data["a"],
            resolved=data["r"],
            alert_seq=data["q"],
            published=data["p"],
            published_by=dict(data["b"]),
            walked=data.get("w", 0),
            settled=data.get("z", 0),
            dirty=data.get("d", True),
        )


def recall_site(
    site_id: str,
    versions: Iterable[tuple[Any, ...]],
    shifts: Iterable[tuple[Any, ...]],
    alerts: Iterable[tuple[Any, ...]],
    status: tuple[int, int | None] | None,
    now: int,
    zone: ZoneInfo,
) -> SiteLive:
    """A site's live state rebuilt from what the store holds (sinks/recall.py), for a
    worker that lost its table: versions `(ts, partition, offset, name, city, district,
    street, community, kind, requirements, active, lat, lon)`, shifts as they stand
    `(shift_id, person_id, role, org, start, end, reason)` (from `recall_since` on), alerts
    `(alert_id, opened, short, people, resolved or None)` and the last status written
    `(at, last_activity)`. Alerts go on from the stored ones (the open one stays open, the
    next gets the next number), and from the time the last status was written."""
    live = SiteLive(site_id)
    for ts, partition, offset, name, city, district, *rest in versions:
        street, community, kind, requirements, active, lat, lon = rest
        attrs = SiteAttrs(
            site_id, name, city, district, street or None, community or None, kind or None,
            {str(r): int(m) for r, m in requirements.items()}, bool(active), lat, lon,
        )  # fmt: skip
        live.apply_version((ts, partition, offset), attrs, now)
    resolved: tuple[int, dict[str, Any], int] | None = None
    for alert_id, opened, short, people, closed in alerts:
        seq = int(alert_id.rsplit(":", 1)[1])
        live.alert_seq = max(live.alert_seq, seq)
        alert = {"alert_id": alert_id, "opened_us": opened, "short": dict(short), "people": people}
        if closed is None:
            live.alert = alert
        elif resolved is None or seq > resolved[0]:
            resolved = (seq, alert, closed)
    if resolved is not None:
        live.settled = resolved[2]
        live.resolved = live._alert_json(resolved[1], resolved[2], zone)
    keep_from = live._keep_from(now)
    live.gone = keep_from  # what ended before is not read back: runs reaching it are bounded
    if status is not None:
        live.walked = status[0]
        if status[1] is not None and status[1] <= keep_from:
            live.floor = [(status[1], "")]
    live.apply_diffs([Diff(1, LiveShift(*shift)) for shift in shifts], now)
    return live


def recall_since(now: int, max_shift: int) -> int:
    """The earliest start of a shift `recall_site` may keep (times in microseconds)."""
    return now - KEEP_AT_MOST - max_shift


def live_shift(shift: Shift, person_id: str, version: int) -> LiveShift:
    """A derived shift (SPEC §3) as a site sees it."""
    return LiveShift(
        shift.shift_id,
        person_id,
        shift.role,
        shift.org,
        to_micros(shift.start),
        to_micros(shift.end),
        shift.reason,
        version,
    )


def diffs_by_site(person_id: str, changes: Iterable[ShiftChange]) -> dict[str, list[Diff]]:
    """Each change as a retraction of the old version and an assertion of the new, grouped
    by the shift's site (a shift never changes site: it is its check-in's)."""
    out: dict[str, list[Diff]] = {}
    for c in changes:
        diffs = out.setdefault(c.new.site_id, [])
        if c.old is not None:
            diffs.append(Diff(-1, live_shift(c.old, person_id, c.version)))
        diffs.append(Diff(1, live_shift(c.new, person_id, c.version)))
    return out


def site_version(event: SiteUpserted, partition: int, offset: int) -> tuple[Version, SiteAttrs]:
    attrs = SiteAttrs(
        site_id=event.site_id,
        name=event.name,
        city=event.city,
        district=event.district,
        street=event.street,
        community=event.community,
        kind=event.kind,
        requirements=dict(event.requirements),
        active=event.active,
        lat=event.lat,
        lon=event.lon,
    )
    return (to_micros(event.ts), partition, offset), attrs


TICK = b'{"type":"tick"}'
REPUBLISH = b'{"type":"tick","republish":true}'


def diffs_message(diffs: list[Diff]) -> bytes:
    return json.dumps(
        {"type": "diffs", "d": [[d.sign, *d.shift.to_json()] for d in diffs]}
    ).encode()


def site_message(version: Version, attrs: SiteAttrs) -> bytes:
    return json.dumps({"type": "site", "v": list(version), "a": attrs.to_json()}).encode()


def apply_message(state: SiteLive, value: bytes, now: int) -> bool:
    """Fold one message of the site topic into `state`; True if it asks to republish."""
    body = json.loads(value)
    kind = body["type"]
    if kind == "diffs":
        state.apply_diffs([Diff(d[0], LiveShift.from_json(d[1:])) for d in body["d"]], now)
    elif kind == "site":
        ts, partition, offset = body["v"]
        state.apply_version((ts, partition, offset), SiteAttrs.from_json(body["a"]), now)
    return bool(body.get("republish"))
