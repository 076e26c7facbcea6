"""Finding the holes Faust's recovery race leaves in acked offsets (streams/gaps.py)."""

from types import SimpleNamespace

from streams.gaps import GapMender, holes


def consumer(acked, committed, in_flight=()):
    return SimpleNamespace(
        _acked=acked,
        _committed_offset=committed,
        _unacked_messages=[SimpleNamespace(tp=tp, offset=o) for tp, o in in_flight],
    )


def test_a_hole_after_the_committed_offset_is_found():
    c = consumer({"p1": [13092, 13093, 13094]}, {"p1": 12988})
    assert holes(c) == {"p1": (12988, 13092)}


def test_contiguous_acks_and_unknown_partitions_are_no_hole():
    c = consumer({"p0": [12989, 12990], "p2": [5], "p3": []}, {"p0": 12988, "p2": None})
    assert holes(c) == {}


def test_a_record_in_flight_below_the_acks_may_still_fill_it():
    c = consumer({"p1": [13092]}, {"p1": 12988}, in_flight=[("p1", 12990)])
    assert holes(c) == {}
    c = consumer({"p1": [13092]}, {"p1": 12988}, in_flight=[("p1", 13100), ("p0", 1)])
    assert holes(c) == {"p1": (12988, 13092)}


def test_only_a_hole_seen_twice_unchanged_is_mended():
    mender = GapMender()
    c = consumer({"p1": [13092]}, {"p1": 12988})
    assert mender.look(c) == {}
    assert mender.look(c) == {"p1": 12988}
    assert mender.look(c) == {}  # asked to seek once; looks again from scratch
    moving = GapMender()
    assert moving.look(consumer({"p1": [13092]}, {"p1": 12988})) == {}
    assert moving.look(consumer({"p1": [13095]}, {"p1": 12990})) == {}
