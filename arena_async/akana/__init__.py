"""The Akana API Platform (Community Manager) client."""

from .client import KNOWN_API_VERSIONS, AkanaClient

__all__ = ["KNOWN_API_VERSIONS", "AkanaClient"]
