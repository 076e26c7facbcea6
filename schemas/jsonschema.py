"""JSON Schema of every event and the DLQ record, for site-app developers.

`python -m schemas.jsonschema` rewrites `schemas/json/`; a test keeps the files in sync.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from schemas.dlq import DeadLetter
from schemas.events import AnyEvent

JSON_DIR = Path(__file__).parent / "json"


def documents() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema document."""
    event = TypeAdapter(AnyEvent).json_schema(mode="validation")
    event["title"] = "muster event (SPEC §2)"
    dlq = DeadLetter.model_json_schema()
    return {"event.schema.json": event, "dlq.schema.json": dlq}


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main() -> None:
    JSON_DIR.mkdir(exist_ok=True)
    for name, doc in documents().items():
        (JSON_DIR / name).write_text(render(doc), encoding="utf-8")
        print(f"wrote {JSON_DIR / name}")


if __name__ == "__main__":
    main()
