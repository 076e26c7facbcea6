"""The files under deploy/grafana/, in Grafana's provisioning layout, generated from code.

    deploy/grafana/dashboards/muster-*.json           the dashboards (boards.py)
    deploy/grafana/provisioning/datasources/muster.yaml   the ClickHouse data source, uid fixed
    deploy/grafana/provisioning/dashboards/muster.yaml    a file provider for the JSON above
    deploy/grafana/provisioning/alerting/muster.yaml      the alert rules (boards.RULES)

`muster dashboards build` writes them; a test keeps the checked-in files equal to these.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dashboards.boards import DASHBOARDS, DEFAULT_TZ, alert_rules
from dashboards.grafana import DATASOURCE_TYPE, DATASOURCE_UID

DASHBOARD_DIR = "/var/lib/grafana/dashboards/muster"  # where deploy/ mounts dashboards/

DATASOURCES = {
    "apiVersion": 1,
    "datasources": [
        {
            "name": "muster ClickHouse",
            "type": DATASOURCE_TYPE,
            "uid": DATASOURCE_UID,
            "isDefault": True,
            "editable": False,
            "jsonData": {
                "host": "${CLICKHOUSE_HOST}",
                "port": 9000,
                "protocol": "native",
                "secure": False,
                "username": "${CLICKHOUSE_USER}",
                "defaultDatabase": "${CLICKHOUSE_DATABASE}",
            },
            "secureJsonData": {"password": "${CLICKHOUSE_PASSWORD}"},
        }
    ],
}

PROVIDERS = {
    "apiVersion": 1,
    "providers": [
        {
            "name": "muster",
            "orgId": 1,
            "folder": "muster",
            "folderUid": "muster",
            "type": "file",
            "disableDeletion": False,
            "allowUiUpdates": False,
            "updateIntervalSeconds": 30,
            "options": {"path": DASHBOARD_DIR},
        }
    ],
}


def files(zone: str = DEFAULT_TZ) -> dict[str, str]:
    """Path under deploy/grafana/ -> file text."""
    out = {
        f"dashboards/muster-{name}.json": json.dumps(build(zone), ensure_ascii=False, indent=2)
        + "\n"
        for name, build in DASHBOARDS.items()
    }
    out["provisioning/datasources/muster.yaml"] = to_yaml(DATASOURCES)
    out["provisioning/dashboards/muster.yaml"] = to_yaml(PROVIDERS)
    out["provisioning/alerting/muster.yaml"] = to_yaml(alert_rules())
    return out


def write(root: Path, zone: str = DEFAULT_TZ) -> list[Path]:
    written = []
    for rel, text in files(zone).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def to_yaml(data: Any) -> str:
    """Block-style YAML for dicts, lists and scalars; strings are JSON-quoted (valid YAML)."""
    return "\n".join(_yaml(data, 0)) + "\n"


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(str(value), ensure_ascii=False)


def _yaml(data: Any, indent: int) -> list[str]:
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, dict | list) and value:
                lines.append(f"{pad}{key}:")
                lines.extend(_yaml(value, indent + 1))
            else:
                text = _empty(value) if isinstance(value, dict | list) else _scalar(value)
                lines.append(f"{pad}{key}: {text}")
    elif isinstance(data, list):
        for item in data:
            if isinstance(item, dict | list) and item:
                inner = _yaml(item, indent + 1)
                lines.append(f"{pad}- {inner[0].lstrip()}")
                lines.extend(inner[1:])
            else:
                lines.append(
                    f"{pad}- {_empty(item) if isinstance(item, dict | list) else _scalar(item)}"
                )
    else:
        lines.append(pad + _scalar(data))
    return lines


def _empty(value: dict[str, Any] | list[Any]) -> str:
    return "{}" if isinstance(value, dict) else "[]"
