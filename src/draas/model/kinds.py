"""The disaster kinds the model predicts, and their failure rates when the operator gives none
(no numpy here: the command line's help shows them)."""

from __future__ import annotations

from collections.abc import Mapping

DISASTERS = ("power-off", "network-failure", "service-crash", "service-hang", "frontend-crash")

# Failures per year of each kind at one site (or frontend), when the operator gives none:
# orders of magnitude for a small OpenStack region, to be replaced by the operator's own.
RATES_PER_YEAR: Mapping[str, float] = {
    "power-off": 0.5,
    "network-failure": 2.0,
    "service-crash": 4.0,
    "service-hang": 2.0,
    "frontend-crash": 2.0,
}
