"""Stack geometry from headers alone: order, spacing along the normal, tilt, gaps, several volumes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import ArrayLike

from tests.workstation.dicom.synthetic import oblique_geometry, tilted_geometry
from workstation.dicom.frames import Frame, FrameError
from workstation.dicom.stack import analyse_stack, split_volumes


def make_frame(position: ArrayLike, *, row_dir: ArrayLike = (1, 0, 0), col_dir: ArrayLike = (0, 1, 0),
               spacing: tuple[float, float] = (0.8, 0.8), name: str = "f", split: dict[str, Any] | None = None,
               instance: int = 0) -> Frame:
    """A header-only frame (no dataset, no pixels) with the given geometry."""
    return Frame(path=Path(name), display=name, dataset=None, frame_index=None, rows=16, columns=16,
                 position_lps=np.asarray(position, dtype=float), row_dir=np.asarray(row_dir, dtype=float),
                 col_dir=np.asarray(col_dir, dtype=float), pixel_spacing_mm=spacing, instance_number=instance,
                 split_values=dict(split or {}))


def frames_at(offsets: list[float], *, step: ArrayLike = (0, 0, 1), start: ArrayLike = (5, -3, 10),
              shuffle_seed: int | None = 1, **kwargs: Any) -> list[Frame]:
    """Frames at ``start + offset * step``, in shuffled order, named after their true index."""
    frames = [make_frame(np.asarray(start, float) + o * np.asarray(step, float), name=f"t{n}", instance=n, **kwargs)
              for n, o in enumerate(offsets)]
    if shuffle_seed is not None:
        order = np.random.default_rng(shuffle_seed).permutation(len(frames))
        frames = [frames[i] for i in order]
    return frames


def true_order(stack_frames: list[Frame]) -> list[str]:
    return [f.display for f in stack_frames]


def test_sorts_shuffled_planes_along_the_normal() -> None:
    frames = frames_at([2.0 * n for n in range(10)])
    stack = analyse_stack(frames)
    assert true_order(stack.frames) == [f"t{n}" for n in range(10)]
    assert stack.slice_spacing_mm == pytest.approx(2.0)
    assert stack.n_output_slices == 10
    assert not stack.needs_resampling and stack.notes() == []
    np.testing.assert_allclose(np.diff(stack.positions_mm), 2.0)


def test_positions_stepping_against_the_normal_are_sorted_along_it() -> None:
    """Feet-first style: IPP z decreases with the index; the stack still runs along +normal."""
    frames = frames_at([2.5 * n for n in range(8)], step=(0, 0, -1))
    stack = analyse_stack(frames)
    assert true_order(stack.frames) == [f"t{n}" for n in reversed(range(8))]
    assert np.all(np.diff(stack.positions_mm) > 0)
    np.testing.assert_allclose(stack.normal, [0, 0, 1])
    assert stack.slice_spacing_mm == pytest.approx(2.5)


def test_oblique_stack_spacing_is_measured_along_its_normal() -> None:
    row, col = oblique_geometry(30.0)
    normal = np.cross(row, col)
    frames = frames_at([1.7 * n for n in range(7)], step=normal, row_dir=row, col_dir=col)
    stack = analyse_stack(frames)
    assert stack.slice_spacing_mm == pytest.approx(1.7)
    assert stack.tilt_deg == pytest.approx(0.0, abs=1e-6)
    assert not stack.sheared
    assert true_order(stack.frames) == [f"t{n}" for n in range(7)]


def test_gantry_tilt_gives_spacing_along_normal_and_tilt_angle() -> None:
    row, col = tilted_geometry(15.0)
    frames = frames_at([n for n in range(10)], step=(0, 0, 3.0), row_dir=row, col_dir=col)
    stack = analyse_stack(frames)
    assert stack.sheared and stack.needs_resampling
    assert stack.tilt_deg == pytest.approx(15.0, abs=1e-6)
    assert stack.slice_spacing_mm == pytest.approx(3.0 * np.cos(np.radians(15.0)))
    assert stack.n_output_slices == 10
    assert any("gantry tilt 15.00 deg" in note for note in stack.notes())
    # In-plane drift of each origin along col_dir: the table step's component in the plane.
    np.testing.assert_allclose(np.abs(stack.offsets_mm[:, 1]), 3.0 * np.sin(np.radians(15.0)) * np.arange(10),
                               atol=1e-9)


def test_tiny_position_noise_is_not_a_tilt() -> None:
    frames = frames_at([2.0 * n for n in range(6)])
    frames[2].position_lps = frames[2].position_lps + np.array([0.004, -0.003, 0.0])
    stack = analyse_stack(frames)
    assert not stack.sheared and not stack.needs_resampling


def test_uneven_spacing_is_found_and_resampled_to_the_finest_step() -> None:
    offsets = list(np.cumsum([0, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3]))
    stack = analyse_stack(frames_at(offsets))
    assert stack.uneven and not stack.missing and stack.needs_resampling
    total = offsets[-1] - offsets[0]
    assert stack.slice_spacing_mm * (stack.n_output_slices - 1) == pytest.approx(total)
    assert 2.0 <= stack.slice_spacing_mm < 2.2
    assert any("uneven slice spacing (2.000..3.000 mm)" in note for note in stack.notes())


def test_one_missing_slice_is_a_gap_not_uneven_spacing() -> None:
    offsets = [0, 2, 4, 6, 10, 12, 14]  # the plane at 8 mm is missing
    stack = analyse_stack(frames_at(offsets))
    assert not stack.uneven
    assert len(stack.missing) == 1
    after, before, count = stack.missing[0]
    assert before - after == pytest.approx(4.0) and count == 1
    assert stack.slice_spacing_mm == pytest.approx(2.0)
    assert stack.n_output_slices == 8
    assert any("1 missing slice(s)" in note for note in stack.notes())


def test_two_missing_slices_in_one_gap_are_counted() -> None:
    stack = analyse_stack(frames_at([0, 1.5, 3, 7.5, 9, 10.5]))
    assert [m[2] for m in stack.missing] == [2]
    assert stack.n_output_slices == 8
    assert stack.slice_spacing_mm == pytest.approx(1.5)


def test_single_plane_is_not_a_volume() -> None:
    with pytest.raises(FrameError, match="single slice"):
        analyse_stack([make_frame((0, 0, 0))])


def test_two_planes_at_one_position_are_refused_by_analyse_stack() -> None:
    with pytest.raises(FrameError, match="share a position"):
        analyse_stack(frames_at([0, 1, 1, 2], shuffle_seed=None))


def test_split_by_temporal_position_gives_one_volume_per_time_point() -> None:
    frames = []
    for t in (1, 2, 3):
        frames += frames_at([2.0 * n for n in range(5)], shuffle_seed=t,
                            split={"TemporalPositionIdentifier": float(t), "AcquisitionNumber": 1.0})
    volumes, note = split_volumes(frames)
    assert len(volumes) == 3
    assert note is not None and "3 volumes" in note and "TemporalPositionIdentifier" in note
    for t, volume in enumerate(volumes, start=1):
        assert {f.split_values["TemporalPositionIdentifier"] for f in volume} == {float(t)}
        stack = analyse_stack(volume)
        assert stack.n_output_slices == 5 and stack.slice_spacing_mm == pytest.approx(2.0)


def test_distinct_positions_are_one_volume_without_note() -> None:
    frames = frames_at([0, 1, 2, 3])
    volumes, note = split_volumes(frames)
    assert note is None and len(volumes) == 1 and len(volumes[0]) == 4


def test_repeated_positions_with_nothing_to_tell_them_apart_are_refused() -> None:
    frames = frames_at([0, 2, 4, 6]) + frames_at([0, 2, 4, 6], shuffle_seed=3)
    with pytest.raises(FrameError, match=r"positions repeat.*refusing to stack"):
        split_volumes(frames)


def test_an_attribute_present_on_only_some_planes_does_not_split() -> None:
    first = frames_at([0, 2, 4], split={"EchoNumbers": 1.0})
    second = frames_at([0, 2, 4])
    with pytest.raises(FrameError, match="positions repeat"):
        split_volumes(first + second)


def test_an_attribute_that_differs_per_plane_does_not_split() -> None:
    """TriggerTime unique per plane cannot tell two volumes apart (groups of one plane each)."""
    frames = frames_at([0, 2, 4, 0, 2, 4], shuffle_seed=None)
    for n, f in enumerate(frames):
        f.split_values["TriggerTime"] = float(n)
    with pytest.raises(FrameError, match="positions repeat"):
        split_volumes(frames)
