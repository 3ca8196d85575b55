"""Planes of enhanced multi-frame files: geometry from shared and per-frame functional groups."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.workstation.dicom.synthetic import oblique_geometry, stepped_positions, write_enhanced
from workstation.dicom.frames import FrameError, frames_of, read_header
from workstation.dicom.load import load_candidate
from workstation.dicom.scan import scan_path


def test_enhanced_frames_take_shared_and_per_frame_groups(tmp_path: Path) -> None:
    row, col = oblique_geometry(15.0)
    normal = np.cross(row, col)
    truths = write_enhanced(tmp_path / "e.dcm", stepped_positions((1, 2, 3), normal * 1.5, range(6)), row_dir=row,
                            col_dir=col, pixel_spacing=(0.7, 0.9))
    ds = read_header(tmp_path / "e.dcm")
    frames = frames_of(ds, tmp_path / "e.dcm", "e.dcm")
    assert [f.frame_index for f in frames] == list(range(6))
    for frame, truth in zip(frames, truths, strict=True):
        np.testing.assert_allclose(frame.position_lps, truth.position, atol=1e-5)
        np.testing.assert_allclose(frame.row_dir, row, atol=1e-7)
        np.testing.assert_allclose(frame.col_dir, col, atol=1e-7)
        assert frame.pixel_spacing_mm == (0.7, 0.9)
        assert (frame.rescale_slope, frame.rescale_intercept) == (1.0, -1024.0)
        assert frame.display == f"e.dcm [frame {truth.instance_number}]"


def test_enhanced_file_loads_its_frames_in_spatial_order(tmp_path: Path) -> None:
    truths = write_enhanced(tmp_path / "e.dcm", stepped_positions((0, 0, 0), (0, 0, 2.0), range(7)), seed=4)
    [candidate] = scan_path(tmp_path).candidates
    [volume] = load_candidate(candidate)
    by_position = sorted(truths, key=lambda t: t.position[2])
    assert volume.shape == (7, 16, 16) and volume.spacing_mm[2] == pytest.approx(2.0)
    for k, truth in enumerate(by_position):
        np.testing.assert_array_equal(volume.array[k], truth.hu)
        np.testing.assert_allclose(volume.ijk_to_lps_points([0, 0, k]), truth.position, atol=1e-5)


@pytest.mark.parametrize("temporal_index", [True, False], ids=["TemporalPositionIndex", "DimensionIndexValues"])
def test_enhanced_time_points_become_volumes(tmp_path: Path, temporal_index: bool) -> None:
    positions = stepped_positions((0, 0, 0), (0, 0, 2.0), range(5))
    temporal = [1] * 5 + [2] * 5 + [3] * 5
    truths = write_enhanced(tmp_path / "e.dcm", positions * 3, temporal=temporal, temporal_index=temporal_index)
    [candidate] = scan_path(tmp_path).candidates
    expected = "TemporalPositionIndex" if temporal_index else "DimensionIndex"
    assert any(note == f"3 volumes at the same positions, told apart by {expected}" for note in candidate.notes)
    volumes = load_candidate(candidate)
    assert [v.shape for v in volumes] == [(5, 16, 16)] * 3
    for t, (volume, stack) in enumerate(zip(volumes, candidate.stacks, strict=True), start=1):
        for k, frame in enumerate(stack.frames):
            truth = truths[frame.frame_index]  # type: ignore[index]
            assert truth.time_point == t
            np.testing.assert_array_equal(volume.array[k], truth.hu)
            np.testing.assert_allclose(volume.ijk_to_lps_points([0, 0, k]), truth.position, atol=1e-5)


def test_enhanced_file_with_a_frame_count_mismatch_is_refused(tmp_path: Path) -> None:
    write_enhanced(tmp_path / "e.dcm", stepped_positions((0, 0, 0), (0, 0, 2.0), range(4)))
    ds = read_header(tmp_path / "e.dcm")
    ds.NumberOfFrames = 5
    with pytest.raises(FrameError, match="4 per-frame functional groups for 5 frames"):
        frames_of(ds, tmp_path / "e.dcm", "e.dcm")


def test_classic_multi_frame_without_functional_groups_is_refused(tmp_path: Path) -> None:
    write_enhanced(tmp_path / "e.dcm", stepped_positions((0, 0, 0), (0, 0, 2.0), range(3)))
    ds = read_header(tmp_path / "e.dcm")
    del ds.PerFrameFunctionalGroupsSequence
    with pytest.raises(FrameError, match="3 frames without per-frame geometry"):
        frames_of(ds, tmp_path / "e.dcm", "e.dcm")
