"""Generate the published contracts: one JSON Schema per value type and one AsyncAPI document.

Both are derived from the Python types and the catalog; `wayfinder schemas --write` rewrites
them and a unit test fails when the checked-in files drift from the code.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import orjson

from schemas import headers
from schemas.catalog import DEFAULT_CATALOG, Topic

TOPICS = DEFAULT_CATALOG.topics

PUBLISHED_DIR = Path(__file__).parent / "published"
JSON_SCHEMA_DIR = PUBLISHED_DIR / "jsonschema"
ASYNCAPI_PATH = PUBLISHED_DIR / "asyncapi.json"


def _schema_file_name(topic: Topic) -> str:
    return topic.schema_id.split("/")[0] + ".json"


def json_schema(topic: Topic) -> dict:
    """A self-contained JSON Schema (draft 2020-12) for the value type of a topic."""
    (root,), components = msgspec.json.schema_components(
        [topic.value_type], ref_template="#/$defs/{name}"
    )
    name = topic.value_type.__name__
    document = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": topic.schema_id,
        "title": name,
        **components[name],
        "$defs": {k: v for k, v in sorted(components.items()) if k != name},
    }
    if not document["$defs"]:
        del document["$defs"]
    del root
    return document


def asyncapi() -> dict:
    """An AsyncAPI 3.0 document that lists every topic, its key, headers and payload."""
    header_schema = {
        "type": "object",
        "properties": {
            headers.SCHEMA: {"type": "string", "description": "schema id with version, e.g. wayfinder.mesos.Task/1"},
            headers.TRACE: {"type": "string", "description": "trace id of the cluster event behind the change"},
            headers.OBSERVED_NS: {"type": "string", "description": "ns since the epoch when the producer observed it"},
        },
        "required": [headers.SCHEMA, headers.TRACE, headers.OBSERVED_NS],
    }
    channels, operations, messages = {}, {}, {}
    for topic in TOPICS:
        channel_id = topic.alias
        message_id = topic.value_type.__name__
        messages[message_id] = {
            "name": message_id,
            "contentType": "application/json",
            "headers": {"$ref": "#/components/schemas/RecordHeaders"},
            "payload": {"$ref": f"jsonschema/{_schema_file_name(topic)}"},
            "bindings": {"kafka": {"key": {"type": "string", "description": topic.key}}},
        }
        channels[channel_id] = {
            "address": topic.name,
            "description": topic.description
            + (" Compacted table: a null value (tombstone) means deleted." if topic.compacted else ""),
            "messages": {message_id: {"$ref": f"#/components/messages/{message_id}"}},
            "bindings": {
                "kafka": {
                    "partitions": topic.partitions,
                    "topicConfiguration": {"cleanup.policy": [topic.config["cleanup.policy"]]},
                }
            },
        }
        operations[f"subscribe-{channel_id}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": f"Written by {', '.join(topic.writers)}; read by {', '.join(topic.readers)}.",
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Wayfinder topics",
            "version": "1",
            "description": "Kafka topics of Wayfinder. Values are JSON; keys are UTF-8 entity ids.",
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": {"RecordHeaders": header_schema}},
    }


def rendered() -> dict[Path, bytes]:
    """Every published file and its exact bytes."""
    files = {
        JSON_SCHEMA_DIR / _schema_file_name(topic): json_schema(topic) for topic in TOPICS
    }
    files[ASYNCAPI_PATH] = asyncapi()
    return {path: orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n" for path, doc in files.items()}


def write() -> list[Path]:
    JSON_SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
    written = []
    for path, data in rendered().items():
        path.write_bytes(data)
        written.append(path)
    return written
