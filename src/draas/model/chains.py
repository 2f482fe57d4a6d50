"""An observer's rise/fall detector as a Markov chain over its probe rounds: each round fails
with probability ``p``, independently. States: up with k failures in a row (k < fall), and
down with k successes in a row (k < rise). From it: how often a healthy target is called down
(per round), and how long such a false "down" lasts."""

from __future__ import annotations

import dataclasses
import math

import numpy as np


@dataclasses.dataclass(frozen=True)
class RiseFall:
    p: float  # a round fails
    fall: int
    rise: int

    def __post_init__(self) -> None:
        if not 0 <= self.p <= 1 or self.fall < 1 or self.rise < 1:
            raise ValueError(f"{self}: allowed 0 <= p <= 1, fall >= 1, rise >= 1")

    def matrix(self) -> np.ndarray:
        f, r, p = self.fall, self.rise, self.p
        m = np.zeros((f + r, f + r))
        for k in range(f):  # up, k failures in a row
            m[k, 0] += 1 - p
            m[k, k + 1 if k + 1 < f else f] += p  # the fall-th failure: down
        for k in range(r):  # down, k successes in a row
            m[f + k, f] += p
            m[f + k, f + k + 1 if k + 1 < r else 0] += 1 - p  # the rise-th success: up
        return m

    def stationary(self) -> np.ndarray:
        if self.p == 0:
            out = np.zeros(self.fall + self.rise)
            out[0] = 1.0
            return out
        m = self.matrix()
        n = m.shape[0]
        a = np.vstack([m.T - np.eye(n), np.ones(n)])
        b = np.zeros(n + 1)
        b[-1] = 1.0
        return np.linalg.lstsq(a, b, rcond=None)[0]

    def downs_per_round(self) -> float:
        """How often a healthy target is called down, per round."""
        if self.p == 0:
            return 0.0
        return float(self.stationary()[self.fall - 1] * self.p)

    def _down_part(self) -> np.ndarray:
        f = self.fall
        return self.matrix()[f:, f:]  # the down states among themselves (leaving: back up)

    def lasts(self, rounds: int) -> float:
        """P(a false "down" is still down ``rounds`` rounds after it began)."""
        if self.p == 1:
            return 1.0
        v = np.zeros(self.rise)
        v[0] = 1.0
        return float((v @ np.linalg.matrix_power(self._down_part(), rounds)).sum())

    def remaining(self, rounds: int) -> float:
        """Expected rounds a false "down" still lasts once it has lasted ``rounds``."""
        if self.p == 1:
            return math.inf
        q = self._down_part()
        v = np.zeros(self.rise)
        v[0] = 1.0
        at = v @ np.linalg.matrix_power(q, rounds)
        alive = at.sum()
        if alive <= 0:
            return 0.0
        steps = np.linalg.solve(np.eye(self.rise) - q, np.ones(self.rise))
        return float(at @ steps / alive)
