"""MariaDB GTID positions as values: parsing, comparing, and finding what one server has that
another never received. Pure functions, no I/O.

A MariaDB GTID is ``domain-server-seqno``. Sequence numbers grow per *domain*, across servers:
after a failover the new primary continues the domain's sequence under its own server id, so an
old primary that wrote more before it died holds GTIDs of its own server id with sequence
numbers the new primary never saw. ``gtid_binlog_state`` (the last GTID per domain *and* server)
is what tells them apart.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Gtid:
    domain: int
    server: int
    seq: int

    def __str__(self) -> str:
        return f"{self.domain}-{self.server}-{self.seq}"


def parse(text: str | None) -> list[Gtid]:
    """Parse a GTID list such as ``'0-1-150,1-2-7'`` (empty or None gives [])."""
    out = []
    for part in (text or "").replace("\n", "").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            d, s, n = (int(x) for x in part.split("-"))
        except ValueError:
            raise ValueError(
                f"not a MariaDB GTID: {part!r} (expected domain-server-seqno)"
            ) from None
        out.append(Gtid(d, s, n))
    return out


def fmt(gtids: list[Gtid]) -> str:
    return ",".join(str(g) for g in sorted(gtids))


def by_domain(pos: list[Gtid]) -> dict[int, Gtid]:
    """A position (one GTID per domain)."""
    return {g.domain: g for g in pos}


def by_domain_server(state: list[Gtid]) -> dict[tuple[int, int], int]:
    """A binlog state (the highest sequence number seen per domain and server)."""
    out: dict[tuple[int, int], int] = {}
    for g in state:
        out[(g.domain, g.server)] = max(g.seq, out.get((g.domain, g.server), 0))
    return out


@dataclass(frozen=True)
class ErrantRange:
    """Transactions ``(after, upto]`` of one domain and server that the other side never got."""

    domain: int
    server: int
    after: int
    upto: int

    @property
    def count(self) -> int:
        return self.upto - self.after

    @property
    def start(self) -> Gtid:
        """The last GTID both sides share (reading starts after it)."""
        return Gtid(self.domain, self.server, self.after)

    @property
    def stop(self) -> Gtid:
        return Gtid(self.domain, self.server, self.upto)


def errant(mine: list[Gtid], theirs: list[Gtid]) -> list[ErrantRange]:
    """Transactions this server holds that the other never received.

    ``mine`` is this server's current position (its last GTID per domain); ``theirs`` is the
    other server's binlog state plus its positions (the last sequence number per domain and
    server it has seen). A domain's history is linear, so if the other server has seen this
    server's last GTID (same server id, sequence number at least as high), it has everything
    before it too; if not, the transactions of that server id after what the other has seen
    are errant: written here, never received there.
    """
    have = by_domain_server(theirs)
    out = []
    for g in sorted(mine):
        other = have.get((g.domain, g.server), 0)
        if g.seq > other:
            out.append(ErrantRange(g.domain, g.server, other, g.seq))
    return out


def behind(source_pos: list[Gtid], replica_pos: list[Gtid]) -> int:
    """Transactions the replica still has to apply, from the two positions (per domain)."""
    mine = by_domain(replica_pos)
    total = 0
    for domain, g in by_domain(source_pos).items():
        done = mine.get(domain)
        total += max(0, g.seq - (done.seq if done else 0))
    return total


def contains(pos: list[Gtid], other: list[Gtid]) -> bool:
    """True if position ``pos`` is at or beyond ``other`` in every domain of ``other``."""
    mine = by_domain(pos)
    return all(d in mine and mine[d].seq >= g.seq for d, g in by_domain(other).items())
