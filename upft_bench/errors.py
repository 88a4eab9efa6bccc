"""The errors upft-bench raises for a problem the user can fix; the command line prints each as one line.

    from upft_bench.errors import InputError, RunFolderError, LaunchError, UpftError
    try:
        run_compare(cfg, out)
    except UpftError as err:         # anything the user can act on; other exceptions are bugs or the libraries'
        print(err)

The library never raises command-line exceptions (click's): `upft_bench.cli` turns an UpftError into its message,
so a Python caller gets these classes, and no message is ever recognised by its text.
"""
from __future__ import annotations

__all__ = ["UpftError", "InputError", "RunFolderError", "LaunchError"]


class UpftError(Exception):
    """A problem the user can act on; the message says what and where (file, row, field or flag)."""


class InputError(UpftError, ValueError):
    """An input that cannot be used: a config, a data or examples file, a model, a samples file, an argument.
    (Also a ValueError, which is what such a problem is to a caller that does not know this module.)"""


class RunFolderError(UpftError):
    """A result folder that holds another run, or results this run must not overwrite."""


class LaunchError(UpftError):
    """A command run under `accelerate launch` failed, or ran on fewer processes than asked for."""
