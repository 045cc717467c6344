"""The ``arena-async`` command line (typer). Credentials come only from the environment."""

from __future__ import annotations

import asyncio
import enum
import inspect
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import __version__
from ..akana.tickets import DEFAULT_PAGE_SIZE as AKANA_PAGE_SIZE
from ..arena._resource import DEFAULT_PAGE_SIZE as ARENA_PAGE_SIZE
from ..arena._resource import MAX_PAGE_SIZE as ARENA_MAX_PAGE_SIZE
from ..errors import ArenaAsyncError
from . import _records
from ._common import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CliError,
    akana_settings,
    arena_settings,
    auth_advice,
    exit_code_for,
    one_line,
)
from ._demo import run_demo
from ._export import (
    TICKET_FILTERS,
    ExportOptions,
    Selection,
    export_items,
    export_tickets,
    format_for,
)
from ._fakes import akana_kwargs_for, arena_kwargs_for, start_fake_akana, start_fake_arena
from ._logs import ENV as LOG_LEVEL_ENV
from ._logs import LogLevel, level_for, logs_on_stderr
from ._network import fake_share, network_settings
from ._select import Query, read_entries
from ._serve import serve
from ._ui import Reporter

__all__ = ["app", "run"]

PROG = "arena-async"

#: The exit statuses, for the help of every command that runs an export.
EXIT_STATUS = (
    "Exit status: 0 done (or complete already: nothing to do), 1 error, 2 bad usage, 3 "
    "Arena quota exhausted (resumable after the reset), 4 finished but some items failed "
    "for good (listed in <out>.failed.jsonl), 5 the query or filters matched nothing "
    "(nothing is written, the next run asks again; --allow-empty: exit 0 with an empty "
    "output), 130 interrupted by Ctrl-C and 143 by SIGTERM (both resumable)."
)

app: typer.Typer = typer.Typer(
    name=PROG,
    help="Bulk-fetch and export Arena PLM and Akana data, with progress, exact resume "
         "and built-in fake servers. Credentials come from environment variables only "
         "(ARENA_EMAIL, ARENA_PASSWORD, ARENA_WORKSPACE_ID or ARENA_SESSION_ID, or "
         "ARENA_CLIENT_ID, ARENA_CLIENT_SECRET and ARENA_TOKEN_URL for an OAuth machine "
         "user; ARENA_BASE_URL; ARENA_SHARE; AKANA_BASE_URL, AKANA_EMAIL, AKANA_PASSWORD "
         "or AKANA_AUTH_TOKEN + AKANA_TENANT). Behind a company proxy or CA, the standard "
         "HTTPS_PROXY, NO_PROXY and SSL_CERT_FILE are read (or --proxy, --ca-bundle)."
         "\n\n" + EXIT_STATUS,
    no_args_is_help=True,
    add_completion=False,
    # Plain help: no '<bool>' placeholder after flags, option names never cut short.
    rich_markup_mode=None,
    pretty_exceptions_enable=False,  # a traceback with locals could show credentials
    context_settings={"help_option_names": ["-h", "--help"]},
)
export_app = typer.Typer(
    help="Stream records to .jsonl or .csv, resumably.\n\nA checkpoint beside the output "
         "lets an interrupted export (Ctrl-C, quota exhausted) resume where it stopped "
         "when the same command is run again. Run again once finished, an export does "
         "nothing (exit 0) unless --fresh, which exports again and replaces the output "
         "only when the new export completes (for cron).\n\nProgress: bars on a "
         "terminal, else a plain 'progress: ...' line every --progress-interval seconds "
         "(cron, pipes, CI); --progress chooses, --quiet prints only warnings and errors.",
    epilog=EXIT_STATUS,
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(export_app, name="export")


def _fail(message: str, code: int, *, warning: bool = False) -> typer.Exit:
    print(f"{PROG}: {'warning' if warning else 'error'}: {message}", file=sys.stderr,
          flush=True)
    return typer.Exit(code)


def _failed(exc: CliError) -> typer.Exit:
    """:func:`_fail` for an expected failure (its line, status and level)."""
    return _fail(exc.message, exc.exit_code, warning=exc.warning)


def _execute(coro: Coroutine[Any, Any, Any], *, verbose: int = 0,
             log_level: LogLevel | None = None) -> Any:
    """Run a command's coroutine, with the library's logs on stderr as ``-v`` /
    ``--log-level`` ask; expected errors become one line on stderr and an exit status,
    never a traceback."""
    try:
        level = level_for(verbose, log_level)
    except CliError as exc:
        coro.close()  # never run: no "never awaited" warning
        raise _failed(exc) from None
    try:
        with logs_on_stderr(level):
            return asyncio.run(coro)
    except CliError as exc:
        raise _failed(exc) from None
    except ArenaAsyncError as exc:  # before an export began (finding items, a plan)
        advice = auth_advice(exc)
        raise _fail(one_line(exc) + (f"; {advice}" if advice else ""),
                    exit_code_for(exc)) from None
    except KeyboardInterrupt:
        raise _fail("interrupted", EXIT_INTERRUPTED) from None
    except OSError as exc:
        raise _fail(one_line(exc), 1) from None


def _version(value: bool) -> None:
    if value:
        print(f"{PROG} {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Root options."""


class ProgressChoice(enum.StrEnum):
    """--progress values."""

    auto = "auto"
    bars = "bars"
    plain = "plain"
    none = "none"


ProgressOpt = Annotated[ProgressChoice, typer.Option(
    "--progress", help="How progress is shown on stderr: bars (live), plain (a line of "
                       "counts, rate, quota left and ETA every interval), none; auto: "
                       "bars on a terminal, else plain lines (cron, pipes, CI).")]
ProgressEvery = Annotated[float, typer.Option(
    "--progress-interval", min=0.01, metavar="SECONDS",
    help="Seconds between plain progress lines.")]


Verbose = Annotated[int, typer.Option(
    "--verbose", "-v", count=True, show_default=False,
    help="Log what the library does on stderr: -v INFO (logins, quota waits, the share), "
         "-vv DEBUG (every request: method, path, status, time; each retry and why). "
         "Never a password, session id, token or cookie.")]
LogLevelOpt = Annotated[LogLevel | None, typer.Option(
    "--log-level", case_sensitive=False,
    help=f"The library's log level on stderr (error hides its warnings); -v, -vv make "
         f"it at least INFO, DEBUG. Default: ${LOG_LEVEL_ENV} when set, else its warnings "
         f"only, as bare lines.")]


def _reporter(quiet: bool, progress: ProgressChoice, interval: float, *,
              none: bool = False) -> Reporter:
    """The command's reporter: ``quiet`` prints only warnings and errors; ``none`` only
    turns the progress off."""
    return Reporter(quiet=quiet, progress="none" if none else progress.value,
                    interval=interval)


# ---------------------------------------------------------------------------- demo


@app.command()
def demo(
    *,
    items: Annotated[int, typer.Option(min=1, help="Items in the fake workspace.")] = 5000,
    seed: Annotated[int, typer.Option(help="Seed of the fake data.")] = 1,
    concurrency: Annotated[int, typer.Option(min=1, max=512,
                                             help="Requests in flight.")] = 32,
    latency: Annotated[float, typer.Option(min=0.0, help="Fake server latency (s).")] = 0.0,
    fault_rate: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="Share of requests that fail once with 503.")] = 0.002,
    quota: Annotated[int, typer.Option(min=1, help="Fake daily request quota.")] = 100_000,
    tickets: Annotated[int, typer.Option(min=0, help="Akana tickets (0: skip Akana).")] = 1001,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="No progress (bars or lines) and no notes on stderr; the "
                              "summary table on stdout, the demo's result, is still "
                              "printed.")] = False,
    share: Annotated[str | None, typer.Option(
        "--share", metavar="URL", help="Share the session and quota "
                                       "(sqlite:////absolute/path.db, redis://...). Default: "
                                       "none (the demo never uses $ARENA_SHARE or your "
                                       "default share).")] = None,
    progress: ProgressOpt = ProgressChoice.auto,
    progress_interval: ProgressEvery = Reporter.PLAIN_EVERY,
    verbose: Verbose = 0,
    log_level: LogLevelOpt = None,
) -> None:
    """Bulk-fetch a built-in fake workspace, with progress bars and a summary.

    Starts a fake Arena (and Akana) in-process and fetches every item's ticket references,
    item references and training records (and every Akana ticket): no credentials, no
    network.
    """
    code = _execute(run_demo(items=items, seed=seed, concurrency=concurrency,
                             latency=latency, fault_rate=fault_rate, quota=quota,
                             tickets=tickets, notes=not quiet,
                             ui=_reporter(False, progress, progress_interval, none=quiet),
                             arena_extra=_checked(lambda: fake_share(share))),
                    verbose=verbose, log_level=log_level)
    if code:
        raise typer.Exit(code)


# ---------------------------------------------------------------------------- export


class OutputFormat(enum.StrEnum):
    """--format values."""

    jsonl = "jsonl"
    csv = "csv"


Out = Annotated[Path, typer.Option("--out", "-o", help="Output file (.jsonl or .csv).",
                                   dir_okay=False)]
FormatOpt = Annotated[OutputFormat | None, typer.Option(
    "--format", help="Output format (default: from the --out suffix).")]
Concurrency = Annotated[int, typer.Option(min=1, max=256, help="Requests in flight.")]
Restart = Annotated[bool, typer.Option(
    "--restart", help="Discard the checkpoint of an interrupted export and start over.")]
Overwrite = Annotated[bool, typer.Option(
    "--overwrite", help="Replace an existing output that has no checkpoint, at once (it "
                        "is emptied as the run begins; --fresh keeps it until the new "
                        "export completes).")]
FreshOpt = Annotated[bool, typer.Option(
    "--fresh", help="When the output holds this export finished, export again: into "
                    "<out>.fresh (resumable like any export), which replaces the output "
                    "only when it completes. Without it a finished export is not run "
                    "again (exit 0). An interrupted export resumes either way.")]
AllowEmpty = Annotated[bool, typer.Option(
    "--allow-empty", help="A query or filters that match nothing is a result: write the "
                          "empty output (a CSV's header), finish it, exit 0. Without it "
                          "nothing is written, a warning names the selection, and the exit "
                          "status is 5 (a misspelt --category or --state must not pass for "
                          "an empty export).")]
Quiet = Annotated[bool, typer.Option(
    "--quiet", "-q", help="Print nothing but warnings and errors: no progress, notes or "
                          "summary (--plan still prints the plan).")]
Interval = Annotated[float, typer.Option(
    "--checkpoint-interval", min=0.0, help="Seconds between checkpoints.")]
Fake = Annotated[bool, typer.Option(
    "--fake", help="Export from a built-in fake server (no credentials needed).")]
FakeSeed = Annotated[int, typer.Option("--fake-seed", help="With --fake: data seed.")]
FakeLatency = Annotated[float, typer.Option(
    "--fake-latency", min=0.0, help="With --fake: server latency (s).")]
ItemsOpt = Annotated[str | None, typer.Option(
    "--items", "-i", metavar="FILE|-",
    help="Item GUIDs and/or item numbers, one a line ('-': stdin). A line of 16 or 20 "
         "upper-case letters and digits is a GUID, anything else an item number (looked "
         "up in batches of about 50 per request; unknown numbers are listed in "
         "<out>.failed.jsonl); "
         "prefix a line with 'guid:' or 'number:' to say which. With --fake: default "
         "every fake item.")]
NumberOpt = Annotated[str | None, typer.Option(
    "--number", metavar="NUMBER", help="Select the items with this number; a trailing '*' "
                                       "matches a prefix ('PN-10*'). Instead of --items.")]
CategoryOpt = Annotated[str | None, typer.Option(
    "--category", metavar="NAME", help="Select the items of this category (by name).")]
StageOpt = Annotated[str | None, typer.Option(
    "--lifecycle-stage", metavar="STAGE",
    help="Select the items in this lifecycle stage (e.g. IN_PRODUCTION).")]
FakeItems = Annotated[int, typer.Option("--fake-items", min=1,
                                        help="With --fake: items in the workspace.")]
FakeQuota = Annotated[int | None, typer.Option(
    "--fake-quota", min=0, help="With --fake: the daily quota (default unlimited).")]
Reserve = Annotated[int, typer.Option(
    "--quota-reserve", min=0, help="Leave this many requests of the Arena quota unspent.")]
WaitQuota = Annotated[bool, typer.Option(
    "--wait-for-quota", help="When the quota is spent, wait for its reset (up to "
                             "--max-wait) instead of stopping with exit 3.")]
MaxWait = Annotated[float, typer.Option("--max-wait", min=0.0,
                                        help="Longest quota wait (s).")]
#: What ``--plan`` does, before what it spends (which depends on the command).
_PLAN = ("Print the requests the export would spend against the quota left, and exit 0 "
         "without writing anything ")
PlanOpt = Annotated[bool, typer.Option(
    "--plan", help=_PLAN + "(may spend a request to read the quota, and those needed to "
                           "list the items of a query).")]
Share = Annotated[str | None, typer.Option(
    "--share", metavar="URL",
    help="Share the session, the quota (and --cache) with the other processes of this "
         "Arena user: sqlite:////absolute/path.db (a relative path is refused), "
         "redis://host:6379/0, or none to run alone. Default: $ARENA_SHARE when set, else "
         "the default share, a private SQLite file in your state folder "
         "(~/.local/state/arena_async/share.db on Linux). With --fake: none unless given.")]
CaBundle = Annotated[str | None, typer.Option(
    "--ca-bundle", metavar="PATH",
    help="Verify the servers' TLS certificates against this CA bundle (PEM) only: a "
         "private CA, a TLS-inspecting proxy. Default: $SSL_CERT_FILE when set, else the "
         "system's trust store.")]
ProxyOpt = Annotated[str | None, typer.Option(
    "--proxy", metavar="URL",
    help="Send every request through this HTTP proxy: http://[user:password@]host:port "
         "(HTTPS goes through it in a CONNECT tunnel). Default: $HTTPS_PROXY (or "
         "$HTTP_PROXY, $ALL_PROXY) but for the hosts in $NO_PROXY. A password given here "
         "shows in the process list: prefer HTTPS_PROXY for one.")]
MaxAnswer = Annotated[int | None, typer.Option(
    "--max-answer-size", metavar="MIB", min=1,
    help="Refuse any answer larger than this many MiB (default 64; a page is a few MB at "
         "most): the run stops with exit 1.")]
CacheOpt = Annotated[float | None, typer.Option(
    "--cache", metavar="SECONDS", min=0.0,
    help="Keep Arena's answers this many seconds in the share, so that a later run asks "
         "again only what it lacks: a --plan followed by the run (the plan's listing or "
         "sample is not asked again), the same export to another --out or format, --fresh "
         "or a retry soon after. The answers may be that old: leave it off when a run must "
         "see the latest data. Needs a share (the default one will do). Default: off.")]


def _ttl(cache: float | None) -> float | None:
    """``--cache`` seconds, checked (exit 2 unless > 0)."""
    if cache is not None and not cache > 0:
        raise CliError("--cache: give the seconds answers are kept (more than 0)", EXIT_USAGE)
    return cache


def _checked(settings: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``settings()``, a :class:`CliError` becoming the command's error line and status."""
    try:
        return settings()
    except CliError as exc:
        raise _failed(exc) from None


def _item_export(kind_name: str, *, items: str | None, number: str | None,
                 category: str | None, stage: str | None, out: Path,
                 fmt: OutputFormat | None, concurrency: int, page_size: int, restart: bool,
                 overwrite: bool, quiet: bool, interval: float, fake: bool, fake_items: int,
                 fake_seed: int, fake_quota: int | None, fake_latency: float, reserve: int,
                 wait_for_quota: bool, max_wait: float, plan: bool,
                 share: str | None, fresh: bool, progress: ProgressChoice,
                 progress_interval: float, ca_bundle: str | None = None,
                 proxy: str | None = None, max_answer_size: int | None = None,
                 cache: float | None = None, allow_empty: bool = False,
                 verbose: int = 0, log_level: LogLevel | None = None) -> None:
    kind = _records.ITEM_KINDS[kind_name]
    query = Query(number=number, category_name=category, lifecycle_phase_stage=stage)
    try:
        opts = ExportOptions(out=out, format=format_for(out, fmt.value if fmt else None),
                             concurrency=concurrency, page_size=page_size, restart=restart,
                             overwrite=overwrite, checkpoint_interval=interval,
                             quota_reserve=reserve, wait_for_quota=wait_for_quota,
                             max_wait=max_wait, plan=plan, fresh=fresh,
                             cache=_ttl(cache), allow_empty=allow_empty)
        if query.filters and items is not None:
            raise CliError("give --items FILE or a query (--number, --category, "
                           "--lifecycle-stage), not both", EXIT_USAGE)
        if items is None and not query.filters and not fake:
            raise CliError("select the items: --items FILE (or - for stdin), or --number, "
                           "--category, --lifecycle-stage; or use --fake", EXIT_USAGE)
        query.check()
        selection = (Selection(query=query) if query.filters
                     else Selection(entries=read_entries(items)) if items is not None
                     else None)
        # A fake is on loopback: the machine's proxy and CA variables are not for it, and
        # it never uses ARENA_SHARE or the user's default share.
        network = network_settings(ca_bundle=ca_bundle, proxy=proxy,
                                   max_answer_mib=max_answer_size, environment=not fake)
        client = {**(fake_share(share) if fake else arena_settings(share=share)), **network}
    except CliError as exc:
        raise _failed(exc) from None
    # The plan is what --plan asks for: printed even when quiet.
    ui = _reporter(quiet and not plan, progress, progress_interval, none=quiet)

    async def main() -> None:
        if not fake:
            assert selection is not None
            await export_items(kind, selection, client, opts, ui)
            return
        async with start_fake_arena(items=fake_items, seed=fake_seed, quota=fake_quota,
                                    latency=fake_latency) as fake_server:
            await export_items(kind, selection or Selection.of_guids(fake_server.item_guids),
                               {**arena_kwargs_for(fake_server), **client}, opts, ui)

    _execute(main(), verbose=verbose, log_level=log_level)


def _item_export_options(
    *, out: Out, items: ItemsOpt = None, number: NumberOpt = None,
    category: CategoryOpt = None, stage: StageOpt = None, fmt: FormatOpt = None,
    concurrency: Concurrency = 16, plan: PlanOpt = False, share: Share = None,
    cache: CacheOpt = None, ca_bundle: CaBundle = None, proxy: ProxyOpt = None,
    max_answer_size: MaxAnswer = None, fresh: FreshOpt = False, restart: Restart = False,
    overwrite: Overwrite = False, allow_empty: AllowEmpty = False,
    quiet: Quiet = False, progress: ProgressOpt = ProgressChoice.auto,
    progress_interval: ProgressEvery = Reporter.PLAIN_EVERY,
    interval: Interval = 1.0, fake: Fake = False, fake_items: FakeItems = 200,
    fake_seed: FakeSeed = 1, fake_quota: FakeQuota = None, fake_latency: FakeLatency = 0.0,
    reserve: Reserve = 0, wait_for_quota: WaitQuota = False, max_wait: MaxWait = 3600.0,
    verbose: Verbose = 0, log_level: LogLevelOpt = None,
) -> None:
    """The options of every per-item export, in --help order: a signature, never called."""


def _item_command(name: str, doc: str, kind: Callable[[dict[str, Any]], str],
                  own: Callable[..., None] | None = None) -> Callable[..., None]:
    """Register ``export <name>``: the options of :func:`_item_export_options`, with the
    command's ``own`` options (the keywords of a signature-only function) after
    --concurrency; an own option named like a common one replaces it (its help says what
    it does for this command). ``kind(values)`` names the record kind from the values given; what
    the command does not take is the default of :func:`_item_export`.

    Example: ``_item_command("references", "Every item's ...", lambda _: "references")``
    """
    params = list(inspect.signature(_item_export_options, eval_str=True).parameters.values())
    if own is not None:
        mine = list(inspect.signature(own, eval_str=True).parameters.values())
        common = {p.name: i for i, p in enumerate(params)}
        for p in mine:
            if p.name in common:
                params[common[p.name]] = p
        at = next(i for i, p in enumerate(params) if p.name == "concurrency") + 1
        params[at:at] = [p for p in mine if p.name not in common]

    def command(**values: Any) -> None:
        chosen = kind(values)
        values.pop("details", None)  # in the kind's name
        _item_export(chosen, **{"page_size": ARENA_PAGE_SIZE, **values})

    command.__doc__ = doc
    command.__name__ = command.__qualname__ = "export_" + name.replace("-", "_")
    setattr(command, "__signature__", inspect.Signature(params))  # noqa: B010 - typer reads it
    return export_app.command(name, epilog=EXIT_STATUS)(command)


def _items_options(
    *, page_size: Annotated[int, typer.Option(
        min=1, max=ARENA_MAX_PAGE_SIZE,
        help=f"With a query: items per request (1..{ARENA_MAX_PAGE_SIZE}).")] = ARENA_PAGE_SIZE,
    plan: Annotated[bool, typer.Option(
        "--plan", help=_PLAN + "(may spend a request to read the quota; the items of a "
                               "query are not listed: that costs as much as the export "
                               "itself).")] = False,
) -> None:
    """``export items``' own options (a signature, never called)."""


def _training_records_options(
    *, page_size: Annotated[int, typer.Option(
        min=1, max=ARENA_MAX_PAGE_SIZE,
        help=f"Records per request (1..{ARENA_MAX_PAGE_SIZE}).")] = ARENA_PAGE_SIZE,
    details: Annotated[bool, typer.Option(
        "--details", help="Also fetch each record on its own for its due_date and "
                          "signed_date_time: one more request per record. Without it the "
                          "output has no date columns (a listing carries no dates).")] = False,
    plan: Annotated[bool, typer.Option(
        "--plan", help=_PLAN + "(may spend a request to read the quota, and those needed "
                               "to list the items of a query; with --details, one per "
                               "item of a sample of 32 to count their training records, "
                               "for a range).")] = False,
) -> None:
    """``export training-records``' own options (a signature, never called)."""


export_items_command = _item_command(
    "items",
    """The items themselves: every field (JSONL) or the common ones (CSV).

    By query, the search listing itself (one request per --page-size items); with
    --items, one request per item (by GUID, or by number: no lookup first).
    """,
    lambda _: "items", _items_options)
def _named(name: str) -> Callable[[dict[str, Any]], str]:
    """The kind chooser of a command that exports one kind."""
    return lambda _: name


# The kinds with no options of their own: ``export <name>`` for each, from its entry.
for _kind in _records.ITEM_KINDS.values():
    if _kind.help is not None:
        _item_command(_kind.name, _kind.help, _named(_kind.name))
export_training_records = _item_command(
    "training-records",
    """Every item's training records, page by page (resumes mid-item).

    A listing has no dates: --details fetches each record for them (one request each).
    """,
    lambda values: "training-records+details" if values["details"] else "training-records",
    _training_records_options)


def _opt(name: str, helptext: str) -> Any:
    return typer.Option(f"--{name}", help=helptext)


@export_app.command("akana-tickets", epilog=EXIT_STATUS)
def export_akana_tickets(
    *, out: Out, fmt: FormatOpt = None,
    api_id: Annotated[str | None, _opt("api-id", "Filter: APIID.")] = None,
    app_id: Annotated[str | None, _opt("app-id", "Filter: AppID.")] = None,
    retrieving_user_id: Annotated[str | None, _opt("retrieving-user-id",
                                                   "Filter: RetrievingUserID.")] = None,
    author_id: Annotated[str | None, _opt("author-id", "Filter: AuthorID.")] = None,
    item_id: Annotated[str | None, _opt("item-id", "Filter: ItemID.")] = None,
    tag: Annotated[str | None, _opt("tag", "Filter: Tag.")] = None,
    label: Annotated[str | None, _opt(
        "label", "Filter: Label, e.g. com.soa.ticket.label.priority.high.")] = None,
    state: Annotated[str | None, _opt("state", "Filter: State (OPEN, RESOLVED, CLOSED, "
                                               "REOPEN).")] = None,
    sort_by: Annotated[str | None, _opt("sort-by", "SortBy, e.g. "
                                                   "com.soa.sort.order.updated.")] = None,
    include_comments: Annotated[bool | None, typer.Option(
        "--comments/--no-comments", help="Include the comments preview.")] = None,
    number_of_comments: Annotated[int | None, typer.Option(
        "--number-of-comments", min=0, help="Comments per preview.")] = None,
    include_actions: Annotated[bool | None, typer.Option(
        "--actions/--no-actions", help="Include the valid actions.")] = None,
    page_size: Annotated[int, typer.Option(min=1, help="Tickets per request.")] = AKANA_PAGE_SIZE,
    fresh: FreshOpt = False, restart: Restart = False, overwrite: Overwrite = False,
    allow_empty: AllowEmpty = False,
    quiet: Quiet = False, progress: ProgressOpt = ProgressChoice.auto,
    progress_interval: ProgressEvery = Reporter.PLAIN_EVERY,
    interval: Interval = 1.0, fake: Fake = False,
    fake_tickets: Annotated[int, typer.Option("--fake-tickets", min=0,
                                              help="With --fake: tickets.")] = 1001,
    fake_seed: FakeSeed = 1, fake_latency: FakeLatency = 0.0,
    ca_bundle: CaBundle = None, proxy: ProxyOpt = None, max_answer_size: MaxAnswer = None,
    verbose: Verbose = 0, log_level: LogLevelOpt = None,
) -> None:
    """Akana tickets matching the filters (start/count pages)."""
    given = dict(locals())  # the filter options, by their TicketFilters keyword names
    try:
        opts = ExportOptions(out=out, format=format_for(out, fmt.value if fmt else None),
                             page_size=page_size, restart=restart, overwrite=overwrite,
                             checkpoint_interval=interval, fresh=fresh,
                             allow_empty=allow_empty)
        network = network_settings(ca_bundle=ca_bundle, proxy=proxy,
                                   max_answer_mib=max_answer_size, environment=not fake)
        client = None if fake else {**akana_settings(), **network}
    except CliError as exc:
        raise _failed(exc) from None
    filters = {name: given[name] for name in TICKET_FILTERS}
    ui = _reporter(quiet, progress, progress_interval)

    async def main() -> None:
        if client is not None:
            await export_tickets(filters, client, opts, ui)
            return
        async with start_fake_akana(tickets=fake_tickets, seed=fake_seed,
                                    latency=fake_latency) as fake_server:
            await export_tickets(filters, {**akana_kwargs_for(fake_server), **network},
                                 opts, ui)

    _execute(main(), verbose=verbose, log_level=log_level)


# ---------------------------------------------------------------------------- fake-server


@app.command("fake-server")
def fake_server(
    *,
    arena: Annotated[bool, typer.Option("--arena/--no-arena", help="Run FakeArena.")] = True,
    akana: Annotated[bool, typer.Option("--akana/--no-akana", help="Run FakeAkana.")] = True,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    arena_port: Annotated[int, typer.Option(min=0, max=65535,
                                            help="FakeArena port (0: any free).")] = 0,
    akana_port: Annotated[int, typer.Option(min=0, max=65535,
                                            help="FakeAkana port (0: any free).")] = 0,
    items: Annotated[int, typer.Option(min=0, help="Arena items.")] = 5000,
    tickets: Annotated[int, typer.Option(min=0, help="Akana tickets.")] = 1001,
    seed: Annotated[int, typer.Option(help="Seed of the fake data.")] = 1,
    quota: Annotated[int | None, typer.Option(
        min=0, help="Arena daily request quota (default unlimited).")] = None,
    latency: Annotated[float, typer.Option(min=0.0, help="Seconds per request.")] = 0.0,
    write_items: Annotated[Path | None, typer.Option(
        "--write-items", dir_okay=False,
        help="Write the fake's item GUIDs to this file (for export --items).")] = None,
    write_numbers: Annotated[Path | None, typer.Option(
        "--write-numbers", dir_okay=False,
        help="Write the fake's item numbers to this file, one a line (for export "
             "--items: selection by item number).")] = None,
    verbose: Annotated[int, typer.Option(
        "--verbose", "-v", count=True, show_default=False,
        help="Log what the fakes do on stderr: -v INFO, -vv DEBUG (listening, logins "
             "refused, faults fired). Never a password, session id or token.")] = 0,
    log_level: LogLevelOpt = None,
) -> None:
    """Run the fake Arena and Akana servers until Ctrl-C or SIGTERM.

    Prints their URLs and credentials, as the environment variables that export reads,
    with ARENA_SHARE set to a temporary share of this fake's own (removed when it stops),
    so exports against the fake never use your default share.
    """
    if not arena and not akana:
        raise _fail("nothing to serve: --no-arena and --no-akana", EXIT_USAGE)
    _execute(serve(arena=arena, akana=akana, host=host, arena_port=arena_port,
                   akana_port=akana_port, items=items, tickets=tickets, seed=seed,
                   quota=quota, latency=latency, write_items=write_items,
                   write_numbers=write_numbers), verbose=verbose, log_level=log_level)


def run(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the command, return the exit status."""
    command = typer.main.get_command(app)
    try:
        command.main(args=None if argv is None else list(argv), prog_name=PROG,
                     standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    return 0
