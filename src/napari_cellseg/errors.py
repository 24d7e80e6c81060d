"""Errors a user can cause: each message names the file or setting and the fix."""


class CellsegError(Exception):
    """Base of every error caused by the user's data or settings (shown without traceback)."""


class ConfigError(CellsegError, ValueError):
    """A setting or settings file is wrong."""


class DataError(CellsegError, ValueError):
    """Images or labels cannot be used as given."""


class TrainingDiverged(CellsegError, ArithmeticError):
    """The loss stopped being a finite number: the learning rate is too high."""
