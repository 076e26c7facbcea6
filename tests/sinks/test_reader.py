"""The store reader: independent queries at once on helper clients (sinks/reader.py)."""

import pytest

from sinks.reader import LocalReader, NotOneStatement, execute, run_query
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


@pytest.mark.parametrize(
    "sql", ["SELECT 1; DROP TABLE shifts", "SELECT 1;\nSELECT 2", "SELECT ';'; SELECT 2 -- x"]
)
def test_more_than_one_statement_is_refused_before_it_reaches_the_store(store, sql):
    sent = []
    store.query = lambda *a, **k: sent.append(a)  # type: ignore[method-assign]
    with pytest.raises(NotOneStatement, match="one statement at a time"):
        run_query(store, sql, None)
    assert sent == []


@pytest.mark.parametrize(
    "sql", ["SELECT 1;", "SELECT ';' AS a ; -- done", "SELECT 1 /* ; */", "SELECT 'it\\'s;'"]
)
def test_one_statement_with_semicolons_in_quotes_comments_or_at_the_end_runs(store, sql):
    assert len(run_query(store, sql, None).rows) == 1


def test_a_failed_query_leaves_the_client_answering_the_next_one_right(store):
    """A multi-statement query whose second statement the store refuses left the first
    one's rows for the next query on an embedded client (2 rows for `SELECT 2`, then
    IndexError or UnicodeDecodeError). Sent past the check, as a client could."""
    store.command("CREATE TABLE kept (n UInt8) ENGINE = MergeTree ORDER BY n")
    with pytest.raises(StoreError, match=r"READONLY|readonly"):
        execute(store, "SELECT 1; DROP TABLE kept", None)
    assert run_query(store, "SELECT 2 AS two", None).rows == [[2]]
    assert run_query(store, "SELECT count() FROM kept", None).rows == [[0]]
