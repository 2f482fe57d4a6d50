"""The frontends as one traffic switch, seen from the controller.

Each frontend's own agent routes to the site that holds the ``active`` record (traffic
follows the lease) and publishes where it routes. "Pointing" the frontends at a site is
therefore waiting, bounded, until every live frontend says it routes there: the controller
never reaches into a frontend machine, and a frontend never routes on raw health.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from draas.coordination import CoordinationStore
from draas.errors import TrafficError
from draas.traffic import CheckResult, TrafficSwitch


class FollowingFrontends(TrafficSwitch):
    kind = "frontends"

    def __init__(
        self, store: CoordinationStore, frontends: Sequence[str], wait_s: float = 10.0
    ) -> None:
        super().__init__("+".join(frontends), retries=2, backoff_s=0.5, deadline_s=3 * wait_s)
        self.store = store
        self.frontends = list(frontends)
        self.wait_s = wait_s

    def routes(self) -> dict[str, str | None]:
        """Where each frontend whose agent is alive says it routes."""
        obs = self.store.observations()
        return {fe: obs[fe].routes_to for fe in self.frontends if fe in obs}

    def current(self) -> str | None:
        got = set(self.routes().values())
        return got.pop() if len(got) == 1 else None

    def _point_to(self, target: str) -> bool:
        deadline = time.monotonic() + self.wait_s
        first = self.routes()
        while True:
            routes = self.routes()
            if not routes:
                raise TrafficError("no frontend agent is alive to route traffic", retryable=True)
            if all(r == target for r in routes.values()):
                return any(r != target for r in first.values())
            if time.monotonic() >= deadline:
                raise TrafficError(
                    f"frontends do not route to {target} after {self.wait_s:g} s: {routes}",
                    retryable=True,
                )
            time.sleep(0.05)

    def check(self) -> CheckResult:
        routes = self.routes()
        missing = sorted(set(self.frontends) - set(routes))
        if missing:
            return CheckResult(False, f"frontend agents not reporting: {missing}")
        return CheckResult(True, f"frontends route to {routes}")
