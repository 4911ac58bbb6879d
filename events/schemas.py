"""JSON Schemas of the event payloads, generated from the models.

``python -m events.schemas`` rewrites ``events/schemas/*.json``; a test fails when they are stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from events.models import EVENT_MODELS

SCHEMA_DIR = Path(__file__).parent / "schemas"


def render() -> dict[str, str]:
    """File name -> schema text, for every event type."""
    files = {}
    for event_type, model in sorted(EVENT_MODELS.items()):
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"{event_type}.json",
            "x-cloudevent-type": event_type,
            **model.model_json_schema(),
        }
        files[f"{event_type}.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return files


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(exist_ok=True)
    written = []
    for name, text in render().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write():
        sys.stdout.write(f"{path}\n")
