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
    """The proven phone number, or ``Unauthorized`` naming what is wrong (never the token)."""
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
    return phone


def mint_customer_token(phone: str, secret: str, ttl: int = 3600) -> str:
    return jwt.encode({"sub": phone, "exp": int(time.time()) + ttl}, secret, algorithm="HS256")
