"""The dashboard's guard at the door: authentication and security headers, for every request.

A plain ASGI middleware (not Starlette's ``BaseHTTPMiddleware``, which buffers
and would hold the event stream back). With a token configured, a request
passes with ``Authorization: Bearer <token>`` or HTTP basic auth whose password
is the token; anything else gets 401 with a JSON body and a ``WWW-Authenticate``
challenge, so browsers ask for the password and then send it with every
request, the event stream included. Tokens are compared in constant time.

Every response carries a strict Content Security Policy (scripts, styles and
connections from this origin only: no inline script, no CDN), and refuses to
be framed or sniffed.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self';"
    " font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def authorized(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header value carries ``token`` (bearer, or basic auth's password)."""
    if not header:
        return False
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer":
        return hmac.compare_digest(credentials.encode(), token.encode())
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        _, sep, password = decoded.partition(":")
        return bool(sep) and hmac.compare_digest(password.encode(), token.encode())
    return False


class SecurityMiddleware:
    """Checks the token (when one is set) and adds the security headers."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.token is not None:
            header = None
            for name, value in scope["headers"]:
                if name == b"authorization":
                    header = value.decode("latin-1")
            if not authorized(header, self.token):
                await _unauthorized(send)
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _unauthorized(send: Send) -> None:
    body = json.dumps({"error": {"type": "Unauthorized", "message": "authentication required"}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b'Basic realm="flowrun", charset="UTF-8"'),
                *HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
