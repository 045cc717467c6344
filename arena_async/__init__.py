"""arena_async: an asyncio client for the Arena PLM and Akana API Platform REST APIs.

Example::

    import arena_async

    async with arena_async.ArenaClient(email=..., password=..., workspace_id=...) as arena:
        refs = await arena.items.tickets.list(item_guid)
"""

from ._share import RedisShare, Share, SQLiteShare
from .akana import AkanaClient
from .akana.tickets import TicketFilters
from .arena import ArenaClient
from .bulk import BulkRun
from .credentials import DirectoryLogin, GivenCookies, GivenSession, Login, OAuthClient
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
    ShareMisconfiguredError,
    ShareUnavailableError,
    TransportError,
)
from .models import (
    Action,
    AdditionalAttribute,
    AuthoringUser,
    CategorySummary,
    Comment,
    CommentsPreview,
    Image,
    Item,
    ItemReference,
    ItemSummary,
    ItemTicketReference,
    LifecyclePhaseSummary,
    OnShape,
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
    UserSummary,
)
from .policies import QuotaPolicy, RetryPolicy

__version__ = "0.1.0"

__all__ = [
    "APIError",
    "Action",
    "AdditionalAttribute",
    "AkanaClient",
    "ArenaAsyncError",
    "ArenaClient",
    "AuthenticationError",
    "AuthoringUser",
    "BadRequestError",
    "BulkRun",
    "CategorySummary",
    "Comment",
    "CommentsPreview",
    "ConflictError",
    "ErrorDetail",
    "Image",
    "Item",
    "ItemReference",
    "ItemSummary",
    "ItemTicketReference",
    "LifecyclePhaseSummary",
    "LoginError",
    "NotFoundError",
    "OnShape",
    "Outcome",
    "Page",
    "PermissionDeniedError",
    "Quota",
    "QuotaExhaustedError",
    "QuotaPolicy",
    "RateLimitError",
    "ResponseFormatError",
    "RetryPolicy",
    "RedisShare",
    "SQLiteShare",
    "ServerError",
    "Share",
    "ShareMisconfiguredError",
    "ShareUnavailableError",
    "Stats",
    "TargetResource",
    "TicketFilters",
    "Ticket",
    "TicketSummary",
    "TrainingPlanSummary",
    "TrainingRecord",
    "TransportError",
    "Url",
    "UserSummary",
    "__version__",
]

# Outcome's two kinds and the models' dict/JSON helpers (issue 14).
from .models._wire import to_dict, to_json
from .models.common import Failure, Success

__all__ += ["Failure", "Success", "to_dict", "to_json"]

# Credentials as objects: ArenaClient(auth=...), AkanaClient(auth=...).
__all__ += ["DirectoryLogin", "GivenCookies", "GivenSession", "Login", "OAuthClient"]
