"""Settings of the web dashboard: who may see it, what it may do, and how much it sends.

Read once from arguments, then ``FLOWRUN_UI_*`` variables, and checked at the
boundary: ``check_exposure`` refuses to serve on any address but loopback
without a secret, so the run history (inputs, outputs, error messages) is never
published to a network by accident.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass

from oltp.errors import InvalidArgument

TOKEN_VARIABLE = "FLOWRUN_UI_TOKEN"
ACTIONS_VARIABLE = "FLOWRUN_UI_ACTIONS"
MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class UiSettings:
    """How the dashboard serves.

    ``token``: when set, every request needs ``Authorization: Bearer <token>`` or HTTP basic auth
    with the token as password (any user name; browsers ask for it themselves).
    ``actions``: allow the write actions (retry a step); only together with a token.
    ``heartbeat``: seconds between keep-alive comments on the event stream.
    ``insights_ttl``: seconds the per-flow figures and top errors are reused before being asked again
    (in the background: callers get the kept answer meanwhile).
    ``warm_insights``: compute them as the server starts, before the first page asks.
    ``max_response_bytes``: a larger answer is refused with 413 instead of being sent.
    ``max_field_chars``: JSON fields of a run detail longer than this are cut (the full value has its own URL).
    """

    token: str | None = None
    actions: bool = False
    heartbeat: float = 15.0
    insights_ttl: float = 60.0
    warm_insights: bool = True
    max_response_bytes: int = 16 * 1024 * 1024
    max_field_chars: int = 64 * 1024

    def __post_init__(self) -> None:
        if self.token is not None and len(self.token) < MIN_TOKEN_LENGTH:
            raise InvalidArgument(f"{TOKEN_VARIABLE} must be at least {MIN_TOKEN_LENGTH} characters long")
        if self.actions and self.token is None:
            raise InvalidArgument(f"actions need authentication: set {TOKEN_VARIABLE} as well")
        if self.heartbeat <= 0 or self.insights_ttl < 0:
            raise InvalidArgument("heartbeat must be positive and insights_ttl not negative")
        if self.max_response_bytes < 1024 or self.max_field_chars < 64:
            raise InvalidArgument("max_response_bytes must be >= 1024 and max_field_chars >= 64")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, actions: bool | None = None) -> UiSettings:
        """Settings from ``FLOWRUN_UI_TOKEN`` and ``FLOWRUN_UI_ACTIONS`` (1/true/yes), ``actions`` overriding."""
        env = os.environ if environ is None else environ
        token = env.get(TOKEN_VARIABLE) or None
        if actions is None:
            actions = env.get(ACTIONS_VARIABLE, "").strip().lower() in ("1", "true", "yes", "on")
        return cls(token=token, actions=actions)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, settings: UiSettings) -> None:
    """Refuse to serve on a non-loopback address without a token."""
    if not host:
        raise InvalidArgument("--host must not be empty")
    if not is_loopback(host) and settings.token is None:
        raise InvalidArgument(
            f"refusing to serve on {host} without authentication: set {TOKEN_VARIABLE}"
            f" (at least {MIN_TOKEN_LENGTH} characters), or bind to 127.0.0.1"
        )
