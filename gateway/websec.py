"""Web security at the edge: who the client is behind a proxy, whether the request came over TLS, which
origins may act on the agent console, the security headers of every response, and who may read ``/metrics``.

Proxies: ``X-Forwarded-Proto`` and ``X-Forwarded-For`` are believed only when the TCP peer is listed in
``server.trusted_proxies`` (addresses or networks). Anyone else could send them, so from anyone else they
are ignored: the peer address is the client and the transport says whether it is TLS.

Headers (one middleware, every response it sees before it is sent): ``X-Content-Type-Options: nosniff``,
``Referrer-Policy: no-referrer``, a ``Content-Security-Policy`` — scripts, styles, images and connections
from the gateway's own origin only, no inline script or style, no plugins — and ``frame-ancestors 'none'``
with ``X-Frame-Options: DENY``, except for the customer chat page ``/``, which the widget shows in an iframe
on the operator's sites: there ``frame-ancestors 'self'`` plus ``webchat.allowed_origins``.
``Strict-Transport-Security`` is added in production on requests that came over TLS.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
from collections.abc import Awaitable, Callable

from aiohttp import web
from yarl import URL

from gateway.errors import Forbidden
from gateway.keys import SETTINGS
from gateway.settings import Settings, SettingsError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# the pages: everything from our own origin, nothing inline, nothing framed (except where said)
PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
               "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'")  # fmt: skip
# anything that is not a page (JSON, scripts, styles): it may not run or load anything if opened directly
DATA_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
EMBEDDABLE = frozenset({"/"})  # the customer chat page, shown by widget.js in an iframe on the operator's site
HSTS = "max-age=31536000"


@functools.lru_cache(maxsize=32)
def networks(specs: tuple[str, ...]) -> tuple[Network, ...]:
    """``specs`` (addresses or CIDR networks) parsed; ``SettingsError`` naming a bad one."""
    out = []
    for spec in specs:
        try:
            out.append(ipaddress.ip_network(spec.strip(), strict=False))
        except ValueError:
            raise SettingsError(f"{spec!r} is not an IP address or network (server.trusted_proxies / "
                                "server.metrics_networks)") from None  # fmt: skip
    return tuple(out)


def parse_address(value: str | None) -> Address | None:
    """An address as peers and proxies write it (``1.2.3.4``, ``1.2.3.4:5678``, ``[::1]:80``, ``::1``);
    IPv4-mapped IPv6 becomes IPv4. ``None`` when it is not an address."""
    if not value:
        return None
    value = value.strip()
    if value.startswith("["):
        value = value[1:].split("]", 1)[0]
    elif value.count(":") == 1:  # IPv4 with a port
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def in_networks(address: Address | None, specs: tuple[str, ...]) -> bool:
    return address is not None and any(address in net for net in networks(specs) if net.version == address.version)


def peer(request: web.Request) -> Address | None:
    """The TCP peer (``None`` on a Unix socket)."""
    return parse_address(request.remote)


def settings_of(request: web.Request) -> Settings:
    return request.config_dict[SETTINGS]


def from_trusted_proxy(request: web.Request) -> bool:
    return in_networks(peer(request), settings_of(request).server.trusted_proxies)


def _forwarded_for(request: web.Request) -> list[str]:
    return [p for h in request.headers.getall("X-Forwarded-For", ()) for p in h.split(",") if p.strip()]


def client_address(request: web.Request) -> Address | None:
    """The client: the peer, or — when the peer is a trusted proxy — the nearest address in ``X-Forwarded-For``
    that is not itself a trusted proxy (read right to left, so a client cannot put itself in front)."""
    address = peer(request)
    trusted = settings_of(request).server.trusted_proxies
    if not in_networks(address, trusted):
        return address
    for hop in reversed(_forwarded_for(request)):
        hop_address = parse_address(hop)
        if hop_address is None:
            return None  # garbage in the chain: nobody we can name
        address = hop_address
        if not in_networks(address, trusted):
            return address
    return address


def client_key(request: web.Request) -> str:
    """The client address as text, for counters keyed by client (``unknown`` when there is none)."""
    address = client_address(request)
    return address.compressed if address is not None else "unknown"


def is_secure(request: web.Request) -> bool:
    """Whether the client's request came over TLS: directly, or to a trusted proxy that says so in
    ``X-Forwarded-Proto`` (the value it appended last, i.e. its own)."""
    if request.secure:
        return True
    if not from_trusted_proxy(request):
        return False
    protos = [p.strip().lower() for h in request.headers.getall("X-Forwarded-Proto", ()) for p in h.split(",")]
    return bool(protos) and protos[-1] == "https"


def _origin(value: str) -> str | None:
    try:
        url = URL(value.strip())
        if not url.scheme or not url.host:
            return None
        return str(url.origin()).lower()
    except (ValueError, TypeError, UnicodeError):
        return None


def own_origins(request: web.Request) -> set[str]:
    """The origins a page of this gateway may have: the request's own host (over http or https),
    ``server.public_url`` and ``webchat.allowed_origins`` (the operator's sites)."""
    settings = settings_of(request)
    out = {o for o in (_origin(v) for v in (settings.public_url, *settings.webchat.allowed_origins) if v) if o}
    host = request.host
    if host:
        out |= {o for o in (_origin(f"{scheme}://{host}") for scheme in ("http", "https")) if o}
    return out


def origin_allowed(request: web.Request) -> bool:
    """No ``Origin`` (not a browser, or a same-origin GET) passes; otherwise it must be one of ours."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    parsed = _origin(origin)
    return parsed is not None and parsed in own_origins(request)


def check_origin(request: web.Request) -> None:
    if not origin_allowed(request):
        raise Forbidden("requests from another site's page are refused (Origin is not this gateway's)",
                        zh="拒绝来自其他网站页面的请求（Origin 与本网关不符）", field="Origin")  # fmt: skip


# ---- security headers ---------------------------------------------------------------------------------
def middleware(settings: Settings) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """The headers middleware. Built from the settings so that bad proxy/metrics networks stop start-up."""
    networks(settings.server.trusted_proxies)
    networks(settings.server.metrics_networks)
    ancestors = " ".join(["'self'", *sorted({o for o in map(_origin, settings.webchat.allowed_origins) if o})])
    embeddable_policy = f"{PAGE_POLICY}; frame-ancestors {ancestors}"
    page_policy = f"{PAGE_POLICY}; frame-ancestors 'none'"
    production = settings.server.production

    def apply(request: web.Request, response: web.StreamResponse) -> None:
        if response.prepared:  # a WebSocket upgrade or a stream already sent its headers
            return
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        if "Content-Security-Policy" not in headers:
            if request.path in EMBEDDABLE and response.content_type == "text/html":
                headers["Content-Security-Policy"] = embeddable_policy
            else:
                html = response.content_type == "text/html"
                headers["Content-Security-Policy"] = page_policy if html else DATA_POLICY
                headers.setdefault("X-Frame-Options", "DENY")
        if production and is_secure(request):
            headers.setdefault("Strict-Transport-Security", HSTS)

    @web.middleware
    async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # a redirect or an error that passed the error middleware
            apply(request, exc)
            raise
        apply(request, response)
        return response

    return security_headers


# ---- /metrics -----------------------------------------------------------------------------------------------
def metrics_allowed(request: web.Request) -> bool:
    """Outside production anyone; in production a client in ``server.metrics_networks`` (its address as the
    trusted proxies tell it) or one presenting ``Authorization: Bearer <METRICS_TOKEN>``. A request carrying
    forwarding headers from a peer that is not a trusted proxy is refused: it came through a proxy we do not
    know, so its peer address says nothing about the client."""
    server = settings_of(request).server
    if not server.production:
        return True
    if server.metrics_token:
        scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            sent.strip().encode("utf-8", "surrogatepass"), server.metrics_token.encode("utf-8", "surrogatepass")
        ):
            return True
    forwarded = "X-Forwarded-For" in request.headers or "Forwarded" in request.headers
    if forwarded and not from_trusted_proxy(request):
        return False
    return in_networks(client_address(request), server.metrics_networks)


def guard_metrics(handler: Handler) -> Handler:
    """``handler`` behind ``metrics_allowed``: 403 JSON otherwise."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        if not metrics_allowed(request):
            raise Forbidden("metrics are readable only from server.metrics_networks or with the METRICS_TOKEN "
                            "bearer token", zh="仅允许指定网络或持有 METRICS_TOKEN 的请求读取监控指标")  # fmt: skip
        return await handler(request)

    return guarded
