"""The Akana API Platform (Community Manager) client."""

from .client import KNOWN_API_VERSIONS, AkanaClient
from .tickets import TICKET_STATES

__all__ = ["KNOWN_API_VERSIONS", "TICKET_STATES", "AkanaClient"]
