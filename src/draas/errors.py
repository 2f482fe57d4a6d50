"""The one exception hierarchy of draas.

    DraasError                  anything draas reports to its user
    ├── ConfigError             a configuration file is missing, unreadable or invalid
    ├── ReplicationError        a database could not be read, promoted, demoted or rejoined
    │   └── ErrantTransactions  a server holds transactions its new source never received
    ├── CoordinationError       the coordination store (etcd) could not be read or written
    │   └── StaleEpoch          a compare-and-swap lost: the active record moved meanwhile
    ├── CommandRefused          an operator's command is not allowed in the current state
    ├── InvalidInput            a command-line argument is not allowed (nothing was done)
    ├── ApiError                the control API refused a request or could not be reached
    ├── TrafficError            a DNS provider or frontend engine could not move traffic
    │   └── ProviderBlocked     the provider said stop (bad credentials, abuse): no more tries
    └── LabError                the lab could not do what was asked
        ├── NeedRootError       the lab needs root (CAP_NET_ADMIN) and does not have it
        ├── CommandError        a system command failed (argv, exit code, output)
        └── ReadinessError      a process did not become ready in time (with its log's tail)

Each carries a message written for the operator: what failed, where, and what to do.
"""

from __future__ import annotations

from collections.abc import Sequence


class DraasError(Exception):
    """Base of every error draas reports to its user."""


class ConfigError(DraasError):
    """A configuration is invalid; ``problems`` holds one line per problem."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s):\n{lines}")


class ReplicationError(DraasError):
    """A replication step failed; ``retryable`` says whether trying again can help."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        self.retryable = retryable
        super().__init__(message)


class ErrantTransactions(ReplicationError):
    """A server holds transactions that its new source never received (they must be saved)."""


class CoordinationError(DraasError):
    """The coordination store failed; ``retryable`` says whether trying again can help."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        self.retryable = retryable
        super().__init__(message)


class StaleEpoch(CoordinationError):
    """The active record is not what the caller believed (another node moved it, or it is
    held): the action is refused and nothing changed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class TrafficError(DraasError):
    """Traffic could not be moved or read; ``retryable`` says whether trying again can help."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        self.retryable = retryable
        super().__init__(message)


class ProviderBlocked(TrafficError):
    """The provider answered in a way that means: stop sending updates (until an operator acts)."""


class CommandRefused(DraasError):
    """A switchover, failover, failback or drill the current state does not allow; nothing
    was changed."""


class InvalidInput(DraasError):
    """A command-line argument that is not allowed: the message names the flag, the value and
    what is allowed; nothing was done."""


class ApiError(DraasError):
    """The control API answered with an error (``status``) or could not be reached (0)."""

    def __init__(self, message: str, status: int = 0) -> None:
        self.status = status
        super().__init__(message)


class LabError(DraasError):
    """The lab could not do what was asked."""


class NeedRootError(LabError):
    """The lab needs root and was started without it."""


class CommandError(LabError):
    """A system command failed."""

    def __init__(self, argv: Sequence[str], returncode: int, output: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.output = output
        super().__init__(
            f"command failed (exit {returncode}): {' '.join(self.argv)}\n{output.strip()}"
        )


class ReadinessError(LabError):
    """A process did not become ready in time."""
