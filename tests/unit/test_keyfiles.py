"""Key directory sync: exact copy, modes kept, atomic writes, stale keys removed, checksums."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from draas.errors import ReplicationError
from draas.replication.files import KeyDirSync, Manifest, apply, snapshot


def make_keys(d: Path, keys: dict[str, bytes]) -> None:
    d.mkdir(exist_ok=True)
    os.chmod(d, 0o700)
    for name, data in keys.items():
        (d / name).write_bytes(data)
        os.chmod(d / name, 0o600)


def test_sync_copies_content_and_modes_and_removes_stale(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_keys(src, {"0": b"staged", "1": b"primary-key"})
    make_keys(dst, {"0": b"old", "7": b"stale"})
    sync = KeyDirSync("fernet", dst, lambda: snapshot(src))
    report = sync.sync()
    assert report["match"] and report["changed"]
    assert sorted(report["written"]) == ["0", "1"] and report["removed"] == ["7"]
    assert (dst / "1").read_bytes() == b"primary-key"
    assert stat.S_IMODE((dst / "1").stat().st_mode) == 0o600
    assert stat.S_IMODE(dst.stat().st_mode) == 0o700
    assert snapshot(dst).checksum == snapshot(src).checksum
    assert not [p for p in dst.iterdir() if p.name.startswith(".draas-")]


def test_second_sync_without_change_writes_nothing(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_keys(src, {"0": b"a"})
    sync = KeyDirSync("fernet", dst, lambda: snapshot(src))
    sync.sync()
    mtime = (dst / "0").stat().st_mtime_ns
    assert sync.sync()["changed"] is False
    assert (dst / "0").stat().st_mtime_ns == mtime


def test_rotation_on_the_source_reaches_the_target(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_keys(src, {"0": b"a", "1": b"b"})
    sync = KeyDirSync("fernet", dst, lambda: snapshot(src))
    sync.sync()
    (src / "2").write_bytes(b"rotated")
    os.chmod(src / "2", 0o600)
    report = sync.sync()
    assert report["written"] == ["2"] and report["match"]


def test_manifest_survives_the_wire_and_detects_corruption(tmp_path: Path) -> None:
    make_keys(tmp_path / "k", {"0": b"secret"})
    m = snapshot(tmp_path / "k")
    again = Manifest.from_json(m.to_json())
    assert again.checksum == m.checksum
    bad = m.to_json().replace(m.files["0"].sha256, "0" * 64)
    with pytest.raises(ReplicationError, match="checksum mismatch"):
        Manifest.from_json(bad)


def test_hostile_file_names_are_refused(tmp_path: Path) -> None:
    make_keys(tmp_path / "k", {"0": b"x"})
    doc = snapshot(tmp_path / "k").to_json().replace('"0"', '"../../etc/x"')
    with pytest.raises(ReplicationError, match="refusing key file name"):
        apply(tmp_path / "dst", Manifest.from_json(doc))
