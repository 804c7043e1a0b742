"""Errors a user can act on.

Everything the core raises on purpose for bad input derives from `CnnError`; its message is
one readable sentence meant for a student, shown as-is by the CLI (exit code 2) and the app.
Any other exception is a bug.
"""


class CnnError(Exception):
    """A problem the user can fix; `str(error)` is the whole message."""


class ConfigError(CnnError):
    """Invalid hyperparameters."""


class DatasetError(CnnError):
    """Unknown dataset, dataset missing offline, corrupt dataset file."""


class ImageError(CnnError):
    """A file that cannot be used as an image."""


class RunError(CnnError):
    """Unknown run, or an action that does not fit the run's state."""


class StorageError(CnnError):
    """A file could not be written: the disk is full, the folder is read-only..."""
