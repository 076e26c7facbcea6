"""Read-API parameters (SPEC §7): what is accepted, and 400s that name the culprit."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from sinks.queries import Scope
from streams.web.api import PERSON_PARAMS, SITE_PARAMS, BadParameter, parse_query

ZONE = ZoneInfo("Asia/Shanghai")
ALL = SITE_PARAMS | PERSON_PARAMS


def test_scope_names_map_to_the_cli_scope():
    at, scope = parse_query(
        {"at": "2022-03-15T19:00:00+08:00", "site": "S1", "team": "T1", "district": "浦东新区"},
        ALL,
        ZONE,
    )
    assert at == datetime(2022, 3, 15, 11, tzinfo=UTC)
    assert scope == Scope(site_id="S1", team_id="T1", district="浦东新区")


def test_an_unencoded_plus_in_at_is_read_as_plus():
    at, _ = parse_query({"at": "2022-03-15T19:00:00 08:00"}, ALL, ZONE)
    assert at == datetime(2022, 3, 15, 11, tzinfo=UTC)


def test_at_defaults_to_now():
    at, scope = parse_query({}, ALL, ZONE)
    assert abs((datetime.now(UTC) - at).total_seconds()) < 5 and scope == Scope()


@pytest.mark.parametrize(
    ("query", "allowed", "culprit"),
    [
        ({"at": "2022-03-15T19:00:00"}, ALL, "at"),
        ({"at": "yesterday"}, ALL, "'yesterday'"),
        ({"sity": "上海市"}, ALL, "'sity'"),
        ({"org": "union"}, SITE_PARAMS, "'org'"),
        ({"site_id": "S1"}, ALL, "'site_id'"),
    ],
)
def test_bad_parameters_are_named(query, allowed, culprit):
    with pytest.raises(BadParameter, match=culprit):
        parse_query(query, allowed, ZONE)
