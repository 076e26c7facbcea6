"""`muster dashboards push`: the folder, data source, dashboards and alert rules into a
running Grafana through its HTTP API, with grafana-client (the maintained fork of the
archived grafana-api). Idempotent: what exists (by uid) is updated, what does not is made.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dashboards.boards import DASHBOARDS, alert_rules
from dashboards.grafana import DATASOURCE_TYPE, DATASOURCE_UID
from schemas.errors import MusterError

FOLDER_UID = "muster"


@dataclass(frozen=True)
class ClickHouse:
    """How Grafana's server reaches ClickHouse (native protocol)."""

    host: str = "clickhouse"
    port: int = 9000
    user: str = "default"
    password: str = ""
    database: str = "muster"
    secure: bool = False


def datasource(ch: ClickHouse) -> dict[str, Any]:
    return {
        "name": "muster ClickHouse",
        "type": DATASOURCE_TYPE,
        "uid": DATASOURCE_UID,
        "access": "proxy",
        "isDefault": True,
        "jsonData": {
            "host": ch.host,
            "port": ch.port,
            "protocol": "native",
            "secure": ch.secure,
            "username": ch.user,
            "defaultDatabase": ch.database,
        },
        "secureJsonData": {"password": ch.password},
    }


def push(
    url: str, token: str, zone: str, ch: ClickHouse, say: Callable[[str], None] = print
) -> None:
    from grafana_client import GrafanaApi
    from grafana_client.client import GrafanaClientError, GrafanaException

    api = GrafanaApi.from_url(url, credential=token)

    def exists(get: Callable[[], Any]) -> bool:
        try:
            get()
            return True
        except GrafanaClientError as exc:
            if exc.status_code == 404:
                return False
            raise

    try:
        if exists(lambda: api.folder.get_folder(FOLDER_UID)):
            say(f"folder {FOLDER_UID}: exists")
        else:
            api.folder.create_folder("muster", uid=FOLDER_UID)
            say(f"folder {FOLDER_UID}: created")

        source = datasource(ch)
        if exists(lambda: api.datasource.get_datasource_by_uid(DATASOURCE_UID)):
            api.datasource.update_datasource_by_uid(DATASOURCE_UID, source)
            say(f"data source {DATASOURCE_UID}: updated ({ch.host}:{ch.port}/{ch.database})")
        else:
            api.datasource.create_datasource(source)
            say(f"data source {DATASOURCE_UID}: created ({ch.host}:{ch.port}/{ch.database})")

        for build in DASHBOARDS.values():
            board = build(zone)
            api.dashboard.update_dashboard(
                {
                    "dashboard": board,
                    "folderUid": FOLDER_UID,
                    "overwrite": True,
                    "message": "muster dashboards push",
                }
            )
            say(f"dashboard {board['uid']}: saved")

        group = alert_rules()["groups"][0]
        for rule in group["rules"]:
            body = rule | {
                "folderUID": FOLDER_UID,
                "ruleGroup": group["name"],
                "orgID": group["orgId"],
            }
            uid = rule["uid"]
            if exists(functools.partial(api.alertingprovisioning.get_alertrule, uid)):
                api.alertingprovisioning.update_alertrule(uid, body)
                say(f"alert rule {uid}: updated")
            else:
                api.alertingprovisioning.create_alertrule(body)
                say(f"alert rule {uid}: created")
    except GrafanaException as exc:
        raise MusterError(f"Grafana at {url} refused: {exc.status_code} {exc.message}") from exc
    except OSError as exc:
        raise MusterError(f"Grafana at {url} does not answer: {exc}") from exc
