"""The web dashboard and REST API over a ``FlowRunStore``: ``create_app`` for mounting, ``serve`` to run it."""

from flowrun.web.app import create_app
from flowrun.web.server import serve
from flowrun.web.settings import UiSettings

__all__ = ["UiSettings", "create_app", "serve"]
