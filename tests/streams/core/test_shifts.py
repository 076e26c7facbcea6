"""SPEC §3 rules, one by one."""

from datetime import UTC, datetime, timedelta

from streams.core.shifts import Move, OpenShift, derive

MAX = timedelta(hours=12)
T0 = datetime(2022, 3, 15, 0, 0, tzinfo=UTC)


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def cin(eid: str, hours: float, site: str = "S1") -> Move:
    return Move(eid, "check_in", h(hours), site, "guide", "union", None)


def cout(eid: str, hours: float) -> Move:
    return Move(eid, "check_out", h(hours))


def summary(moves: list[Move], carry: OpenShift | None = None):
    d = derive(moves, MAX, carry)
    return [(s.shift_id, s.start, s.end, s.reason) for s in d.shifts], sorted(d.orphans)


def test_check_out_closes_the_open_shift():
    assert summary([cin("a", 1), cout("b", 5)]) == ([("a", h(1), h(5), "check_out")], [])


def test_rule1_auto_close_only_strictly_after_max():
    exactly = summary([cin("a", 0), cout("b", 12)])
    assert exactly == ([("a", h(0), h(12), "check_out")], [])
    after = summary([cin("a", 0), cout("b", 12.5)])
    assert after == ([("a", h(0), h(12), "auto")], ["b"])


def test_rule2_check_in_while_open_is_a_transfer():
    shifts, _ = summary([cin("a", 1), cin("b", 3, site="S2"), cout("c", 4)])
    assert shifts == [("a", h(1), h(3), "transfer"), ("b", h(3), h(4), "check_out")]


def test_rule2_check_in_exactly_at_max_is_a_transfer_not_auto():
    shifts, _ = summary([cin("a", 0), cin("b", 12)])
    assert shifts[0] == ("a", h(0), h(12), "transfer")


def test_rule3_check_out_with_nothing_open_is_an_orphan():
    assert summary([cout("x", 1), cin("a", 2), cout("b", 3), cout("y", 4)]) == (
        [("a", h(2), h(3), "check_out")],
        ["x", "y"],
    )


def test_rule4_open_after_last_event_closes_at_max():
    assert summary([cin("a", 1)]) == ([("a", h(1), h(13), "auto")], [])


def test_ties_check_out_before_check_in_then_event_id():
    # Same ts: the check-out closes the first shift before the check-in opens the next.
    shifts, orphans = summary([cin("b", 2), cout("z", 2), cin("a", 0)])
    assert shifts == [("a", h(0), h(2), "check_out"), ("b", h(2), h(14), "auto")]
    assert orphans == []
    # Two check-ins at the same ts: the smaller event_id opens first and is transferred.
    shifts, _ = summary([cin("y", 1), cin("x", 1)])
    assert shifts == [("x", h(1), h(1), "transfer"), ("y", h(1), h(13), "auto")]


def test_arrival_order_does_not_matter():
    moves = [cin("a", 1), cout("b", 2), cin("c", 3), cin("d", 20), cout("e", 40)]
    assert summary(moves) == summary(list(reversed(moves)))


def test_carry_continues_a_pruned_walk_exactly():
    moves = [cin("a", 0), cout("b", 2), cin("c", 5), cin("d", 9), cout("e", 30)]
    whole = derive(moves, MAX)
    for cut in range(1, len(moves)):
        head = derive(moves[:cut], MAX)
        tail = derive(moves[cut:], MAX, head.open_after[-1])
        closed_in_head = [
            s for s in whole.shifts if s.shift_id not in {t.shift_id for t in tail.shifts}
        ]
        assert sorted(closed_in_head + list(tail.shifts), key=lambda s: s.start) == list(
            whole.shifts
        )
