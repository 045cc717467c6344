"""arena_async: an asyncio client for the Arena PLM and Akana API Platform REST APIs.

Example::

    import arena_async

    async with arena_async.ArenaClient(email=..., password=..., workspace_id=...) as arena:
        refs = await arena.items.tickets.list(item_guid)
"""

from ._cache import AnswerInfo
from ._share import RedisShare, Share, SQLiteShare
from .akana import AkanaClient
from .akana.tickets import TicketFilters
from .arena import ArenaClient
from .arena.items import GuidBatch
from .bulk import BulkRun
from .credentials import DirectoryLogin, GivenCookies, GivenSession, Login, OAuthClient
from .errors import (
    AnswerTooLargeError,
    APIError,
    ArenaAsyncError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ErrorDetail,
    LoginError,
    LookupFailedError,
    NotFoundError,
    PermissionDeniedError,
    ProxyError,
    QuotaExhaustedError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
    ShareMisconfiguredError,
    ShareUnavailableError,
    TLSCertificateError,
    TransportError,
)
from .models import (
    Action,
    AdditionalAttribute,
    AuthoringUser,
    BomItem,
    BomLine,
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
from .policies import CachePolicy, QuotaPolicy, RetryPolicy

__version__ = "0.1.0"

__all__ = [
    "APIError",
    "Action",
    "AdditionalAttribute",
    "AkanaClient",
    "AnswerInfo",
    "ArenaAsyncError",
    "ArenaClient",
    "AnswerTooLargeError",
    "AuthenticationError",
    "AuthoringUser",
    "BomItem",
    "BomLine",
    "BadRequestError",
    "BulkRun",
    "CachePolicy",
    "CategorySummary",
    "Comment",
    "CommentsPreview",
    "ConflictError",
    "ErrorDetail",
    "GuidBatch",
    "Image",
    "Item",
    "ItemReference",
    "ItemSummary",
    "ItemTicketReference",
    "LifecyclePhaseSummary",
    "LoginError",
    "LookupFailedError",
    "NotFoundError",
    "OnShape",
    "Outcome",
    "Page",
    "PermissionDeniedError",
    "ProxyError",
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
    "TLSCertificateError",
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

# Outcome's two kinds and the models' dict/JSON helpers.
from .models._wire import to_dict, to_json
from .models.common import Failure, Success

__all__ += ["Failure", "Success", "to_dict", "to_json"]

# Credentials as objects: ArenaClient(auth=...), AkanaClient(auth=...).
__all__ += ["DirectoryLogin", "GivenCookies", "GivenSession", "Login", "OAuthClient"]
