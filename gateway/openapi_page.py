"""``GET /docs``: the OpenAPI document as a page, rendered on the server from the document itself (no script, no
renderer to vendor: it works offline and under the pages' Content-Security-Policy). ``?lang=en`` or ``zh``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway.pages import PAGES, ui_lang

METHOD_ORDER = ("get", "post", "put", "patch", "delete", "options")


@dataclass(frozen=True, slots=True)
class Line:
    """One operation as the page shows it."""

    anchor: str
    method: str
    path: str
    summary: str
    role: str
    security: list[str]
    description: str
    parameters: list[dict[str, Any]]
    body: list[tuple[str, str, str]]  # media type, the component it names (or ""), schema (pretty JSON)
    responses: list[tuple[str, str, list[str]]]  # status, description, media types


def _pretty(schema: Any) -> str:
    return json.dumps(schema, ensure_ascii=False, indent=2)


def _schema(doc: dict[str, Any], schema: dict[str, Any]) -> tuple[str, str]:
    """A body's schema to show: a ``$ref`` resolved one level (and named, for the link to its component)."""
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        name = ref.rsplit("/", 1)[1]
        return name, _pretty(doc["components"]["schemas"][name])
    return "", _pretty(schema)


def _response(doc: dict[str, Any], answer: dict[str, Any]) -> tuple[str, list[str]]:
    if "$ref" in answer:
        answer = doc["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
    return answer.get("description", ""), list(answer.get("content", {}))


def _line(doc: dict[str, Any], method: str, path: str, op: dict[str, Any], lang: str) -> Line:
    body = [(media, *_schema(doc, c["schema"])) for media, c in op.get("requestBody", {}).get("content", {}).items()]
    responses = [(status, *_response(doc, answer)) for status, answer in op["responses"].items()]
    security = sorted({name for alt in op.get("security", []) for name in alt})
    summary = op.get("x-summary-zh") if lang == "zh" and op.get("x-summary-zh") else op["summary"]
    return Line(op.get("operationId", f"{method}-{path}"), method.upper(), path, summary, op.get("x-role", ""),
                security, op.get("description", ""), op.get("parameters", []), body, responses)  # fmt: skip


def view(doc: dict[str, Any], lang: str) -> list[tuple[str, str, list[Line]]]:
    """Sections (tag, its description, its operations) in the document's tag order."""
    by_tag: dict[str, list[Line]] = {}
    for path, item in doc["paths"].items():
        for method in sorted(item, key=lambda m: METHOD_ORDER.index(m) if m in METHOD_ORDER else 99):
            op = item[method]
            by_tag.setdefault((op.get("tags") or ["other"])[0], []).append(_line(doc, method, path, op, lang))
    described = {t["name"]: t.get("description", "") for t in doc.get("tags", [])}
    order = [*described, *(t for t in by_tag if t not in described)]
    return [(tag, described.get(tag, ""), by_tag[tag]) for tag in order if tag in by_tag]


def render(request: web.Request, doc: dict[str, Any]) -> str:
    lang = ui_lang(request)
    schemas = [(name, _pretty(schema)) for name, schema in doc["components"]["schemas"].items()]
    return PAGES.get_template("pages/api_docs.html").render(
        lang=lang, static_prefix="/static", info=doc["info"], sections=view(doc, lang), schemas=schemas,
        security=doc["components"]["securitySchemes"], version=doc["openapi"])  # fmt: skip
