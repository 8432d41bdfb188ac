"""The ``tutelage`` command line: one module per command group, mounted on the root app in ``_app``."""

from tutelage.cli._app import app, main

__all__ = ["app", "main"]
