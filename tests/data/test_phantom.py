"""recon.data.phantom: signal equations against closed forms, contrast ordering, seeds,
anatomy deformation keeping labels and images aligned."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recon.data import phantom
from recon.data.phantom import (
    LITERATURE,
    SEQUENCES,
    TISSUES,
    Subject,
    gradient_echo,
    inversion_recovery,
    load_tissue_maps,
    sequence_defaults,
    spin_echo,
    tissue_parameters,
)


# -- signal equations against scalar closed forms (float64, math module) --------------------
@pytest.mark.parametrize("t1,t2,tr,te", [(884.0, 72.0, 500.0, 15.0), (4300.0, 1800.0, 4000.0, 100.0), (300.0, 4.0, 20.0, 2.0)])
def test_spin_echo_closed_form(t1, t2, tr, te):
    expected = 0.7 * (1 - math.exp(-tr / t1)) * math.exp(-te / t2)
    got = spin_echo(np.float64(0.7), np.float64(t1), np.float64(t2), tr, te)
    assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("t1,t2,tr,ti,te", [(4000.0, 2000.0, 9000.0, 2500.0, 120.0), (884.0, 72.0, 2000.0, 1000.0, 10.0), (300.0, 60.0, 2000.0, 150.0, 5.0)])
def test_inversion_recovery_closed_form(t1, t2, tr, ti, te):
    expected = 0.9 * abs(1 - 2 * math.exp(-ti / t1) + math.exp(-tr / t1)) * math.exp(-te / t2)
    got = inversion_recovery(np.float64(0.9), np.float64(t1), np.float64(t2), tr, ti, te)
    assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("flip", [5.0, 30.0, 70.0, 90.0])
def test_gradient_echo_closed_form(flip):
    t1, t2s, tr, te = 1084.0, 53.0, 250.0, 5.0
    a = math.radians(flip)
    e1 = math.exp(-tr / t1)
    expected = 0.7 * math.sin(a) * (1 - e1) / (1 - math.cos(a) * e1) * math.exp(-te / t2s)
    assert gradient_echo(np.float64(0.7), np.float64(t1), np.float64(t2s), tr, te, flip) == pytest.approx(expected, rel=1e-12)
    # the Ernst angle maximises the spoiled GRE signal
    ernst = math.degrees(math.acos(e1))
    best = gradient_echo(1.0, t1, t2s, tr, te, ernst)
    assert all(gradient_echo(1.0, t1, t2s, tr, te, f) <= best + 1e-15 for f in (ernst - 5, ernst + 5, flip))


def test_flair_nulls_csf_at_the_inversion_null():
    # with TR >> T1 the null is at TI = T1 ln 2; with finite TR at TI = T1 ln(2 / (1 + exp(-TR/T1)))
    t1, tr = 4300.0, 9000.0
    ti_null = t1 * math.log(2 / (1 + math.exp(-tr / t1)))
    assert inversion_recovery(1.0, t1, 1e9, tr, ti_null, 0.0) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("field", [1.5, 3.0])
def test_contrast_ordering_of_literature_tissues(field):
    def signal(sequence, tissue):
        p = tissue_parameters(tissue, field)
        d = sequence_defaults(sequence)
        if sequence in ("t1w", "t2w", "pd"):
            return spin_echo(p.pd, p.t1, p.t2, d["tr"], d["te"])
        if sequence in ("flair", "ir"):
            return inversion_recovery(p.pd, p.t1, p.t2, d["tr"], d["ti"], d["te"])
        return gradient_echo(p.pd, p.t1, p.t2star, d["tr"], d["te"], d["flip_angle"])

    s = {(q, t): float(signal(q, t)) for q in SEQUENCES for t in TISSUES}
    assert s["t1w", "wm"] > s["t1w", "gm"] > s["t1w", "csf"]
    assert s["t1w", "fat"] > s["t1w", "wm"]
    assert s["t2w", "csf"] > s["t2w", "gm"] > s["t2w", "wm"]
    assert s["pd", "gm"] > s["pd", "wm"]  # (CSF, with its long T1, is not fully relaxed at TR 4000)
    assert s["flair", "gm"] > s["flair", "wm"] > s["flair", "csf"]
    assert s["flair", "csf"] < 0.3 * s["flair", "wm"]
    assert s["ir", "wm"] > s["ir", "gm"] > s["ir", "csf"]
    assert s["gre", "wm"] > s["gre", "gm"] > s["gre", "csf"]
    for q in SEQUENCES:
        assert s[q, "bone"] < min(s[q, "gm"], s[q, "wm"])


def test_literature_tables_are_complete_and_ordered():
    for field, table in LITERATURE.items():
        assert set(table) == set(TISSUES)
        assert table["gm"].t1 > table["wm"].t1  # grey matter relaxes slower
        assert table["csf"].t2 > table["gm"].t2 > table["wm"].t2
    # T1 lengthens with the field for brain tissue
    assert LITERATURE[3.0]["gm"].t1 > LITERATURE[1.5]["gm"].t1
    assert LITERATURE[3.0]["wm"].t1 > LITERATURE[1.5]["wm"].t1


# -- maps and subjects ------------------------------------------------------------------------
@pytest.mark.parametrize("anatomy", sorted(phantom.ANATOMIES))
def test_shipped_tissue_maps(anatomy):
    maps = load_tissue_maps(anatomy)
    assert maps.probabilities.shape[0] == len(TISSUES)
    assert maps.probabilities.min() >= 0
    assert maps.probabilities.sum(0).max() <= 1.0 + 3 / 255  # uint8 rounding
    volumes = {t: float(maps.probabilities[k].sum()) * abs(np.linalg.det(maps.affine[:3, :3])) / 1000.0 for k, t in enumerate(TISSUES)}
    # adult brain: ~0.5-0.9 l each of GM and WM; CSF and extra-cerebral tissues present
    assert 300 < volumes["gm"] < 1200 and 300 < volumes["wm"] < 1000
    assert all(volumes[t] > 20 for t in ("csf", "fat", "soft_tissue", "bone"))


@pytest.fixture(scope="module")
def slab_subject():
    return Subject(seed=7, anatomy="mni152", z_range=(70, 74))


def test_same_seed_same_subject_other_seed_other_subject(slab_subject):
    again = Subject(seed=7, anatomy="mni152", z_range=(70, 74))
    a = slab_subject.contrast("t1w")
    b = again.contrast("t1w")
    np.testing.assert_array_equal(a.volume, b.volume)
    np.testing.assert_array_equal(a.labels, b.labels)
    other = Subject(seed=8, anatomy="mni152", z_range=(70, 74)).contrast("t1w")
    assert not np.array_equal(a.volume, other.volume)
    seq = np.random.SeedSequence(5)
    np.testing.assert_array_equal(Subject(seq, z_range=(70, 71)).labels, Subject(seq, z_range=(70, 71)).labels)


def _pure_means(image, subject, threshold=0.95):
    return {t: float(np.median(image.volume[subject.probabilities[k] > threshold]))
            for k, t in enumerate(TISSUES) if (subject.probabilities[k] > threshold).sum() > 50}


def test_contrast_ordering_in_images(slab_subject):
    m = {q: _pure_means(slab_subject.contrast(q, field_strength=3.0), slab_subject) for q in ("t1w", "t2w", "flair")}
    assert m["t1w"]["wm"] > m["t1w"]["gm"] > m["t1w"]["csf"]
    assert m["t2w"]["csf"] > m["t2w"]["gm"] > m["t2w"]["wm"]
    assert m["flair"]["csf"] < 0.5 * m["flair"]["wm"]


def test_partial_volume_mixing_without_texture():
    subject = Subject(seed=3, anatomy="colin27", z_range=(90, 92), texture=0.0, variation=0.0)
    image = subject.contrast("t2w", field_strength=1.5, te=90.0)
    expected = np.zeros(subject.shape, dtype=np.float64)
    for k, t in enumerate(TISSUES):
        p = LITERATURE[1.5][t]
        expected += subject.probabilities[k].astype(np.float64) * p.pd * (1 - math.exp(-4000.0 / p.t1)) * math.exp(-90.0 / p.t2)
    np.testing.assert_allclose(image.volume, expected, rtol=1e-5, atol=1e-7)
    assert image.parameters == {"tr": 4000.0, "te": 90.0, "field_strength": 1.5}


def test_deformation_keeps_labels_and_image_aligned(slab_subject):
    # labels are the most probable class of the deformed maps
    background = np.clip(1 - slab_subject.probabilities.sum(0), 0, 1)
    expected = np.concatenate([background[None], slab_subject.probabilities]).argmax(0)
    np.testing.assert_array_equal(slab_subject.labels, expected)
    # pure voxels of each label carry that tissue's signal (within the texture's spread)
    image = slab_subject.contrast("t2w")
    params = slab_subject.parameters(3.0)
    for k, t in enumerate(TISSUES):
        pure = (slab_subject.labels == k + 1) & (slab_subject.probabilities[k] > 0.97)
        if pure.sum() < 50:
            continue
        p = params[t]
        ideal = p.pd * (1 - math.exp(-4000 / p.t1)) * math.exp(-100 / p.t2)
        assert np.median(image.volume[pure]) == pytest.approx(ideal, rel=0.1, abs=0.01), t


def test_identity_grid_reproduces_the_stored_maps():
    maps = load_tissue_maps("colin27")
    zoom = float(abs(maps.affine[0, 0]))
    subject = Subject(seed=0, anatomy="colin27", deform=False, voxel_size=zoom, z_range=(40, 43))
    stored = maps.probabilities[:, : subject.shape[0], : subject.shape[1], 40:43]
    stored = stored / np.maximum(stored.sum(0), 1.0)  # uint8 rounding can make sums exceed 1
    np.testing.assert_allclose(subject.probabilities, stored, atol=1e-6)
    np.testing.assert_allclose(subject.affine[:3, 3], maps.affine[:3, :3] @ [0, 0, 40] + maps.affine[:3, 3], atol=1e-9)


def test_deformations_differ_between_subjects_but_keep_tissue_volumes():
    a = Subject(seed=1, anatomy="mni152", z_range=(30, 50), voxel_size=2.0)
    b = Subject(seed=2, anatomy="mni152", z_range=(30, 50), voxel_size=2.0)
    assert (a.labels != b.labels).mean() > 0.05
    gm_a, gm_b = a.tissue_map("gm").sum(), b.tissue_map("gm").sum()
    assert 0.5 < gm_a / gm_b < 2.0


def test_anisotropic_voxels_and_texture():
    subject = Subject(seed=4, voxel_size=(1.0, 1.0, 5.0), z_range=(10, 12))
    assert subject.voxel_size == (1.0, 1.0, 5.0)
    assert np.allclose(np.diag(subject.affine)[:3], (1.0, 1.0, 5.0))
    textured = subject.contrast("pd").volume
    smooth = Subject(seed=4, voxel_size=(1.0, 1.0, 5.0), z_range=(10, 12), texture=0.0).contrast("pd").volume
    wm = subject.tissue_map("wm") > 0.97
    assert textured[wm].std() > 2 * smooth[wm].std()


def test_sequence_overrides_change_the_image(slab_subject):
    base = slab_subject.contrast("gre")
    other = slab_subject.contrast("gre", flip_angle=10.0, tr=30.0)
    assert other.parameters["flip_angle"] == 10.0 and other.parameters["tr"] == 30.0
    assert not np.allclose(base.volume, other.volume)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda s: s.contrast("dwi"), "sequence must be one of"),
        (lambda s: s.contrast("t1w", field_strength=7.0), "field_strength must be one of"),
        (lambda s: s.contrast("t1w", ti=100.0), r"unknown parameters \['ti'\]"),
        (lambda s: s.contrast("t1w", te=-1.0), "te must be a positive number"),
        (lambda s: s.contrast("flair", ti=9500.0), "ti must be shorter than tr"),
        (lambda s: s.contrast("gre", flip_angle=200.0), "flip_angle must be in"),
        (lambda s: s.tissue_map("muscle"), "tissue must be one of"),
        (lambda s: s.parameters(2.0), "field_strength must be one of"),
    ],
)
def test_bad_requests(slab_subject, call, match):
    with pytest.raises(ValueError, match=match):
        call(slab_subject)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="anatomy must be one of"):
        Subject(0, anatomy="knee")
    with pytest.raises(ValueError, match="z_range must be"):
        Subject(0, z_range=(5, 5))
    with pytest.raises(ValueError, match="voxel_size must be"):
        Subject(0, voxel_size=0.0)
    with pytest.raises(ValueError, match="seed must be"):
        Subject(-1)
    with pytest.raises(ValueError, match="tissue must be one of"):
        tissue_parameters("muscle")
    with pytest.raises(ValueError, match="anatomy must be one of"):
        load_tissue_maps("knee")
