"""The HTML pages: the customer's chat widget and the operator's pages (agent console, cases, incidents, reports,
audit trail, NLU review, API docs) — one template environment, one rule for the language a page opens in, one way to
serve a page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import jinja2
from aiohttp import web

__all__ = ["PAGES", "TEMPLATES", "page", "ui_lang"]

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
PAGES = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)


def ui_lang(request: web.Request) -> str:
    """``zh`` or ``en``: the ``lang`` query parameter when it names one of them, else English when the browser's
    first language (``Accept-Language``) is English, else Chinese (the product's first language)."""
    lang = request.query.get("lang", "")
    if lang in ("zh", "en"):
        return lang
    return "en" if request.headers.get("Accept-Language", "").lstrip()[:2].lower() == "en" else "zh"


def page(template: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A handler serving ``template`` (``lang``, ``static_prefix``) in the request's language, never cached (the
    page is the same for everyone; what it shows comes from the API behind the sign-in)."""

    async def serve(request: web.Request) -> web.Response:
        html = PAGES.get_template(template).render(lang=ui_lang(request), static_prefix="/static")
        return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})

    serve.__name__ = serve.__qualname__ = f"page:{template}"
    return serve
