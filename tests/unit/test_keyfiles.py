"""Key directory sync: exact copy, modes kept, atomic writes, stale keys removed, checksums."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from draas.errors import ReplicationError
from draas.replication.files import Manifest, apply, snapshot


def make_keys(d: Path, keys: dict[str, bytes]) -> None:
    d.mkdir(exist_ok=True)
    os.chmod(d, 0o700)
    for name, data in keys.items():
        (d / name).write_bytes(data)
        os.chmod(d / name, 0o600)


def test_apply_copies_content_and_modes_and_removes_stale(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_keys(src, {"0": b"staged", "1": b"primary-key"})
    make_keys(dst, {"0": b"old", "7": b"stale"})
    changed = apply(dst, snapshot(src))
    assert sorted(changed["written"]) == ["0", "1"] and changed["removed"] == ["7"]
    assert (dst / "1").read_bytes() == b"primary-key"
    assert stat.S_IMODE((dst / "1").stat().st_mode) == 0o600
    assert stat.S_IMODE(dst.stat().st_mode) == 0o700
    assert snapshot(dst).checksum == snapshot(src).checksum
    assert not [p for p in dst.iterdir() if p.name.startswith(".draas-")]


def test_applying_the_same_manifest_again_writes_nothing(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_keys(src, {"0": b"a"})
    apply(dst, snapshot(src))
    mtime = (dst / "0").stat().st_mtime_ns
    assert apply(dst, snapshot(src)) == {"written": [], "removed": []}
    assert (dst / "0").stat().st_mtime_ns == mtime


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


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_copied_key_belongs_to_the_directorys_owner(tmp_path: Path) -> None:
    """Keystone reads its 0600 keys as its own user: a key the agent (root) copies must be
    Keystone's like the others, not root's."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_keys(src, {"0": b"staged", "1": b"primary-key"})
    make_keys(dst, {})
    os.chown(dst, 65534, 65534)  # nobody: the service's user
    apply(dst, snapshot(src))
    for name in ("0", "1"):
        st = (dst / name).stat()
        assert (st.st_uid, st.st_gid) == (65534, 65534), name
        assert stat.S_IMODE(st.st_mode) == 0o600
