"""The schemes' diagrams (docs/schemes.md): each scheme in its three states, normal,
disaster and recovered, as Graphviz sources rendered to SVG beside this file.

    python docs/diagrams/make.py            # writes <scheme>-<state>.dot and .svg here
    python docs/diagrams/make.py --out DIR  # somewhere else (the test compares)
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).parent
STATES = ("normal", "disaster", "recovered")
SCHEMES = ("dns", "frontend", "hybrid")

GREEN, RED, GREY, BLUE = "#2a7a3a", "#b00020", "#9a9a9a", "#3060a0"


def node(name: str, label: str, color: str, shape: str = "box") -> str:
    return (
        f'  "{name}" [label="{label}", shape={shape}, color="{color}", '
        f'fontcolor="{color}", penwidth=2];'
    )


def edge(a: str, b: str, label: str = "", color: str = "#333333", style: str = "solid") -> str:
    return f'  "{a}" -> "{b}" [label="{label}", color="{color}", style={style}];'


def scene(scheme: str, state: str) -> str:
    """One diagram's Graphviz source."""
    down = state == "disaster"
    dr_active = state != "normal"
    p_color = RED if down else (GREY if dr_active else GREEN)
    d_color = GREEN if dr_active else GREY
    p_label = {
        "normal": "primary site\\nKeystone + MariaDB (writes)",
        "disaster": "primary site\\nDOWN (fenced: lease lost)",
        "recovered": "primary site\\nback: rejoined as replica",
    }[state]
    d_label = (
        "DR site\\nKeystone + MariaDB (writes)"
        if dr_active
        else "DR site\\nreplica (GTID, semi-sync)"
    )
    lines = [
        f'digraph "{scheme}-{state}" {{',
        "  rankdir=TB; nodesep=0.6; ranksep=0.55;",
        '  node [fontname="sans-serif", fontsize=11];',
        '  edge [fontname="sans-serif", fontsize=9];',
        node("clients", "clients", "#333333", "ellipse"),
        node("primary", p_label, p_color),
        node("dr", d_label, d_color),
        node("etcd", "etcd + witness\\nquorum, active lease", BLUE, "cylinder"),
    ]
    live = "dr" if dr_active else "primary"
    replica_edge = ("primary", "dr") if not dr_active else ("dr", "primary")
    if state != "disaster":
        lines.append(edge(*replica_edge, "replication", GREY, "dashed"))
    lines.append(edge("etcd", live, "lease", BLUE, "dotted"))
    if scheme == "dns":
        lines.append(node("dns", f"DNS name\\n-> {live}", BLUE, "note"))
        lines += [edge("clients", "dns", "resolve (TTL)"), edge("dns", live, "A record", GREEN)]
    elif scheme == "frontend":
        lines.append(node("fe", f"frontend (HAProxy)\\nroutes to {live}", BLUE))
        lines += [edge("clients", "fe"), edge("fe", live, "routes", GREEN)]
    else:
        lines += [
            node("dns", "DNS name\\n-> fe-a", BLUE, "note"),
            node("fe-a", f"frontend fe-a\\nroutes to {live}", BLUE),
            node("fe-b", f"frontend fe-b (standby)\\nroutes to {live}", GREY),
        ]
        lines += [
            edge("clients", "dns", "resolve"),
            edge("dns", "fe-a", "A record", GREEN),
            edge("fe-a", live, "routes", GREEN),
            edge("fe-b", live, "", GREY, "dashed"),
        ]
    caption = {
        "normal": "normal: the primary holds the lease and takes the traffic",
        "disaster": "disaster: quorum confirms, lease expires, DR promoted, traffic moved",
        "recovered": "recovered: primary resynced from DR; failback is a planned switchover",
    }[state]
    lines += [f'  label="{scheme} scheme, {caption}"; labelloc=b; fontname="sans-serif";', "}"]
    return "\n".join(lines) + "\n"


def render(out: Path) -> list[Path]:
    dot = shutil.which("dot")
    if dot is None:
        raise SystemExit("Graphviz's dot is not installed (Debian: apt-get install graphviz)")
    out.mkdir(parents=True, exist_ok=True)
    made = []
    for scheme in SCHEMES:
        for state in STATES:
            src = out / f"{scheme}-{state}.dot"
            src.write_text(scene(scheme, state))
            svg = src.with_suffix(".svg")
            subprocess.run([dot, "-Tsvg", "-o", str(svg), str(src)], check=True)
            made.append(svg)
    return made


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=HERE)
    for p in render(ap.parse_args().out):
        print(p)
