"""Customer identity tokens: JWT HS256 (PyJWT) whose ``sub`` is the phone number.

An operator's site mints one after its own login::

    jwt.encode({"sub": "13800138000", "exp": int(time.time()) + 3600}, SECRET, algorithm="HS256")
"""

from __future__ import annotations

import re
import time

import jwt

from gateway.errors import Unauthorized

PHONE = re.compile(r"^1[3-9]\d{9}$")


def verify_customer_token(token: str, secret: str) -> str:
    """The proven phone number, or ``Unauthorized`` naming what is wrong (never the token).
    A verified token is remembered (by its text) until it expires: a chat sends it with every message."""
    cached = _verified.get((token, secret))
    if cached is not None and cached[1] > time.time():
        return cached[0]
    phone, exp = _verify(token, secret)
    if len(_verified) > 10_000:
        _verified.clear()
    _verified[(token, secret)] = (phone, exp)
    return phone


_verified: dict[tuple[str, str], tuple[str, float]] = {}


def _verify(token: str, secret: str) -> tuple[str, float]:
    if not secret:
        raise Unauthorized("customer tokens are not accepted: WEBCHAT_JWT_SECRET is not configured")
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["sub", "exp"]})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired") from None
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthorized(f"token lacks the '{exc.claim}' claim") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("invalid token signature or format") from None
    phone = str(claims["sub"])
    if not PHONE.match(phone):
        raise Unauthorized("token subject is not a mainland mobile number")
    return phone, float(claims["exp"])


def mint_customer_token(phone: str, secret: str, ttl: int = 3600) -> str:
    return jwt.encode({"sub": phone, "exp": int(time.time()) + ttl}, secret, algorithm="HS256")
