"""The store reader: independent queries at once on helper clients (sinks/reader.py)."""

import pytest

from sinks.reader import LocalReader
from sinks.store import StoreError, connect

NAP = "SELECT {n:UInt8} AS n, toUnixTimestamp64Micro(now64(6)) AS began, sleep(0.4) AS nap"


def test_queries_run_at_once_on_helpers_and_come_back_in_order(store, store_url):
    helpers = [connect(store_url, store.database, create=False) for _ in range(2)]
    reader = LocalReader(store, helpers)
    for _ in range(2):  # and again on the same helpers, handed back
        answers = reader.query_all([(NAP, {"n": n}) for n in range(3)])
        assert [a.dicts()[0]["n"] for a in answers] == [0, 1, 2]
        began = sorted(a.dicts()[0]["began"] for a in answers)
        assert began[-1] - began[0] < 400_000  # all three began before the first ended

    alone = LocalReader(store).query_all([(NAP, {"n": n}) for n in range(2)])
    began = [a.dicts()[0]["began"] for a in alone]
    assert began[1] - began[0] >= 400_000  # no helpers: one after another


def test_a_failing_query_on_a_helper_names_its_error_and_frees_the_helper(store, store_url):
    reader = LocalReader(store, [connect(store_url, store.database, create=False)])
    with pytest.raises(StoreError, match="no_such_table"):
        reader.query_all([("SELECT 1", None), ("SELECT * FROM no_such_table", None)])
    assert [a.rows for a in reader.query_all([("SELECT 1", None), ("SELECT 2", None)])] == [
        [[1]],
        [[2]],
    ]
