"""One log path: `logging` loggers under `harness.*`, and `step()`, which logs
the start and the end (duration, outcome) of an action, as the NixOS driver's
nested steps do. `pytest --log-cli-level=INFO` shows them live."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

ROOT = "harness"


def logger(name: str) -> logging.Logger:
    """The logger of a harness module: `harness.<name>` whatever the module path."""
    return logging.getLogger(name if name.startswith(ROOT) else f"{ROOT}.{name}")


def describe(error: BaseException) -> str:
    """An error as one short line, for the end line of a failed step."""
    first = str(error).strip().splitlines()[:1]
    return f"{type(error).__name__}: {first[0][:200]}" if first else type(error).__name__


@contextmanager
def step(log: logging.Logger, what: str) -> Iterator[None]:
    """Log `what` when it starts and when it ends, with its duration and outcome."""
    log.info("%s ...", what)
    started = time.monotonic()
    try:
        yield
    except BaseException as error:
        log.info("%s: failed after %.2fs (%s)", what, time.monotonic() - started, describe(error))
        raise
    log.info("%s: done in %.2fs", what, time.monotonic() - started)
