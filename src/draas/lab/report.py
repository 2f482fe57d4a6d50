"""The experiment's report: ``results.md`` (a table per scheme and disaster), PNG plots (a
timeline of request outcomes per run with the agents' events marked; RTO per scheme and
disaster) and ``index.html`` showing both. Everything is derived from ``results.json`` and
the runs' own files, so the figures in the three always agree."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from draas.measure.meter import read_records

COLUMNS = [
    ("scheme", "scheme"),
    ("disaster", "disaster"),
    ("runs", "runs"),
    ("RTO median s", "rto_median"),
    ("RTO p95 s", "rto_p95"),
    ("RTO max s", "rto_max"),
    ("write RTO median s", "write_rto_median_s"),
    ("writes acked after", "writes_after_disaster_median"),
    ("not recovered", "not_recovered"),
    ("failed runs", "failed_runs"),
    ("downtime median s", "downtime_median_s"),
    ("detect s", "detection_median_s"),
    ("decide s", "decision_median_s"),
    ("switch s", "switch_median_s"),
    ("client catch-up s", "client_catch_up_median_s"),
    ("lost acked writes", "lost_acked_writes"),
    ("unknown writes", "unknown_writes"),
    ("false failovers", "false_failovers"),
    ("split-brain instants", "split_brain_instants"),
    ("failback median s", "failback_median_s"),
]


def flat(row: dict[str, Any]) -> dict[str, Any]:
    rto = row["rto_s"]
    return {
        "failed_runs": 0,
        "split_brain_instants": None,
        **{  # older results have none of these
            k: None
            for k in (
                "write_rto_median_s",
                "writes_after_disaster_median",
                "decision_median_s",
                "switch_median_s",
                "client_catch_up_median_s",
            )
        },
        **row,
        "rto_median": rto["median"],
        "rto_p95": rto["p95"],
        "rto_max": rto["max"],
    }


def _baseline_checks() -> dict[str, str]:
    from draas.lab.components.haproxy import BASELINE_CHECK
    from draas.lab.components.powerdns import CHECK_INTERVAL_S

    return {
        "autonomous": f"HAProxy `{BASELINE_CHECK}`, `timeout check 100ms`",
        "powerdns": f"`lua-health-checks-interval={CHECK_INTERVAL_S}` s (whole seconds: its least)",
    }


def _preset_checks() -> dict[str, str]:
    from draas.config import PRESETS

    return {
        name: (
            f"reach every {p['reach_interval_s']:g} s (timeout {p['reach_timeout_s']:g} s, "
            f"{p['reach_fall']:g} in a row, window {p['reach_window_s']:g} s); service checks "
            f"every {p['probe_interval_s']:g} s (fall {p['fall']:g}, window "
            f"{p['confirm_window_s']:g} s)"
        )
        for name, p in PRESETS.items()
    }


BASELINE_CHECKS = _baseline_checks()
PRESET_CHECKS = _preset_checks()


def cell(v: Any) -> str:
    if isinstance(v, float):
        return str(round(v, 3))
    return "-" if v is None else str(v)


def markdown(doc: dict[str, Any]) -> str:
    s = doc["settings"]
    lines = [
        "# draas lab experiment",
        "",
        f"Wall time {doc['wall_time_s']} s; preset `{s['preset']}`, replication "
        f"`{s['replication']}`, DNS TTL {s['dns_ttl_s']} s, meter every {s['meter_interval_s']} s"
        f" (timeout {s['meter_timeout_s']} s, recovered after {s['consecutive']} passes in a "
        "row). RTO: from the disaster to the client served again (web page and API through the "
        "service name: reads). Write RTO: to the first write acknowledged after it (Keystone "
        "projects created through the service name, one every third of a second whatever is "
        "still in flight)."
        " The breakdown (detect, decide, switch, client catch-up) is from the agents' events.",
        "",
    ]
    schemes = {row["scheme"] for row in doc["table"]}
    if schemes & set(BASELINE_CHECKS):
        lines += [
            "Baselines' own checks: "
            + "; ".join(
                f"`{b}`: {BASELINE_CHECKS[b]}" for b in sorted(schemes & set(BASELINE_CHECKS))
            )
            + ". draas's preset: "
            + PRESET_CHECKS.get(s["preset"], s["preset"])
            + ".",
            "",
        ]
    lines += [
        "| " + " | ".join(h for h, _ in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for row in doc["table"]:
        f = flat(row)
        lines.append("| " + " | ".join(cell(f[k]) for _, k in COLUMNS) + " |")
    lines += [
        "",
        "## Runs",
        "",
        "| run | RTO s | downtime s | detection s | decision s | switch s | client "
        "catch-up s | lost acked | split-brain | failback s | checksums |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["runs"]:
        if r.get("error"):
            lines.append(f"| {r['run']} | failed: {r['error']} |" + " |" * 9)
            continue
        lines.append(
            f"| {r['run']} | {cell(r['rto_s'])} | {r['downtime_s']} | "
            f"{cell(r['detection_s'])} | {cell(r['decision_s'])} | {cell(r['switch_s'])}"
            f" | {cell(r['client_catch_up_s'])} | {r['lost_acked_writes']} | "
            f"{cell(r.get('split_brain_instants'))} | "
            f"{cell(r['failback_s'])} | {cell(r['checksums_match'])} |"
        )
    return "\n".join(lines) + "\n"


def timeline_png(run: dict[str, Any], rundir: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = float(run["disaster_at"])
    records = read_records(rundir / "requests.jsonl")
    events = json.loads((rundir / "events.json").read_text())
    fig, ax = plt.subplots(figsize=(10, 2.6))
    for y, check in enumerate(sorted({str(r.get("check")) for r in records})):
        mine = [r for r in records if str(r.get("check")) == check]
        for ok, color in ((True, "tab:green"), (False, "tab:red")):
            xs = [float(r["t"]) - t0 for r in mine if bool(r["ok"]) is ok]
            ax.scatter(xs, [y] * len(xs), s=6, c=color, marker="|")
        ax.text(-3.2, y, check, va="center", fontsize=8)
    marks = [("disaster", 0.0, "black"), ("revert", float(run["reverted_at"]) - t0, "gray")]
    for e in events:
        if e.get("outcome") == "done" and e.get("step") in (
            "take-lease",
            "switch-traffic",
            "hand-over",
            "move-dns",
        ):
            marks.append((f"{e['step']} ({e['node']})", float(e["ts"]) - t0, "tab:blue"))
    for label, x, color in marks:
        ax.axvline(x, color=color, linestyle="--", linewidth=0.8)
        ax.text(x, 1.6, label, rotation=90, fontsize=6, va="bottom")
    ax.set_yticks([])
    ax.set_ylim(-0.5, 2.6)
    ax.set_xlabel("seconds from the disaster")
    ax.set_title(f"{run['run']}: RTO {cell(run['rto_s'])} s", fontsize=9)
    fig.tight_layout()
    path = rundir / "timeline.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def rto_png(doc: dict[str, Any], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [(r["scheme"], r["disaster"]) for r in doc["table"]]
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(groups)), 4))
    for i, (scheme, disaster) in enumerate(groups):
        vals = [
            r["rto_s"]
            for r in doc["runs"]
            if (r["scheme"], r["disaster"]) == (scheme, disaster) and r["rto_s"] is not None
        ]
        ax.scatter([i] * len(vals), vals, s=14)
        if vals:
            ax.hlines(sorted(vals)[len(vals) // 2], i - 0.3, i + 0.3, color="black")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{s}\n{d}" for s, d in groups], fontsize=7)
    ax.set_ylabel("RTO (s)")
    ax.set_title("RTO per scheme and disaster (bar: median)")
    fig.tight_layout()
    path = out / "rto.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def index_html(doc: dict[str, Any], out: Path, timelines: list[Path]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h, _ in COLUMNS)
    rows = [[html.escape(cell(flat(r)[k])) for _, k in COLUMNS] for r in doc["table"]]
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    imgs = "".join(
        f'<figure><img src="{html.escape(str(p.relative_to(out)))}" width="900">'
        f"<figcaption>{html.escape(p.parent.name)}</figcaption></figure>"
        for p in timelines
    )
    return (
        "<!doctype html><meta charset=utf-8><title>draas lab experiment</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}</style>"
        f"<h1>draas lab experiment</h1><p>Wall time {doc['wall_time_s']} s. "
        '<a href="results.md">results.md</a> · <a href="results.json">results.json</a></p>'
        f"<table><tr>{head}</tr>{body}</table>"
        '<h2>RTO</h2><img src="rto.png">'
        f"<h2>Runs</h2>{imgs}"
    )


def write_report(doc: dict[str, Any], out: Path) -> None:
    (out / "results.md").write_text(markdown(doc))
    timelines = [
        timeline_png(r, out / "runs" / r["run"]) for r in doc["runs"] if not r.get("error")
    ]
    rto_png(doc, out)
    (out / "index.html").write_text(index_html(doc, out, timelines))
