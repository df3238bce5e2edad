"""The HTTP API: validates, stores, publishes, and serves materialised state. It never runs a model."""

from api.app import create_app
from api.settings import ApiSettings

__all__ = ["ApiSettings", "create_app"]
