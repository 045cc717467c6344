"""A share's files at rest: the default share's place, and the owner and mode checks.

A SQLite share holds the (sealed) session and the quota ledger of an integration. A file or
folder that another local user owns, or can read or write, or a symlink, would let that
user read what the share holds or plant a file of their own, so such a share is refused
(:class:`~arena_async.ShareMisconfiguredError`, with the ``chmod`` that fixes it) before
anything is written to it. The file and its ``-wal`` / ``-shm`` companions are created
0600 without following symlinks (``O_CREAT | O_EXCL | O_NOFOLLOW``); the default share's
folder 0700.

On Windows, owners and modes are not POSIX: the checks there are only that nothing is a
symlink (the default folder, under ``%LOCALAPPDATA%``, is the user's own).
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Mapping

from ..errors import ShareMisconfiguredError

__all__ = [
    "DEFAULT_FILE",
    "FileId",
    "default_share_path",
    "make_private_folder",
    "open_private_files",
    "state_folder",
]

#: The default share's file name, in :func:`state_folder`.
DEFAULT_FILE = "share.db"
#: The files SQLite keeps beside the database in WAL mode (checked and created alike).
COMPANIONS = ("-wal", "-shm")

#: A file's identity: (st_dev, st_ino).
FileId = tuple[int, int]

_POSIX = os.name == "posix"


def state_folder(environ: Mapping[str, str] | None = None,
                 platform: str | None = None) -> str | None:
    """The OS user's private state folder for arena_async (None when there is no home).

    Linux and other Unixes: ``$XDG_STATE_HOME/arena_async`` (when set and absolute, as the
    XDG spec requires) else ``~/.local/state/arena_async``; macOS:
    ``~/Library/Application Support/arena_async``; Windows: ``%LOCALAPPDATA%\\arena_async``.
    (The places ``platformdirs.user_state_dir`` gives, without the dependency.)

    Example: ``state_folder({"XDG_STATE_HOME": "/home/me/.state"}, "linux")`` is
    ``"/home/me/.state/arena_async"``.
    """
    env = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if platform.startswith("win"):
        base = env.get("LOCALAPPDATA") or env.get("APPDATA")
        return os.path.join(base, "arena_async") if base else None
    home = env.get("HOME") or _home()
    if platform == "darwin":
        return os.path.join(home, "Library", "Application Support", "arena_async") \
            if home else None
    xdg = env.get("XDG_STATE_HOME", "")
    if xdg and os.path.isabs(xdg):
        return os.path.join(xdg, "arena_async")
    return os.path.join(home, ".local", "state", "arena_async") if home else None


def _home() -> str | None:
    home = os.path.expanduser("~")
    return home if home != "~" else None


def default_share_path(environ: Mapping[str, str] | None = None) -> str | None:
    """The default share's SQLite file (see :func:`state_folder`), or None without a home.

    Example: ``default_share_path({"XDG_STATE_HOME": "/s"})`` is
    ``"/s/arena_async/share.db"`` on Linux.
    """
    folder = state_folder(environ)
    return None if folder is None else os.path.join(folder, DEFAULT_FILE)


def make_private_folder(folder: str) -> None:
    """Create ``folder`` (and its parents) when missing, itself with mode 0700.

    Raises ``OSError`` when it cannot be made. An existing folder is left as it is (the
    checks when the share opens refuse one that others can use)."""
    if os.path.isdir(folder):
        return
    os.makedirs(folder, mode=0o700, exist_ok=True)
    if _POSIX:
        os.chmod(folder, 0o700, follow_symlinks=False)  # the umask may have taken bits off


def _refuse(share: str, problem: str, fix: str) -> ShareMisconfiguredError:
    return ShareMisconfiguredError(f"{problem}; {fix} (the share holds the integration's "
                                   "session; nothing was written to it)", share=share)


def _check_owner_mode(path: str, st: os.stat_result, share: str, *, what: str,
                      private_mode: int) -> None:
    if not _POSIX:
        return
    if st.st_uid != os.geteuid():
        raise _refuse(share, f"the {what} {path} belongs to another user (uid {st.st_uid})",
                      "use a file in a folder of your own")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise _refuse(share, f"the {what} {path} is open to other users: "
                      f"{open_to(mode, what)} (mode {mode:04o})",
                      f"run: chmod {private_mode:o} {path}")


#: What each permission bit lets a user do, for a folder and for a file.
_ACCESS = {"folder": ("read", "write", "traverse"), "file": ("read", "write", "execute")}


def open_to(mode: int, what: str) -> str:
    """Who besides the owner may do what with a ``what`` ("folder" or "file") of ``mode``,
    from its group and others bits (those of the owner do not count).

    Example: ``open_to(0o755, "folder")`` is ``"its group and others can read and traverse
    it"``; ``open_to(0o640, "file")`` is ``"its group can read it"``."""
    words = _ACCESS[what]

    def can(bits: int) -> str:
        granted = [word for word, bit in zip(words, (4, 2, 1), strict=True) if bits & bit]
        return (", ".join(granted[:-1]) + " and " + granted[-1] if len(granted) > 1
                else "".join(granted))

    group, others = can(mode >> 3 & 7), can(mode & 7)
    if group == others:
        return f"its group and others can {group} it" if group else "nobody else can use it"
    return ", ".join(text for text in (group and f"its group can {group} it",
                                       others and f"others can {others} it") if text)


def check_folder(folder: str, share: str) -> None:
    """Refuse a share's folder that is a symlink, not a folder, another user's, or open to
    group or others. A missing folder is refused too (it is never guessed)."""
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        raise _refuse(share, f"the folder {folder} does not exist",
                      f"create it: mkdir -m 700 {folder}") from None
    if stat.S_ISLNK(st.st_mode):
        raise _refuse(share, f"the folder {folder} is a symlink",
                      "give the real folder's path")
    if not stat.S_ISDIR(st.st_mode):
        raise _refuse(share, f"{folder} is not a folder", "give a path in a folder")
    _check_owner_mode(folder, st, share, what="folder", private_mode=0o700)


def _open_one(path: str, share: str, *, create: bool) -> FileId | None:
    """Check (or create 0600) one file without following a symlink; its identity, or None
    when it is missing and not to be created."""
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    flags = os.O_RDWR | nofollow | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600) if create else None
    except FileExistsError:
        fd = None
    else:
        if fd is not None:
            try:
                if _POSIX:
                    os.fchmod(fd, 0o600)  # whatever the umask took off or let through
                st = os.fstat(fd)
                return st.st_dev, st.st_ino
            finally:
                os.close(fd)
    # It exists (or is not ours to create): check what is there, not what a link points at.
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        if create:  # deleted between the two calls: try once more
            return _open_one(path, share, create=True)
        return None
    if stat.S_ISLNK(st.st_mode):
        raise _refuse(share, f"{path} is a symlink", "remove it, or give the real file's path")
    if not stat.S_ISREG(st.st_mode):
        raise _refuse(share, f"{path} is not a regular file", "remove it")
    _check_owner_mode(path, st, share, what="file", private_mode=0o600)
    return st.st_dev, st.st_ino


def open_private_files(path: str, share: str) -> FileId:
    """Make ``path`` safe to hand to SQLite, or refuse it: the folder (see
    :func:`check_folder`), the database file and its ``-wal`` and ``-shm`` (each created
    0600 without following links, or, when present, this user's own regular file that group
    and others cannot use). Returns the database file's identity ``(st_dev, st_ino)``.

    Raises :class:`~arena_async.ShareMisconfiguredError` (nothing written) when refused."""
    check_folder(os.path.dirname(path) or ".", share)
    # The companions first: SQLite must never open a planted -wal or -shm.
    for suffix in COMPANIONS:
        _open_one(path + suffix, share, create=False)
    if file_id(path) is None:
        # The database was deleted: its -wal and -shm (still open in the sharers that have
        # not noticed yet) must not become the new database's.
        for suffix in COMPANIONS:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path + suffix)
    ident = _open_one(path, share, create=True)
    assert ident is not None
    for suffix in COMPANIONS:
        _open_one(path + suffix, share, create=True)
    return ident


def file_id(path: str) -> FileId | None:
    """``(st_dev, st_ino)`` of what is at ``path`` now (not following a link), or None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino
