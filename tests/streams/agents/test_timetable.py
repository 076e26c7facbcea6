from streams.agents.timetable import Timetable


def test_due_keys_pop_once_in_time_order_and_superseded_times_are_skipped():
    t = Timetable()
    t.set("S1", 30)
    t.set("S2", 10)
    t.set("S1", 20)  # moved earlier: the entry at 30 is stale
    t.set("S3", 50)
    t.set("S3", None)  # nothing due any more
    assert t.pop_due(5) == []
    assert t.pop_due(25) == ["S2", "S1"]
    assert t.pop_due(100) == []
    assert len(t) == 0
