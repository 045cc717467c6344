"""The ``arena-async`` command line: ``demo``, ``export``, ``fake-server``.

Needs the optional extra: ``pip install 'arena_async[cli]'`` (typer, rich). The library
never imports this package.
"""

from __future__ import annotations

from ._app import app, run

__all__ = ["app", "run"]
