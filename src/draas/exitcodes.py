"""The exit statuses of every ``draas`` command: one table, printed by ``draas --help`` and in
docs/operations.md, so that a script can tell "refused" from "unreachable" from "unknown"."""

from __future__ import annotations

from draas.errors import (
    ApiError,
    CommandRefused,
    ConfigError,
    CoordinationError,
    DraasError,
    InvalidInput,
    StaleEpoch,
)

OK = 0  # done; for status: healthy
FAILED = 1  # it ran and went wrong: a run failed, a drill failed, the service never recovered
INVALID = 2  # a bad argument or configuration: nothing was done
REFUSED = 3  # the current state does not allow it, or it was not confirmed: nothing changed
UNREACHABLE = 4  # no agent, coordination store or server answered
UNKNOWN = 5  # a run was started and not seen to end: see 'draas events --run ID'
ATTENTION = 6  # status: the deployment shows an ALERT (users unserved or unprotected)
INTERRUPTED = 130  # Ctrl-C

TABLE = """exit status:
  0    done (status: healthy)
  1    failed: a run or a drill failed, the service never recovered, a lab step failed
  2    invalid input: a bad argument or configuration; nothing was done
  3    refused: the current state does not allow it, or it was not confirmed; nothing changed
  4    unreachable: no agent, coordination store or server answered
  5    outcome unknown: a run was started and not seen to end (see draas events --run ID)
  6    needs attention: status shows an ALERT
  130  interrupted"""


def for_error(exc: DraasError) -> int:
    """The exit status of a command that ended with ``exc``."""
    if isinstance(exc, ConfigError | InvalidInput):
        return INVALID
    if isinstance(exc, CommandRefused | StaleEpoch):
        return REFUSED
    if isinstance(exc, ApiError):
        if exc.status == 0:
            return UNREACHABLE
        if exc.status == 409:
            return REFUSED
        if exc.status in (400, 422):
            return INVALID
        return FAILED
    if isinstance(exc, CoordinationError) and exc.retryable:
        return UNREACHABLE
    return FAILED
