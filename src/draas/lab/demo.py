"""``draas lab demo``: build the lab, show that every host reaches every other and what the WAN
between the sites looks like, then tear it all down."""

from __future__ import annotations

from draas.lab.lab import Lab, LabSettings, Progress
from draas.lab.reach import ping


def health_rows(lab: Lab) -> list[tuple[str, str, str, str]]:
    """(host, address, reachable from client, median RTT from client) per host."""
    rows = []
    for h in lab.topo.hosts:
        if h.name == "client":
            continue
        r = ping(lab.ns("client"), "client", h.name, h.address, count=3)
        rtt = f"{r.median_ms:.2f} ms" if r.median_ms is not None else "-"
        rows.append((h.name, h.address, "yes" if r.reachable else "NO", rtt))
    return rows


def run_demo(name: str, progress: Progress) -> int:
    lab = Lab(name)
    try:
        lab.up(LabSettings(), progress=progress)
        progress("checking every host from the client, and the WAN between the sites")
        rows = health_rows(lab)
        site = ping(lab.ns("primary"), "primary", "dr", lab.topo.host("dr").address, count=5)
        print(f"\n{'HOST':<9} {'ADDRESS':<13} {'REACHABLE':<10} RTT FROM CLIENT")
        for host, addr, ok, rtt in rows:
            print(f"{host:<9} {addr:<13} {ok:<10} {rtt}")
        wan = lab.wan.describe()
        median = f"{site.median_ms:.1f} ms" if site.median_ms is not None else "unreachable"
        print(
            f"\nprimary -> dr round trip: {median} "
            f"(configured {lab.settings.delay_ms:g} ms each way; {wan['how']})\n"
        )
        ok = all(r[2] == "yes" for r in rows) and site.reachable
    finally:
        lab.down(progress=progress)
    return 0 if ok else 1
