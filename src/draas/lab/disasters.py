"""Disasters the lab can inject, each an object with ``inject()`` and ``revert()``.

Every injection and revert is recorded in the lab's event log with a timestamp, and the active
disasters are kept in the lab's state, so ``draas lab restore`` (another process, later) can
revert them. Used as context managers, they revert on exit whatever happened inside.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

from draas.errors import InvalidInput
from draas.lab.lab import Lab
from draas.lab.supervisor import ProcessSpec


class Disaster(ABC):
    name: ClassVar[str]
    summary: ClassVar[str]

    def __init__(self, lab: Lab, **params: Any) -> None:
        self.lab = lab
        self.struck_at: float | None = None  # when the disaster's decisive part happened
        self.params = params
        self.id = params.get("id") or f"{self.name}-{int(time.time() * 1000) % 10**9}"
        self.params["id"] = self.id

    def describe(self) -> str:
        shown = {k: v for k, v in self.params.items() if k != "id"}
        return f"{self.name} {shown}"

    def inject(self) -> dict[str, Any]:
        self.struck_at = time.time()
        self._inject()
        event = self.lab.run.record_event(
            "disaster", name=self.name, phase="inject", params=self.params
        )
        active = [d for d in self.lab.run.load().get("disasters", []) if d["id"] != self.id]
        self.lab.run.update(disasters=[*active, {"name": self.name, **self.params}])
        return event

    def revert(self) -> dict[str, Any]:
        self._revert()
        event = self.lab.run.record_event(
            "disaster", name=self.name, phase="revert", params=self.params
        )
        active = [d for d in self.lab.run.load().get("disasters", []) if d["id"] != self.id]
        self.lab.run.update(disasters=active)
        return event

    def __enter__(self) -> Disaster:
        self.inject()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.revert()

    @abstractmethod
    def _inject(self) -> None: ...

    @abstractmethod
    def _revert(self) -> None: ...


class ServiceCrash(Disaster):
    name = "service-crash"
    summary = "kill a service process with SIGKILL; revert restarts it"

    def _inject(self) -> None:
        self.lab.sup.crash(self.params["process"])

    def _revert(self) -> None:
        proc = self.params["process"]
        if self.lab.sup.state(proc) == "exited":
            self.lab.sup.start(ProcessSpec.from_dict(self.lab.sup.record(proc)["spec"]))


class ServiceHang(Disaster):
    name = "service-hang"
    summary = "freeze a service process with SIGSTOP; revert sends SIGCONT"

    def _inject(self) -> None:
        self.lab.sup.hang(self.params["process"])

    def _revert(self) -> None:
        self.lab.sup.resume(self.params["process"])


class NetworkFailure(Disaster):
    name = "network-failure"
    summary = "take a host's link down; revert puts it back up"

    def _inject(self) -> None:
        self.lab.net.set_link(self.params["host"], up=False)

    def _revert(self) -> None:
        self.lab.net.set_link(self.params["host"], up=True)


class PowerOff(Disaster):
    name = "power-off"
    summary = "kill every process of a host and take its link down; revert powers it on"

    def _inject(self) -> None:
        host = self.params["host"]
        self.lab.net.set_link(host, up=False)
        self.lab.kill_all_in([self.lab.ns(host)])

    def _revert(self) -> None:
        host = self.params["host"]
        self.lab.net.set_link(host, up=True)
        specs = [
            ProcessSpec.from_dict(self.lab.sup.record(n)["spec"])
            for n in self.lab.host_processes(host)
            if self.lab.sup.state(n) == "exited"
        ]
        if specs:
            self.lab.sup.start_many(specs)


class Partition(Disaster):
    name = "partition"
    summary = "hosts in one group cannot reach hosts in the other (both directions)"

    def _inject(self) -> None:
        a, b = list(self.params["hosts"]), list(self.params["peers"])
        for h in itertools.chain(a, b):
            self.lab.topo.host(h)
        if set(a) & set(b):
            raise InvalidInput(
                f"partition: a host cannot be on both sides: {sorted(set(a) & set(b))}"
            )
        self.lab.add_impairment({"id": self.id, "kind": "partition", "a": a, "b": b})

    def _revert(self) -> None:
        self.lab.remove_impairment(self.id)


class ReplicationCut(Disaster):
    name = "replication-cut"
    summary = "the DR site's database cannot reach the primary's (only that port is cut)"

    def _inject(self) -> None:
        from draas.lab.components.mariadb import PORT

        self.lab.add_impairment(
            {"id": self.id, "kind": "port-block", "a": ["dr"], "b": ["primary"], "port": PORT}
        )

    def _revert(self) -> None:
        self.lab.remove_impairment(self.id)


class ReplicationCutThenPowerOff(Disaster):
    name = "replication-cut-then-power-off"
    summary = (
        "cut the replication link (cut_s seconds, default 10) while the primary serves, then "
        "power the primary off with the link still cut; revert powers it on and heals the link"
    )

    def _parts(self) -> tuple[ReplicationCut, PowerOff]:
        host = self.params.get("host", "primary")
        return (
            ReplicationCut(self.lab, id=f"{self.id}-cut"),
            PowerOff(self.lab, host=host, id=f"{self.id}-power"),
        )

    def _inject(self) -> None:
        cut, power = self._parts()
        cut._inject()
        time.sleep(float(self.params.get("cut_s", 10.0)))
        self.struck_at = time.time()  # the power-off is the disaster the RTO is measured from
        power._inject()

    def _revert(self) -> None:
        cut, power = self._parts()
        power._revert()
        cut._revert()


class GrayNetwork(Disaster):
    name = "gray-network"
    summary = "random packet loss and added jitter on a host's traffic"

    def _inject(self) -> None:
        hosts = list(self.params["hosts"])
        for h in hosts:
            self.lab.topo.host(h)
        loss, jitter = float(self.params["loss_pct"]), float(self.params["jitter_ms"])
        if not 0 <= loss <= 100:
            raise InvalidInput(f"gray-network: loss {loss} % is outside 0..100")
        if jitter < 0:
            raise InvalidInput(f"gray-network: jitter {jitter} ms must be >= 0")
        imps = [i for i in self.lab.impairments() if not i["id"].startswith(self.id)]
        if loss > 0:
            imps.append({"id": f"{self.id}/loss", "kind": "loss", "hosts": hosts, "percent": loss})
        if jitter > 0:
            imps.append(
                {"id": f"{self.id}/jitter", "kind": "jitter", "hosts": hosts, "jitter_ms": jitter}
            )
        self.lab.set_impairments(imps)

    def _revert(self) -> None:
        self.lab.set_impairments(
            [i for i in self.lab.impairments() if not i["id"].startswith(self.id + "/")]
        )


SITES = ("primary", "dr")
FILLER = "draas-disk-full.filler"


def _site(params: dict[str, Any], what: str) -> str:
    site = params.get("host", "primary")
    if site not in SITES:
        raise InvalidInput(f"{what}: --host {site!r} is not a site; allowed: {', '.join(SITES)}")
    return str(site)


class ApiErrors(Disaster):
    name = "api-errors"
    summary = (
        "the service's database account locked at a site (not replicated): the API "
        "answers 500, the web page and the version document stay fine"
    )

    def _account(self, lock: str) -> None:
        from draas.lab.components import mariadb

        site = _site(self.params, self.name)
        mariadb.sql(
            self.lab,
            site,
            "SET SESSION sql_log_bin = 0",
            f"ALTER USER 'keystone'@'198.18.%' ACCOUNT {lock}",
        )
        if lock == "LOCK":  # its open connections end too: Keystone must connect again
            rows = mariadb.sql(
                self.lab,
                site,
                "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'keystone'",
            )
            for r in rows:
                with contextlib.suppress(Exception):  # it may have ended meanwhile
                    mariadb.sql(self.lab, site, "KILL CONNECTION %s", args=(int(r["ID"]),))

    def _inject(self) -> None:
        self._account("LOCK")

    def _revert(self) -> None:
        self._account("UNLOCK")


class DbReadOnly(Disaster):
    name = "db-read-only"
    summary = (
        "a site's database switched read-only behind draas's back; revert does nothing "
        "(the holder's agent reopens it, or a failover fenced it on purpose)"
    )

    def _inject(self) -> None:
        from draas.lab.components import mariadb

        mariadb.sql(self.lab, _site(self.params, self.name), "SET GLOBAL read_only = ON")

    def _revert(self) -> None:
        pass  # opening writes here could make a second writer: draas owns the flag


class DiskFull(Disaster):
    name = "disk-full"
    summary = (
        "a site's database filesystem full (a filler file takes its free space); revert "
        "removes it (MariaDB retries a full disk once a minute)"
    )

    def _filler(self) -> Path:
        from draas.lab.components import mariadb

        return mariadb.base(self.lab, _site(self.params, self.name)) / "data" / FILLER

    def _inject(self) -> None:
        from draas.lab.netns import run

        path = self._filler()
        st = os.statvfs(path.parent)
        free = st.f_bavail * st.f_frsize
        if free > 2**20:  # most of it at once, then the last pages one by one
            run(["fallocate", "-l", str(free - 2**20), str(path)])
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            for _ in range(2**20 // 4096 + 64):  # bounded: at most a little over 1 MiB
                os.write(fd, b"\0" * 4096)
        except OSError:  # ENOSPC: full
            pass
        finally:
            os.close(fd)

    def _revert(self) -> None:
        self._filler().unlink(missing_ok=True)


class ServiceSlow(Disaster):
    name = "service-slow"
    summary = (
        "a service answers in seconds: its processes stopped and let run in turns "
        "(--stop-ms / --run-ms) by draas.lab.throttle; revert lets it run"
    )

    def _throttler(self) -> str:
        return f"throttle-{self.params['process']}"

    def _inject(self) -> None:
        import sys

        proc = self.params["process"]
        for key in ("stop_ms", "run_ms"):
            if not 10 <= float(self.params.get(key, 100)) <= 60000:
                raise InvalidInput(
                    f"service-slow: {key} {self.params[key]} is outside 10..60000 ms"
                )
        rec = self.lab.sup.record(proc)
        spec = self.lab.spec(
            self._throttler(),
            str(rec["spec"]["host"]),
            [
                sys.executable,
                "-m",
                "draas.lab.throttle",
                "--pid",
                str(rec["pid"]),
                "--start-time",
                str(rec["start_time"]),
                "--run-ms",
                str(self.params.get("run_ms", 100)),
                "--stop-ms",
                str(self.params.get("stop_ms", 1900)),
                "--duration",
                "3600",
            ],
        )
        self.lab.sup.launch(spec)

    def _revert(self) -> None:
        if self.lab.sup.state(self._throttler()) != "exited":
            self.lab.sup.stop(self._throttler())
        if self.lab.sup.state(self.params["process"]) != "exited":
            self.lab.sup.resume(self.params["process"])


DISASTERS: dict[str, type[Disaster]] = {
    d.name: d
    for d in (
        ServiceCrash,
        ServiceHang,
        NetworkFailure,
        PowerOff,
        Partition,
        ReplicationCut,
        ReplicationCutThenPowerOff,
        GrayNetwork,
        ApiErrors,
        DbReadOnly,
        DiskFull,
        ServiceSlow,
    )
}


def from_record(lab: Lab, record: dict[str, Any]) -> Disaster:
    params = {k: v for k, v in record.items() if k != "name"}
    return DISASTERS[record["name"]](lab, **params)


def restore_all(lab: Lab) -> list[str]:
    """Revert every active disaster (newest first); return their descriptions."""
    done = []
    for rec in reversed(lab.run.load().get("disasters", [])):
        d = from_record(lab, rec)
        d.revert()
        done.append(d.describe())
    return done
