"""Key directories travel from the active site's agent to the standby's: the standby compares
checksums every round and fetches a directory only when it differs; rotations (a new key, a
removed one) arrive with their modes; a failed fetch is an alert, never silence; the keys are
served only with the API's token."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from test_keyfiles import make_keys

from draas.agent import keysync
from draas.agent.keysync import KeyPuller
from draas.coordination import KeysReport, Observation
from draas.errors import ApiError
from draas.replication.files import snapshot


class Source:
    """The active site's agent, answering as its API would (and counting the fetches)."""

    def __init__(self, dirs: list[Path]) -> None:
        self.dirs = dirs
        self.manifests = 0
        self.down = False

    def listing(self, site: str) -> dict[str, Any]:
        if self.down:
            raise ApiError(f"{site}'s agent: no agent answered", 0)
        return keysync.listing(self.dirs)

    def manifest(self, site: str, index: int) -> str:
        self.manifests += 1
        return keysync.manifest(self.dirs, index)


def pair(tmp_path: Path) -> tuple[Source, KeyPuller, list[Path], list[Path]]:
    src = [tmp_path / "a-fernet", tmp_path / "a-credential"]
    dst = [tmp_path / "b-fernet", tmp_path / "b-credential"]
    make_keys(src[0], {"0": b"staged", "1": b"primary"})
    make_keys(src[1], {"0": b"credential-key"})
    make_keys(dst[0], {"0": b"old", "7": b"stale"})
    source = Source(src)
    clock = iter(float(t) for t in range(1000, 2000))
    puller = KeyPuller(
        dirs=dst,
        fetch_listing=source.listing,
        fetch_manifest=source.manifest,
        now=lambda: next(clock),
    )
    return source, puller, src, dst


def test_the_standby_gets_an_exact_copy_with_modes_and_without_stale_keys(tmp_path: Path) -> None:
    _, puller, src, dst = pair(tmp_path)
    said = puller.tick("primary")
    assert "2 written, 1 removed" in said and "1 written, 0 removed" in said
    for a, b in zip(src, dst, strict=True):
        assert snapshot(a).checksum == snapshot(b).checksum
    assert (dst[0] / "1").read_bytes() == b"primary" and not (dst[0] / "7").exists()
    assert stat.S_IMODE((dst[1] / "0").stat().st_mode) == 0o600
    assert stat.S_IMODE(dst[1].stat().st_mode) == 0o700
    report = puller.report
    assert report is not None and report.match and report.source == "primary"
    assert report.alert(report.compared_at or 0) == ""


def test_unchanged_directories_are_compared_but_not_fetched(tmp_path: Path) -> None:
    source, puller, _, _ = pair(tmp_path)
    puller.tick("primary")
    fetched = source.manifests
    first = puller.report
    assert puller.tick("primary") == ""
    assert source.manifests == fetched
    assert puller.report is not None and first is not None
    assert puller.report.in_sync_since == first.in_sync_since  # still in sync since then
    assert (puller.report.compared_at or 0) > (first.compared_at or 0)


def test_a_rotation_at_the_active_site_reaches_the_standby_on_the_next_round(
    tmp_path: Path,
) -> None:
    _, puller, src, dst = pair(tmp_path)
    puller.tick("primary")
    # keystone-manage fernet_rotate: the staged key 0 becomes 2, a new staged key 0.
    (src[0] / "2").write_bytes(b"staged")
    (src[0] / "0").write_bytes(b"new-staged")
    said = puller.tick("primary")
    assert "key directory" in said and "2 written" in said
    assert (dst[0] / "2").read_bytes() == b"staged"
    assert (dst[0] / "0").read_bytes() == b"new-staged"
    assert snapshot(src[0]).checksum == snapshot(dst[0]).checksum


def test_a_source_that_does_not_answer_is_an_alert_and_changes_nothing(tmp_path: Path) -> None:
    source, puller, src, dst = pair(tmp_path)
    puller.tick("primary")
    before = snapshot(dst[0]).checksum
    source.down = True
    (src[0] / "3").write_bytes(b"rotated-while-unreachable")
    assert puller.tick("primary") == ""
    report = puller.report
    assert report is not None and not report.match and "no agent answered" in report.error
    assert "not compared with primary" in report.alert(2000.0)
    assert snapshot(dst[0]).checksum == before


def test_directories_that_do_not_pair_up_are_reported_as_differing(tmp_path: Path) -> None:
    source, puller, src, _ = pair(tmp_path)
    source.dirs = src[:1]  # the active site lists one directory, the standby has two
    puller.tick("primary")
    report = puller.report
    assert report is not None and not report.match and report.differing == (1,)
    assert "[1] differ from primary's" in report.alert(report.compared_at or 0)


def test_the_report_travels_in_the_observation_and_stale_comparisons_alert() -> None:
    report = KeysReport("primary", True, 100.0, 90.0)
    obs = Observation("site-b", 100.0, keys=report)
    back = Observation.from_dict(obs.to_dict())
    assert back.keys == report
    assert report.alert(130.0) == ""
    assert "compared with primary 100 s ago" in report.alert(200.0)


@pytest.mark.parametrize("index", [-1, 2])
def test_a_manifest_outside_the_directories_is_refused(tmp_path: Path, index: int) -> None:
    make_keys(tmp_path / "k", {"0": b"x"})
    with pytest.raises(IndexError, match="no key directory"):
        keysync.manifest([tmp_path / "k", tmp_path / "k"], index)
