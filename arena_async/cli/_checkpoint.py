"""The export's output file and its checkpoint, for exports that resume exactly.

The output is append-only. Records are written a batch at a time (one item's list, or one
page) with no ``await`` between writing a batch and recording what it covers in the
in-memory :class:`Checkpoint`, so that state always describes the file's first
``Checkpoint.bytes`` bytes exactly. Every ``interval`` seconds (and when the run ends, for
any reason) the output is flushed and fsynced, then the state is written to
``<out>.checkpoint.json`` atomically (a temporary file, fsync, ``os.replace``).

Resuming truncates the output to the checkpointed size, which drops whatever was written
after the last checkpoint (complete lines of work the checkpoint does not cover, or half a
line from a crash), and continues with the work the checkpoint says is left: no record is
written twice, none is missed. A finished export removes its checkpoint and leaves
``<out>.complete.json`` instead (:class:`Completion`: what it was of, and its size).

Running the same export again (:func:`target` decides, before any request):

- an interrupted export (a checkpoint) resumes, exactly;
- a finished one (its completion record matches the kind, format and selection, and the
  file still has the size it finished with) is not run again: nothing to do, exit 0;
- with ``--fresh`` a finished one is exported again into ``<out>.fresh`` (with its own
  checkpoint, so it resumes like any export), which replaces ``<out>`` (and its failed
  items) with one ``os.replace`` only when it completes: until then ``<out>`` stays the
  last complete export;
- an output this export did not finish (no checkpoint, no matching completion record) is
  refused (exit 2) unless ``--fresh``, ``--overwrite`` or ``--restart``.

Items that failed for good (a 4xx other than 401/408/425/429, an unknown item number) are
appended to ``<out>.failed.jsonl`` in the same synchronous step that marks them complete;
the checkpoint records that file's size too (``failed_bytes``), so a resume truncates it
like the output and no failure is listed twice. A finished export keeps it.

What the state records:

- Arena item exports: the items (as a SHA-256 of the list, which must be the same on
  resume) and which are complete, compactly: every index below ``done_below`` plus the
  set ``done`` above it (items finish out of order); for paged training records, the next
  offset of each item begun but not finished (``partial``).
- Akana ticket exports: the ``next_start`` of the listing (None when finished) and the
  ids of the last page written (``tail``): a ticket created meanwhile shifts the newest-first
  listing down, so the first tickets of the next page may repeat the last ones written;
  those are skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import attrs

from ._common import EXIT_ERROR, EXIT_USAGE, CliError

__all__ = ["CHECKPOINT_SUFFIX", "COMPLETE_SUFFIX", "FAILED_SUFFIX", "FRESH_SUFFIX",
           "Checkpoint", "Completion", "Output", "Target", "check_resumable",
           "checkpoint_path", "complete_path", "failed_path", "fingerprint", "fresh_path",
           "peek", "read_completion", "target", "write_json"]

CHECKPOINT_SUFFIX = ".checkpoint.json"
FAILED_SUFFIX = ".failed.jsonl"
COMPLETE_SUFFIX = ".complete.json"
FRESH_SUFFIX = ".fresh"
CHECKPOINT_VERSION = 1


def checkpoint_path(out: Path) -> Path:
    """``<out>.checkpoint.json``, beside the output."""
    return out.with_name(out.name + CHECKPOINT_SUFFIX)


def failed_path(out: Path) -> Path:
    """``<out>.failed.jsonl``, beside the output: the items that failed for good."""
    return out.with_name(out.name + FAILED_SUFFIX)


def complete_path(out: Path) -> Path:
    """``<out>.complete.json``, beside a finished export's output: what it was of."""
    return out.with_name(out.name + COMPLETE_SUFFIX)


def fresh_path(out: Path) -> Path:
    """``<out>.fresh``: where ``--fresh`` exports again, until it replaces ``out``."""
    return out.with_name(out.name + FRESH_SUFFIX)


def fingerprint(parts: Iterable[str]) -> str:
    """A SHA-256 over the parts (newline-separated): what the export is of."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\n")
    return digest.hexdigest()


@attrs.define
class Checkpoint:
    """What the first :attr:`bytes` bytes of the output hold; see the module doc."""

    kind: str
    format: str
    fingerprint: str
    items: int = 0
    bytes: int = 0
    records: int = 0
    done_below: int = 0
    done: set[int] = attrs.field(factory=set)
    partial: dict[int, int] = attrs.field(factory=dict)
    next_start: int | None = 0
    tail: list[str] = attrs.field(factory=list)
    #: Entries in, and bytes of, ``<out>.failed.jsonl``.
    failed: int = 0
    failed_bytes: int = 0

    # -- item bookkeeping -------------------------------------------------------------

    @property
    def items_done(self) -> int:
        """How many items are complete."""
        return self.done_below + len(self.done)

    def is_done(self, index: int) -> bool:
        """True when item ``index`` is complete."""
        return index < self.done_below or index in self.done

    def pending(self) -> Iterator[tuple[int, int]]:
        """``(index, offset)`` of every item not complete, in order, drawn lazily (items
        may complete while this runs); ``offset`` is where its listing resumes (0 unless
        begun)."""
        for index in range(self.done_below, self.items):
            if not self.is_done(index):
                yield index, self.partial.get(index, 0)

    def complete(self, index: int) -> None:
        """Item ``index`` is fully written."""
        self.partial.pop(index, None)
        self.done.add(index)
        while self.done_below in self.done:
            self.done.remove(self.done_below)
            self.done_below += 1

    def advance(self, index: int, next_offset: int) -> None:
        """Item ``index`` is written up to (not including) ``next_offset``."""
        self.partial[index] = next_offset

    # -- JSON -------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The file's content."""
        return {
            "version": CHECKPOINT_VERSION,
            "kind": self.kind,
            "format": self.format,
            "fingerprint": self.fingerprint,
            "items": self.items,
            "bytes": self.bytes,
            "records": self.records,
            "done_below": self.done_below,
            "done": sorted(self.done),
            "partial": {str(k): v for k, v in sorted(self.partial.items())},
            "next_start": self.next_start,
            "tail": self.tail,
            "failed": self.failed,
            "failed_bytes": self.failed_bytes,
        }

    @classmethod
    def from_json(cls, data: Any) -> Checkpoint:
        """Parse a checkpoint file's content; ``ValueError`` when it is not one."""
        if not isinstance(data, dict) or data.get("version") != CHECKPOINT_VERSION:
            raise ValueError("not a version 1 checkpoint")
        try:
            state = cls(
                kind=_typed(data["kind"], str), format=_typed(data["format"], str),
                fingerprint=_typed(data["fingerprint"], str), items=_count(data["items"]),
                bytes=_count(data["bytes"]), records=_count(data["records"]),
                done_below=_count(data["done_below"]),
                done={_count(i) for i in _typed(data["done"], list)},
                partial={_count(int(k)): _count(v)
                         for k, v in _typed(data["partial"], dict).items()},
                next_start=None if data["next_start"] is None else _count(data["next_start"]),
                tail=[_typed(t, str) for t in _typed(data["tail"], list)],
                failed=_count(data.get("failed", 0)),
                failed_bytes=_count(data.get("failed_bytes", 0)),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed checkpoint ({exc})") from None
        return state


@attrs.frozen
class Completion:
    """``<out>.complete.json``: what a finished export was of (kind, format, the
    fingerprint of its selection or filters), what it wrote, and when it finished."""

    kind: str
    format: str
    fingerprint: str
    records: int
    bytes: int
    failed: int
    finished_at: str

    @classmethod
    def of(cls, state: Checkpoint) -> Completion:
        """The completion record of a finished export's final state, stamped now."""
        return cls(state.kind, state.format, state.fingerprint, state.records, state.bytes,
                   state.failed, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))

    def to_json(self) -> dict[str, Any]:
        """The file's content."""
        return {"version": CHECKPOINT_VERSION, **attrs.asdict(self)}

    @classmethod
    def from_json(cls, data: Any) -> Completion:
        """Parse a completion record; ``ValueError`` when it is not one."""
        if not isinstance(data, dict) or data.get("version") != CHECKPOINT_VERSION:
            raise ValueError("not a version 1 completion record")
        try:
            return cls(kind=_typed(data["kind"], str), format=_typed(data["format"], str),
                       fingerprint=_typed(data["fingerprint"], str),
                       records=_count(data["records"]), bytes=_count(data["bytes"]),
                       failed=_count(data["failed"]),
                       finished_at=_typed(data["finished_at"], str))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed completion record ({exc})") from None


def read_completion(out: Path) -> Completion | None:
    """The completion record beside ``out``; None when there is none or it cannot be
    read (then the output counts as one this export did not finish)."""
    try:
        return Completion.from_json(json.loads(
            complete_path(out).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


@attrs.frozen
class Target:
    """Where an export runs, decided by :func:`target` before anything is sent.

    ``path``: the file this run writes (``out``, or ``<out>.fresh`` for ``--fresh``);
    ``restart``: discard the checkpoint at ``path`` first; ``complete``: set when ``out``
    already holds this export, finished (nothing to do); ``fresh_pending``: a ``--fresh``
    run is unfinished beside it.
    """

    path: Path
    out: Path
    restart: bool = False
    complete: Completion | None = None
    fresh_pending: bool = False

    @property
    def staged(self) -> bool:
        """This run writes ``<out>.fresh``, which replaces ``out`` when it completes."""
        return self.path != self.out


def _has_content(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False


def target(out: Path, kind: str, format: str, fp: str, *, restart: bool = False,
           overwrite: bool = False, fresh: bool = False) -> Target:
    """Where an export of ``kind`` as ``format`` with selection fingerprint ``fp`` runs:
    see the module doc. Reads files only; raises :class:`CliError` (exit 2) for an output
    it must not touch.

    Example: ``where = target(Path("refs.jsonl"), "ticket-refs", "jsonl", fp, fresh=True)``
    """
    staged = fresh_path(out)
    if checkpoint_path(out).exists():  # an interrupted run in place: resume (or restart)
        return Target(out, out, restart=restart)
    if fresh and _has_content(out):
        # A checkpoint whose file is gone: a replace that stopped half-way; start again.
        orphan = checkpoint_path(staged).exists() and not staged.exists()
        return Target(staged, out, restart=restart or orphan)
    if restart or overwrite:
        return Target(out, out, restart=restart)
    if not _has_content(out):
        # Nothing to protect; but an empty export finished (JSONL of no records, with
        # --allow-empty) is complete like any other.
        done = read_completion(out) if out.exists() and not fresh else None
        if done is None or done.bytes or (done.kind, done.format, done.fingerprint) != (
                kind, format, fp):
            return Target(out, out)
        return Target(out, out, complete=done, fresh_pending=checkpoint_path(staged).exists())
    done = read_completion(out)
    again = f"pass --fresh to export again (it replaces {out} when it completes)"
    if done is None:
        raise CliError(f"{out} exists (and has no checkpoint to resume from); {again}, or "
                       "--overwrite to replace it now", EXIT_USAGE)
    if (done.kind, done.format, done.fingerprint) != (kind, format, fp):
        what = ("other items or filters" if (done.kind, done.format) == (kind, format)
                else f"{done.kind} as {done.format}")
        raise CliError(f"{out} holds a finished export of {what}; {again}, or use another "
                       "--out", EXIT_USAGE)
    size = out.stat().st_size
    if size != done.bytes:
        raise CliError(f"{out} was changed since its export finished ({size:,} bytes, not "
                       f"{done.bytes:,}); {again}", EXIT_USAGE)
    return Target(out, out, complete=done, fresh_pending=checkpoint_path(staged).exists())


def _typed(value: Any, cl: type[Any]) -> Any:
    if not isinstance(value, cl) or isinstance(value, bool):
        raise TypeError(f"expected {cl.__name__}, got {type(value).__name__}")
    return value


def _count(value: Any) -> int:
    number: int = _typed(value, int)
    if number < 0:
        raise TypeError("negative count")
    return number


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class Output:
    """The output file of an export with its checkpoint. Every method is synchronous.

    Example::

        out = Output.open(path, Checkpoint("ticket-refs", "jsonl", fp, items=n),
                          header=b"", restart=False, overwrite=False)
        out.write(encode_jsonl(objs), len(objs)); out.state.complete(i); out.maybe_checkpoint()
        out.finish()   # removes the checkpoint
    """

    def __init__(self, path: Path, file: BinaryIO, state: Checkpoint, *, resumed: bool,
                 interval: float, clock: Callable[[], float] = time.monotonic,
                 final: Path | None = None) -> None:
        self.path = path
        #: The output ``path`` replaces when the export completes (``--fresh``), or None.
        self.final = final
        self.checkpoint_path = checkpoint_path(path)
        self.state = state
        #: True when this run continues an interrupted one.
        self.resumed = resumed
        #: Records and bytes the checkpoint already covered when this run began.
        self.start_records = state.records
        self.failed_path = failed_path(path)
        self._file = file
        self._failed: BinaryIO | None = None
        self._interval = interval
        self._clock = clock
        self._last = clock()

    @classmethod
    def open(cls, path: Path, fresh: Checkpoint, *, header: bytes = b"", restart: bool = False,
             overwrite: bool = False, interval: float = 1.0,
             final: Path | None = None) -> Output:
        """Resume from ``<path>.checkpoint.json`` when it exists (it must match ``fresh``'s
        kind, format and fingerprint), else start ``path`` afresh with ``header``.
        ``final``: the output that ``path`` replaces when the export completes.

        Raises :class:`CliError`: exit 2 when the checkpoint belongs to another export or
        ``path`` exists without one (and not ``overwrite``); exit 1 when the output is
        shorter than its checkpoint says (it was changed since).
        """
        cp_path = checkpoint_path(path)
        if restart:
            cp_path.unlink(missing_ok=True)
            overwrite = True
        if cp_path.exists():
            state = _load(cp_path)
            _check_same(state, fresh, cp_path)
            try:
                file: BinaryIO = path.open("r+b")
            except FileNotFoundError:
                raise CliError(f"{path} is gone but its checkpoint {cp_path} is there; "
                               "start over with --restart", EXIT_ERROR) from None
            size = os.fstat(file.fileno()).st_size
            if size < state.bytes:
                file.close()
                raise CliError(f"{path} holds {size} bytes but its checkpoint says "
                               f"{state.bytes}: the file was changed; start over with "
                               "--restart", EXIT_ERROR)
            failed = _reopen_failed(failed_path(path), state, file)
            file.truncate(state.bytes)
            file.seek(state.bytes)
            output = cls(path, file, state, resumed=True, interval=interval, final=final)
            output._failed = failed
            return output
        if path.exists() and path.stat().st_size > 0 and not overwrite:
            raise CliError(f"{path} exists (and has no checkpoint to resume from); pass "
                           "--fresh to export again, or --overwrite to replace it now",
                           EXIT_USAGE)
        if path.parent != Path() and not path.parent.is_dir():
            raise CliError(f"directory {path.parent} does not exist", EXIT_USAGE)
        file = path.open("wb")
        failed_path(path).unlink(missing_ok=True)  # a finished export's, replaced
        complete_path(path).unlink(missing_ok=True)
        output = cls(path, file, fresh, resumed=False, interval=interval, final=final)
        if header:
            output.write(header, 0)
        output.checkpoint()
        return output

    @property
    def records_written(self) -> int:
        """Records written by this run."""
        return self.state.records - self.start_records

    def write(self, data: bytes, records: int) -> None:
        """Append ``data`` (``records`` whole records) and flush it to the OS.

        The caller records what the batch covers in :attr:`state` right after, with no
        ``await`` in between.
        """
        self._file.write(data)
        self._file.flush()
        self.state.bytes += len(data)
        self.state.records += records

    def write_failed(self, data: bytes, entries: int) -> None:
        """Append ``data`` (``entries`` whole JSON lines) to ``<out>.failed.jsonl``
        (created on first use); like :meth:`write`, record what it covers right after."""
        if self._failed is None:
            self._failed = self.failed_path.open("wb")
        self._failed.write(data)
        self._failed.flush()
        self.state.failed_bytes += len(data)
        self.state.failed += entries

    def checkpoint(self) -> None:
        """fsync the output, then atomically replace the checkpoint with :attr:`state`."""
        self._file.flush()
        os.fsync(self._file.fileno())
        if self._failed is not None:
            os.fsync(self._failed.fileno())
        write_json(self.checkpoint_path, self.state.to_json())
        self._last = self._clock()

    def maybe_checkpoint(self) -> None:
        """:meth:`checkpoint` if ``interval`` seconds passed since the last one."""
        if self._clock() - self._last >= self._interval:
            self.checkpoint()

    def close(self, *, finished: bool) -> None:
        """Checkpoint and close. A finished export then replaces :attr:`final` (when set),
        writes its completion record and removes its checkpoint, in this order: a stop
        half-way leaves a state :func:`target` recognizes."""
        if self._file.closed:
            return
        try:
            self.checkpoint()
        finally:
            self._file.close()
            if self._failed is not None:
                self._failed.close()
        if not finished:
            return
        if self.final is not None:
            self._replace_final(self.final)
        write_json(complete_path(self.path), Completion.of(self.state).to_json())
        self.checkpoint_path.unlink(missing_ok=True)

    def discard(self) -> None:
        """Close and remove the output, its checkpoint and failed items: an export that
        matched nothing leaves no file that could pass for a result, and no completion
        record (the next run asks again). A ``--fresh`` run's :attr:`final` is untouched:
        it stays the last complete export."""
        for file in (self._file, self._failed):
            if file is not None:
                file.close()
        for path in (self.path, self.checkpoint_path, self.failed_path,
                     complete_path(self.path)):
            path.unlink(missing_ok=True)

    def _replace_final(self, final: Path) -> None:
        """Move the output (then its failed items) over ``final``'s, each with one
        ``os.replace``; from here on :attr:`path` is ``final``. ``final``'s completion
        record goes first: it describes the data being replaced."""
        complete_path(final).unlink(missing_ok=True)
        os.replace(self.path, final)
        if self.state.failed_bytes:
            os.replace(self.failed_path, failed_path(final))
        else:
            failed_path(final).unlink(missing_ok=True)
        _fsync_dir(final.parent)
        self.path, self.failed_path, self.final = final, failed_path(final), None

    @property
    def size(self) -> int:
        """Bytes in the output."""
        return self.state.bytes


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Replace ``path`` with ``data`` atomically (a temporary file, fsync, rename)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(data, f, separators=(",", ":"))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _reopen_failed(path: Path, state: Checkpoint, output: BinaryIO) -> BinaryIO | None:
    """The failed-items file of a resumed export, truncated to its checkpointed size."""
    if state.failed_bytes == 0:
        path.unlink(missing_ok=True)
        return None
    try:
        file: BinaryIO = path.open("r+b")
    except FileNotFoundError:
        output.close()
        raise CliError(f"{path} is gone but the checkpoint lists {state.failed} failed "
                       "items in it; start over with --restart", EXIT_ERROR) from None
    if os.fstat(file.fileno()).st_size < state.failed_bytes:
        file.close()
        output.close()
        raise CliError(f"{path} is shorter than its checkpoint says: the file was changed; "
                       "start over with --restart", EXIT_ERROR)
    file.truncate(state.failed_bytes)
    file.seek(state.failed_bytes)
    return file


def peek(out: Path) -> Checkpoint | None:
    """The checkpoint beside ``out``, or None when there is none (exit 1 when it cannot
    be read): to reuse a resumed export's selection without asking the server again."""
    cp_path = checkpoint_path(out)
    return _load(cp_path) if cp_path.exists() else None


def check_resumable(out: Path, kind: str, format: str, fp: str) -> Checkpoint | None:
    """The checkpoint beside ``out`` when it is one of this export (``kind``, ``format``,
    fingerprint ``fp``), None when there is none; raises :class:`CliError` (exit 2) when
    it belongs to another export, before anything is asked of the server."""
    state = peek(out)
    if state is not None:
        _check_same(state, Checkpoint(kind, format, fp, items=state.items),
                    checkpoint_path(out))
    return state


def _load(cp_path: Path) -> Checkpoint:
    try:
        return Checkpoint.from_json(json.loads(cp_path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read checkpoint {cp_path} ({exc}); start over with "
                       "--restart", EXIT_ERROR) from None


def _check_same(state: Checkpoint, fresh: Checkpoint, cp_path: Path) -> None:
    if (state.kind, state.format) != (fresh.kind, fresh.format):
        raise CliError(f"{cp_path} is a checkpoint of a {state.kind} export as "
                       f"{state.format}, not {fresh.kind} as {fresh.format}; use another "
                       "--out or --restart", EXIT_USAGE)
    if state.fingerprint != fresh.fingerprint or state.items != fresh.items:
        what = "items" if fresh.items else "filters"
        raise CliError(f"{cp_path} was made for different {what}; give the same {what} "
                       "to resume, or --restart", EXIT_USAGE)
