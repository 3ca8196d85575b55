"""Regressions of a robustness audit of ``twin segment | labels | mesh | stats`` on unusual and bad input.

Each test names the defect it guards: before its fix the command crashed (exit 1, sometimes after
saving the case), accepted a damaged file, or silently changed a value.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from scipy import ndimage as ndi

from tests.conftest import shared_path
from workstation import segment_case
from workstation.cli import main as cli
from workstation.errors import InputError, OutputError
from workstation.io.label_files import read_label_map_file, write_label_map
from workstation.io.volume_files import read_volume, write_image, write_volume
from workstation.model import Case, LabelMap, Segment, Volume

SPACING = (1.5, 1.5, 2.0)


def ct_phantom(shape: tuple[int, int, int] = (12, 40, 44)) -> Volume:
    """A CT-like phantom (HU): a soft-tissue body with a bright 'organ' ball, in air."""
    vol = Volume.from_geometry(np.full(shape, -1000, np.int16), spacing_mm=SPACING, origin_lps=(-30, -28, -10),
                               modality="CT", id="ct", name="ct")
    k, j, i = np.indices(shape)
    body = ((j - shape[1] / 2) / (shape[1] * 0.42)) ** 2 + ((i - shape[2] / 2) / (shape[2] * 0.42)) ** 2 <= 1
    organ = (j - shape[1] / 2) ** 2 + (i - shape[2] / 2 + 6) ** 2 + ((k - shape[0] / 2) * 1.3) ** 2 <= 36
    hu = np.where(body, 40, -1000) + np.where(organ, 120, 0)
    return vol.with_array((hu + np.random.default_rng(1).normal(0, 5, shape)).astype(np.int16))


def case_of(volume: Volume) -> Case:
    case = Case()
    case.add_volume(volume)
    return case


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def fingerprint(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_one_line_error(code: int, err: str, expected_code: int, *words: str) -> None:
    lines = err.strip().splitlines()
    assert code == expected_code and len(lines) == 1 and "Traceback" not in err, err
    assert all(w in lines[0] for w in words), lines[0]


@pytest.fixture()
def ct_case(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    write_volume(ct_phantom(), tmp_path / "ct.nii.gz")
    code, _, err = run(capsys, "import", tmp_path / "ct.nii.gz", "-o", tmp_path / "case", "-q")
    assert code == 0, err
    return tmp_path / "case"


# ---- statistics: a lone voxel or a one-voxel sheet crashed marching cubes --------------------

def test_statistics_of_lone_voxels_and_one_voxel_sheets() -> None:
    from segmentation.statistics import surface_area_mm2

    lone = np.zeros((9, 9, 9), bool)
    lone[4, 4, 4] = lone[1, 7, 2] = True  # blurred by one voxel these peak at 0.06: no 0.5 level at all
    assert surface_area_mm2(lone, np.array([1.0, 1.0, 1.0])) > 0
    sheet = np.zeros((9, 30, 30), bool)
    sheet[4, 5:25, 5:25] = True  # 20 x 20 voxels, one thick: faces 2 * 400 + 80 mm^2 at 1 mm
    assert surface_area_mm2(sheet, np.array([1.0, 1.0, 1.0])) == pytest.approx(880, rel=0.1)


def test_statistics_skip_nan_voxels_of_a_float_volume() -> None:
    """A resampled float volume marks 'no data' with NaN: one such voxel made every figure NaN (invalid JSON)."""
    from segmentation.statistics import segment_statistics

    vol = ct_phantom()
    values = vol.array.astype(np.float32)
    block = np.zeros(vol.shape, bool)
    block[3:9, 10:30, 10:30] = True
    values[3, 10:15, 10:30] = np.nan
    lm = LabelMap(array=block.astype(np.uint8), ijk_to_lps=vol.ijk_to_lps, segments=(Segment(1, "block"),))
    [stat] = segment_statistics(lm, vol.with_array(values))
    finite = values[block & np.isfinite(values)]
    assert stat.mean == pytest.approx(float(finite.mean())) and stat.min == float(finite.min())
    json.dumps(stat.to_dict(), allow_nan=False)


def test_segment_import_with_a_lone_voxel_label_succeeds(ct_case: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    vol = ct_phantom()
    labels = np.zeros(vol.shape, np.uint8)
    labels[3:9, 10:30, 10:30] = 2
    labels[1, 2, 2] = 13  # ct-abdomen-small holds such a one-voxel label
    write_image(labels, vol.ijk_to_lps, tmp_path / "labels.nrrd")
    code, out, err = run(capsys, "segment", ct_case, "--import", tmp_path / "labels.nrrd")
    assert code == 0, err
    assert "'label_13' (label 13)" in out
    code, out, err = run(capsys, "stats", ct_case, "--json")
    assert code == 0, err
    lone = next(s for s in json.loads(out)["segments"] if s["value"] == 13)
    assert lone["voxels"] == 1 and lone["surface_area_mm2"] > 0


# ---- CT presets on a volume that is not CT ---------------------------------------------------

def test_ct_presets_refuse_a_volume_not_in_hounsfield_units(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    mr_like = ct_phantom()
    mr_like = mr_like.with_array((mr_like.array.astype(np.int32) + 1000) // 3)  # 0..~400: no air in HU
    write_volume(mr_like, tmp_path / "mr.nii.gz")  # NIfTI does not record the modality: "OT"
    case = tmp_path / "case"
    assert run(capsys, "import", tmp_path / "mr.nii.gz", "-o", case, "-q")[0] == 0
    before = fingerprint(case)
    code, _, err = run(capsys, "segment", case, "--preset", "bone")
    assert_one_line_error(code, err, 3, "--preset bone", "Hounsfield")
    assert fingerprint(case) == before


def test_ct_presets_refuse_the_real_mr_abdomen() -> None:
    from segmentation.threshold import preset_mask

    mr = read_volume(shared_path("mr-abdomen-small", "mr.nii.gz"))
    assert mr.modality == "OT"
    for preset in ("bone", "fat", "body"):
        with pytest.raises(ValueError, match="Hounsfield"):
            preset_mask(mr, preset)
    ct = read_volume(shared_path("ct-abdomen-small", "ct.nii.gz"))
    assert preset_mask(ct, "bone").any()  # a CT read from NIfTI ("OT") still works


# ---- mesh of all segments when one is empty --------------------------------------------------

def test_mesh_of_all_segments_skips_empty_ones() -> None:
    vol = ct_phantom()
    case = case_of(vol)
    array = np.zeros(vol.shape, np.uint8)
    array[3:9, 10:30, 10:30] = 2
    case.add_label_map(LabelMap(array=array, ijk_to_lps=vol.ijk_to_lps, id="ct-labels", source_volume_id="ct",
                                segments=(Segment(1, "overwritten"), Segment(2, "block"))))
    assert [m.name for m in segment_case.build_surfaces(case)] == ["block"]
    with pytest.raises(InputError, match="--segment overwritten: the segment is empty"):
        segment_case.build_surfaces(case, segments=["overwritten"])
    case.replace_label_map(LabelMap(array=np.zeros_like(array), ijk_to_lps=vol.ijk_to_lps, id="ct-labels",
                                    source_volume_id="ct", segments=(Segment(2, "block"),)))
    with pytest.raises(InputError, match=r"every segment .* is empty"):
        segment_case.build_surfaces(case)


# ---- damaged and unusual label-map files -----------------------------------------------------

def test_truncated_nifti_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vol = ct_phantom()
    write_volume(vol, tmp_path / "ct.nii.gz")
    data = (tmp_path / "ct.nii.gz").read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(data[:len(data) // 2])
    raw = gzip.decompress(data)
    (tmp_path / "cut.nii").write_bytes(raw[:len(raw) * 2 // 3])
    (tmp_path / "whole.nii").write_bytes(raw)
    for name in ("cut.nii.gz", "cut.nii"):
        with pytest.raises(InputError, match="truncated"):
            read_label_map_file(tmp_path / name)
        with pytest.raises(InputError, match="truncated"):
            read_volume(tmp_path / name)
    np.testing.assert_array_equal(read_volume(tmp_path / "whole.nii").array, vol.array)
    code, _, err = run(capsys, "import", tmp_path / "cut.nii.gz", "-o", tmp_path / "case")
    assert_one_line_error(code, err, 3, "cut.nii.gz", "truncated")
    assert not (tmp_path / "case").exists()


def test_a_vector_nrrd_is_not_a_label_map(tmp_path: Path) -> None:
    import SimpleITK as sitk

    scalar = sitk.GetImageFromArray(np.ones((4, 5, 6), np.uint8))
    sitk.WriteImage(sitk.Compose([scalar, scalar]), str(tmp_path / "vector.nrrd"))
    with pytest.raises(InputError, match="2 components per voxel"):
        read_label_map_file(tmp_path / "vector.nrrd")


def test_writing_labels_onto_a_folder_is_an_output_error(tmp_path: Path) -> None:
    lm = LabelMap(array=np.ones((2, 3, 4), np.uint8), ijk_to_lps=np.eye(4), segments=(Segment(1, "a"),))
    for name in ("x.nrrd", "x.nii.gz"):
        (tmp_path / name).mkdir()
        with pytest.raises(OutputError, match="is a folder"):
            write_label_map(lm, tmp_path / name)


def test_a_folder_that_refuses_writing_is_an_output_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only output folder (simulated: the tests may run as root, who may write anywhere)."""
    import tempfile

    from workstation.io.mesh_files import write_mesh
    from workstation.model import SurfaceMesh

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    lm = LabelMap(array=np.ones((2, 3, 4), np.uint8), ijk_to_lps=np.eye(4), segments=(Segment(1, "a"),))
    tetra = SurfaceMesh(vertices_lps=[[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]],
                        triangles=[[0, 1, 2], [0, 3, 1], [1, 3, 2], [2, 3, 0]])
    writes = {"labels.nrrd": lambda p: write_label_map(lm, p), "labels.nii.gz": lambda p: write_label_map(lm, p),
              "mesh.stl": lambda p: write_mesh(tetra, p), "image.nrrd": lambda p: write_image(lm.array, np.eye(4), p)}
    for name, write in writes.items():
        with pytest.raises(OutputError, match="Permission denied"):
            write(tmp_path / name)
    assert not list(tmp_path.iterdir())


def test_dicom_seg_of_a_resampled_tilted_series_states_its_slice_spacing(tmp_path: Path) -> None:
    """A gantry-tilt series is resampled along the slice normal; its SEG must state that grid's spacing.

    highdicom copied the source's SpacingBetweenSlices (the table step), and a SEG read without a
    reference volume then did not form a grid (ct-tilt-phantom: 2.5 mm stated, 2.371 mm true).
    """
    from tests.workstation.dicom.synthetic import write_tilted
    from workstation.importer import import_path

    write_tilted(tmp_path / "dicom", 14, tilt_deg=20.0, table_step=3.0, rows=16, cols=20)
    case = import_path(tmp_path / "dicom").case
    volume = case.volume()
    # As a Philips scanner writes it: the table step as SpacingBetweenSlices.
    headers = [{**h, "00180088": {"vr": "DS", "Value": [3.0]}} for h in case.source_headers[volume.id]]
    array = np.zeros(volume.shape, np.uint8)
    array[:, 3:-3, 4:-4] = 2
    lm = LabelMap(array=array, ijk_to_lps=volume.ijk_to_lps, segments=(Segment(2, "block"),))
    write_label_map(lm, tmp_path / "seg.dcm", source_headers=headers)
    true_spacing = float(np.linalg.norm(volume.ijk_to_lps[:3, 2]))
    assert true_spacing == pytest.approx(3.0 * np.cos(np.radians(20.0)), rel=1e-3)
    ds = pydicom.dcmread(tmp_path / "seg.dcm")
    measures = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    assert float(measures.SpacingBetweenSlices) == pytest.approx(true_spacing, rel=1e-6)
    alone = read_label_map_file(tmp_path / "seg.dcm")
    np.testing.assert_array_equal(alone.array, array)
    np.testing.assert_allclose(alone.ijk_to_lps, volume.ijk_to_lps, atol=1e-4)
    # A SEG that states the wrong spacing (as written before, or by other software) still reads.
    measures.SpacingBetweenSlices = "3.0"
    ds.save_as(tmp_path / "stated-wrong.dcm")
    alone = read_label_map_file(tmp_path / "stated-wrong.dcm")
    np.testing.assert_allclose(alone.ijk_to_lps, volume.ijk_to_lps, atol=1e-4)


# ---- seeds and imports: values, names, sidecars ----------------------------------------------

def seeds_for(volume: Volume) -> np.ndarray:
    """Strokes inside the organ (5), inside the body (1) and in the air (99, background)."""
    seeds = np.zeros(volume.shape, np.uint8)
    organ = volume.array > 120
    body = (volume.array > -500) & ~ndi.binary_dilation(organ, iterations=3)
    seeds[ndi.binary_erosion(organ, iterations=2)] = 5
    seeds[ndi.binary_erosion(body, iterations=3)] = 1
    seeds[6, :3, :] = 99
    return seeds


def test_seed_values_keep_their_values_and_names_on_a_second_run() -> None:
    vol = ct_phantom()
    case = case_of(vol)
    seeds = seeds_for(vol)
    names = {5: {"name": "liver"}, 1: {"name": "spleen"}}
    segment_case.grow_segments(case, seeds, background=99, names=names)
    # Again without names (a seeds file with no sidecar): each value keeps its value and its name.
    again = segment_case.grow_segments(case, seeds, background=99)
    assert {s.name: s.value for s in again.segments} == {"spleen": 1, "liver": 5}
    # A sidecar that calls value 5 something else: value 5 is that, the old segment moves aside.
    renamed = segment_case.grow_segments(case, seeds, background=99, names={5: {"name": "tumour"}})
    by_name = {s.name: s.value for s in renamed.segments}
    assert by_name["tumour"] == 5 and by_name["spleen"] == 1
    assert by_name["liver"] not in (1, 5, 99) and not (renamed.array == by_name["liver"]).any()
    assert (renamed.array[seeds == 5] == 5).all()


@pytest.mark.parametrize("sidecar", ['{"x": "y"}', '[{"name": "liver"}]', '{"5": 7}', '"hello"',
                                     '{"5": {"name": "liver", "color_rgb": "red"}}', b"\xff\xfe"])
def test_malformed_seed_sidecars_are_input_errors(tmp_path: Path, sidecar: str | bytes) -> None:
    vol = ct_phantom()
    write_image(seeds_for(vol), vol.ijk_to_lps, tmp_path / "seeds.nrrd")
    side = tmp_path / "seeds.json"
    side.write_bytes(sidecar if isinstance(sidecar, bytes) else sidecar.encode())
    with pytest.raises(InputError, match=r"seeds\.json: not a readable segment sidecar"):
        segment_case.segment_from_seeds(case_of(vol), tmp_path / "seeds.nrrd", background=99)


def test_import_keeps_the_values_its_sidecar_does_not_name(tmp_path: Path) -> None:
    vol = ct_phantom()
    labels = np.zeros(vol.shape, np.uint8)
    labels[2:5, 5:15, 5:15] = 3
    labels[6:9, 20:30, 20:30] = 7
    write_image(labels, vol.ijk_to_lps, tmp_path / "labels.nii.gz")
    (tmp_path / "labels.json").write_text(json.dumps({"3": "liver"}))
    case = case_of(vol)
    merged = segment_case.import_labels(case, tmp_path / "labels.nii.gz")
    assert {s.name: s.value for s in merged.segments} == {"liver": 3, "label_7": 7}
    np.testing.assert_array_equal(merged.array, labels)


def test_one_line_messages_for_names_points_and_empty_seeds(ct_case: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    before = fingerprint(ct_case)
    code, _, err = run(capsys, "segment", ct_case, "--preset", "body", "--name", "two\nlines")
    assert_one_line_error(code, err, 3, "--name", "one line")
    code, _, err = run(capsys, "segment", ct_case, "--preset", "body", "--point", "500,0,0")
    assert_one_line_error(code, err, 3, "--point 500,0,0: outside the volume")
    vol = ct_phantom()
    write_image(np.zeros(vol.shape, np.uint8), vol.ijk_to_lps, tmp_path / "none.nrrd")
    code, _, err = run(capsys, "segment", ct_case, "--seeds", tmp_path / "none.nrrd", "--background", "1")
    assert_one_line_error(code, err, 3, "none.nrrd", "no seeds")
    assert fingerprint(ct_case) == before


def test_a_truncated_vtp_is_a_quiet_one_line_input_error(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    import trimesh

    from workstation.io.mesh_files import read_mesh, write_mesh
    from workstation.model import SurfaceMesh

    ball = trimesh.creation.icosphere(2)
    write_mesh(SurfaceMesh(vertices_lps=ball.vertices * 10, triangles=ball.faces, name="ball"), tmp_path / "ok.vtp")
    data = (tmp_path / "ok.vtp").read_bytes()
    (tmp_path / "cut.vtp").write_bytes(data[:len(data) // 2])
    capfd.readouterr()
    with pytest.raises(InputError, match=r"cut\.vtp: not a readable VTP file"):
        read_mesh(tmp_path / "cut.vtp")
    assert capfd.readouterr().err == ""  # VTK's multi-line error reports do not reach the terminal
    assert read_mesh(tmp_path / "ok.vtp").n_triangles == len(ball.faces)


def test_non_ascii_segment_names_reach_every_mesh_format(tmp_path: Path) -> None:
    """VTK string arrays are ASCII-only: a VTP of a segment named "Rückenmark" failed to write."""
    import trimesh

    from workstation.io.mesh_files import MESH_SUFFIXES, read_meshes, write_mesh
    from workstation.model import SurfaceMesh

    ball = trimesh.creation.icosphere(1)
    mesh = SurfaceMesh(vertices_lps=ball.vertices * 10, triangles=ball.faces, name="Rückenmark", segment="Rückenmark")
    for suffix in MESH_SUFFIXES:
        write_mesh(mesh, tmp_path / f"cord{suffix}")
        [back] = read_meshes(tmp_path / f"cord{suffix}")
        assert back.n_triangles == len(ball.faces)
    assert read_meshes(tmp_path / "cord.vtp")[0].name == "Rückenmark"


def test_damaged_label_headers_and_pixel_data_are_input_errors(tmp_path: Path) -> None:
    import SimpleITK as sitk

    # A degenerate grid (what a damaged NIfTI/NRRD header gives) failed in the LabelMap/Volume constructors.
    tiny = sitk.GetImageFromArray(np.ones((3, 4, 5), np.uint8))
    tiny.SetSpacing((1.0, 1.0, 1e-30))
    for name in ("tiny.nii.gz", "tiny.nrrd"):
        sitk.WriteImage(tiny, str(tmp_path / name))
        with pytest.raises(InputError, match="degenerate grid"):
            read_label_map_file(tmp_path / name)
        with pytest.raises(InputError, match="degenerate grid"):
            read_volume(tmp_path / name)
    # A gzip stream whose CRC does not match (ITK reads it without noticing).
    write_image(np.ones((3, 4, 5), np.uint8), np.eye(4), tmp_path / "crc.nii.gz")
    data = bytearray((tmp_path / "crc.nii.gz").read_bytes())
    data[-8] ^= 0xFF
    (tmp_path / "crc.nii.gz").write_bytes(bytes(data))
    with pytest.raises(InputError, match="corrupt or truncated gzip data"):
        read_label_map_file(tmp_path / "crc.nii.gz")
    # A NRRD header field that is not UTF-8 (Latin-1 from an old tool) no longer stops the read.
    image = sitk.GetImageFromArray(np.ones((3, 4, 5), np.uint8))
    for key, value in (("Segment0_Name", "liver"), ("Segment0_LabelValue", "1"), ("Segment0_Description", "cafe")):
        image.SetMetaData(key, value)
    sitk.WriteImage(image, str(tmp_path / "latin.nrrd"), False)
    raw = (tmp_path / "latin.nrrd").read_bytes()
    (tmp_path / "latin.nrrd").write_bytes(raw.replace(b"Description:=cafe", b"Description:=caf\xe9"))
    assert [s.name for s in read_label_map_file(tmp_path / "latin.nrrd").segments] == ["liver"]


def test_a_truncated_dicom_seg_is_an_input_error(tmp_path: Path) -> None:
    data = shared_path("ct-3slice-labels", "liver_seg.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[:-2000])  # the last frame's pixel data cut short
    with pytest.raises(InputError, match="damaged or truncated pixel data"):
        read_label_map_file(tmp_path / "cut.dcm")


def test_a_damaged_nifti_header_is_one_quiet_line(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """The NIfTI C library printed '** ERROR: nifti_convert_nhdr2nim: bad dim[0]' before the error line."""
    write_image(np.ones((3, 4, 5), np.uint8), np.eye(4), tmp_path / "labels.nii")
    data = bytearray((tmp_path / "labels.nii").read_bytes())
    data[40:42] = (9).to_bytes(2, "little")  # dim[0]: 9 dimensions
    (tmp_path / "labels.nii").write_bytes(bytes(data))
    capfd.readouterr()
    with pytest.raises(InputError, match=r"damaged NIfTI header \(dim\[0\] = 9"):
        read_label_map_file(tmp_path / "labels.nii")
    assert capfd.readouterr().err == ""


def test_options_of_another_mode_and_bad_mesh_outputs_are_refused_before_any_work(
        ct_case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = fingerprint(ct_case)
    for args, message in ((["--preset", "body", "--background", "2"], "--background goes with --seeds only"),
                          (["--import", str(tmp_path / "x.nrrd"), "--point", "0,0,0"], "--point goes with --preset"),
                          (["--import", str(tmp_path / "x.nrrd"), "--name", "liver"], "--name goes with --preset")):
        code, _, err = run(capsys, "segment", ct_case, *args)
        assert_one_line_error(code, err, 3, message)
    code, _, err = run(capsys, "mesh", ct_case, "-o", tmp_path / "no-folder" / "bone.stl")
    assert_one_line_error(code, err, 4, "does not exist")
    code, _, err = run(capsys, "mesh", ct_case, "-o", tmp_path / "bone.xyz")
    assert_one_line_error(code, err, 3, "expected a file ending in .stl")
    assert fingerprint(ct_case) == before
