"""``bots/bss/openapi.yaml`` matches what the reference server registers and what ``codec.dump`` sends."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bots.bss import base
from bots.bss.server import create_bss_app

SPEC_PATH = Path(__file__).resolve().parents[2] / "bots" / "bss" / "openapi.yaml"
METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}
DATACLASSES = (
    "Subscriber", "Balance", "Bucket", "Bill", "BillItem", "Plan", "Vas", "Store", "RoamingRate", "Outage",
    "Window", "Order", "PortingCheck", "Broadband",
)  # fmt: skip
# properties that codec.dump adds on top of a dataclass's fields
EXTRA_PROPERTIES = {"Bucket": {"left_mb"}}
SCHEMA_PREFIX = "#/components/schemas/"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method.upper(), path, item, operation


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_paths_match_the_server_routes(spec: dict[str, Any]) -> None:
    app = create_bss_app(backend=None)  # type: ignore[arg-type]
    served = {(route.method, route.resource.canonical) for route in app.router.routes()
              if route.method != "HEAD" and route.resource is not None}  # fmt: skip
    documented = {(method, path) for method, path, _, _ in _operations(spec)}
    assert served, "the server registers no routes"
    assert documented == served, (
        f"documented but not served: {sorted(documented - served)}; served but not documented: "
        f"{sorted(served - documented)}"
    )


def test_every_post_requires_an_idempotency_key(spec: dict[str, Any]) -> None:
    posts = [(path, item, op) for method, path, item, op in _operations(spec) if method == "POST"]
    assert posts
    for path, item, operation in posts:
        params = [*item.get("parameters", ()), *operation.get("parameters", ())]
        keys = [p for p in params if p.get("in") == "header" and p.get("name", "").lower() == "idempotency-key"]
        assert len(keys) == 1, f"POST {path} does not declare the Idempotency-Key header"
        assert keys[0].get("required") is True, f"POST {path}: the Idempotency-Key header is not required"
        assert keys[0]["schema"]["type"] == "string"


def test_every_ref_resolves_to_a_schema(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    refs = set(_refs(spec))
    assert refs
    for ref in refs:
        assert ref.startswith(SCHEMA_PREFIX), f"{ref} does not point into components/schemas"
        assert ref.removeprefix(SCHEMA_PREFIX) in schemas, f"{ref} does not resolve"


@pytest.mark.parametrize("name", DATACLASSES)
def test_schema_properties_match_the_dataclass(spec: dict[str, Any], name: str) -> None:
    cls = getattr(base, name)
    assert dataclasses.is_dataclass(cls)
    fields = {f.name for f in dataclasses.fields(cls)} | EXTRA_PROPERTIES.get(name, set())
    schema = spec["components"]["schemas"][name]
    assert set(schema["properties"]) == fields
    assert set(schema.get("required", ())) <= fields
