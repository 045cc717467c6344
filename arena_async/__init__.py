"""arena_async: an asyncio client for the Arena PLM and Akana API Platform REST APIs.

Example::

    import arena_async

    async with arena_async.ArenaClient(email=..., password=..., workspace_id=...) as arena:
        refs = await arena.items.tickets.list(item_guid)
"""

from .akana import AkanaClient
from .arena import ArenaClient
from .bulk import BulkRun
from .errors import (
    APIError,
    ArenaAsyncError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ErrorDetail,
    LoginError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExhaustedError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
    TransportError,
)
from .models import (
    Action,
    AuthoringUser,
    Comment,
    CommentsPreview,
    Image,
    ItemReference,
    ItemSummary,
    ItemTicketReference,
    Outcome,
    Page,
    Quota,
    Stats,
    TargetResource,
    Ticket,
    TicketSummary,
    TrainingPlanSummary,
    TrainingRecord,
    Url,
)
from .policies import QuotaPolicy, RetryPolicy

__version__ = "0.1.0"

__all__ = [
    "APIError",
    "Action",
    "AkanaClient",
    "ArenaAsyncError",
    "ArenaClient",
    "AuthenticationError",
    "AuthoringUser",
    "BadRequestError",
    "BulkRun",
    "Comment",
    "CommentsPreview",
    "ConflictError",
    "ErrorDetail",
    "Image",
    "ItemReference",
    "ItemSummary",
    "ItemTicketReference",
    "LoginError",
    "NotFoundError",
    "Outcome",
    "Page",
    "PermissionDeniedError",
    "Quota",
    "QuotaExhaustedError",
    "QuotaPolicy",
    "RateLimitError",
    "ResponseFormatError",
    "RetryPolicy",
    "ServerError",
    "Stats",
    "TargetResource",
    "Ticket",
    "TicketSummary",
    "TrainingPlanSummary",
    "TrainingRecord",
    "TransportError",
    "Url",
    "__version__",
]
