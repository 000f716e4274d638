"""Writing an export: into an empty directory or over an earlier export, never over anything else."""

from __future__ import annotations

import pytest

from shipyard.export.images import ExportError
from shipyard.export.write import MANIFEST, write_export


def test_a_directory_holding_other_files_is_refused_and_left_alone(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="not empty and holds no earlier export"):
        write_export(tmp_path, {"a/b.yaml": "x: 1\n"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_new_export_replaces_exactly_the_files_of_the_earlier_one(tmp_path):
    write_export(tmp_path, {"apps/base/a/deployment.yaml": "a\n", "apps/base/b/deployment.yaml": "b\n"})
    write_export(tmp_path, {"apps/base/a/deployment.yaml": "a2\n"})
    assert (tmp_path / "apps/base/a/deployment.yaml").read_text() == "a2\n"
    assert not (tmp_path / "apps/base/b").exists()   # the service left the project: its directory goes too
    assert (tmp_path / MANIFEST).read_text() == "apps/base/a/deployment.yaml\n"
