"""Errors that name the file and the problem, so users never see a deep stack trace."""

from __future__ import annotations

from pathlib import Path


class PerpixelError(Exception):
    """Base class for every error the toolkit reports to users."""


class DataError(PerpixelError):
    """Bad input data: names the offending file (or folder) and what is wrong with it."""

    def __init__(self, path: str | Path | None, problem: str | None = None):
        if problem is None:  # one-argument form, as DataLoader workers re-raise errors
            path, problem = None, str(path)
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path is not None else problem)


class ConfigError(PerpixelError):
    """A recipe (YAML config) or command-line option that cannot be used."""


class Interrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C after Lightning's graceful shutdown. `last` is the
    checkpoint at the end of the last completed epoch (None: no epoch completed), `epoch`
    that epoch (1-based), `max_epochs` the run's length."""

    def __init__(self, last: Path | None, epoch: int | None, max_epochs: int | None):
        self.last, self.epoch, self.max_epochs = last, epoch, max_epochs
        super().__init__(f"interrupted after epoch {epoch}" if epoch else "interrupted")
