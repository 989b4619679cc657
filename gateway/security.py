"""Customer identity: what a client cannot forge.

* JWT HS256 (PyJWT) whose ``sub`` is the phone number, minted by the operator's site after its own login::

      jwt.encode({"sub": "13800138000", "iat": now, "exp": now + 3600}, SECRET, algorithm="HS256")

  ``exp`` is required and a token may live at most ``webchat.max_token_age`` (24 h by default).
* Web chat visitor ids are issued by the server and signed (``<random>.<HMAC>``): a client cannot pick
  another visitor's id.
* The REST channel's sender is the client's own string, so a sender alone is never bound to an account:
  a one-time-code binding issues a secret session, and only requests presenting it share the binding
  (the pipeline's sender is then ``<sender>~<hash of the session>``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import time

import jwt

from gateway.errors import Unauthorized

PHONE = re.compile(r"^1[3-9]\d{9}$")


MAX_TOKEN = 4096


def verify_customer_token(token: str, secret: str, max_age: int = 86400) -> str:
    """The proven phone number, or ``Unauthorized`` naming what is wrong (never the token).
    A verified token is remembered (by its text) until it expires: a chat sends it with every message."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN or not token.isascii():
        raise Unauthorized("invalid token signature or format", zh="身份令牌无效")
    cached = _verified.get((token, secret, max_age))
    if cached is not None and cached[1] > time.time():
        return cached[0]
    phone, exp = _verify(token, secret, max_age)
    if len(_verified) > 10_000:
        _verified.clear()
    _verified[(token, secret, max_age)] = (phone, exp)
    return phone


_verified: dict[tuple[str, str, int], tuple[str, float]] = {}


def _verify(token: str, secret: str, max_age: int) -> tuple[str, float]:
    if not secret:
        raise Unauthorized("customer tokens are not accepted: WEBCHAT_JWT_SECRET is not configured",
                           zh="本服务未启用身份令牌")  # fmt: skip
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["sub", "exp"]})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired", zh="身份令牌已过期") from None
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthorized(f"token lacks the '{exc.claim}' claim", zh="身份令牌缺少必要字段") from None
    except (jwt.InvalidTokenError, ValueError, TypeError):
        raise Unauthorized("invalid token signature or format", zh="身份令牌无效") from None
    phone, exp, iat = claims["sub"], claims["exp"], claims.get("iat")
    if not isinstance(phone, str) or not PHONE.match(phone):
        raise Unauthorized("token subject is not a mainland mobile number", zh="身份令牌中的号码无效")
    if not isinstance(exp, int | float):
        raise Unauthorized("invalid token signature or format", zh="身份令牌无效")
    if exp - (iat if isinstance(iat, int | float) else time.time()) > max_age:
        raise Unauthorized(f"token lifetime is over the allowed {max_age} s", zh="身份令牌有效期过长")
    return phone, float(exp)


def mint_customer_token(phone: str, secret: str, ttl: int = 3600) -> str:
    now = int(time.time())
    return jwt.encode({"sub": phone, "iat": now, "exp": now + ttl}, secret, algorithm="HS256")


# ---- web chat visitors ------------------------------------------------------------------------------
_VISITOR = re.compile(r"^[0-9a-f]{32}\.[0-9a-f]{20}$")


def new_visitor(key: bytes) -> str:
    """A fresh visitor id with its signature: ``<32 hex>.<20 hex>``."""
    raw = secrets.token_hex(16)
    return f"{raw}.{_mac(key, 'visitor', raw)}"


def check_visitor(value: str | None, key: bytes) -> str | None:
    """``value`` when it is a visitor id this server issued (any process sharing the key), else None."""
    if not value or not _VISITOR.match(value):
        return None
    raw, mac = value.split(".")
    return value if hmac.compare_digest(mac, _mac(key, "visitor", raw)) else None


def _mac(key: bytes, purpose: str, value: str) -> str:
    return hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()[:20]


# ---- REST sessions ----------------------------------------------------------------------------------
SESSION = re.compile(r"^[A-Za-z0-9_-]{32,128}$")


def new_session() -> str:
    return secrets.token_urlsafe(32)


def session_sender(sender: str, session: str) -> str:
    """The pipeline's sender for a REST client presenting ``session``: its own namespace, bindings included."""
    return f"{sender}~{hashlib.sha256(session.encode()).hexdigest()[:32]}"


def random_key() -> str:
    return os.urandom(32).hex()
