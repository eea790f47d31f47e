"""Train, export and evaluate the model weights bundled in data/weights/.

Reproducible: fixed configs below, fixed seeds, the embedded data splits of
``recon.data.sample`` (simulated from Colin27 on first use into a cache folder).

Usage::

    # train (run folder outside the repo), then export the best checkpoint to data/weights/
    python scripts/train_bundled.py train varnet --run-dir /tmp/recon-bundled --data-cache /tmp/recon-cache
    # tune sigpy's L1WaveletRecon lamda on val, then score bundled weights on test and
    # test_heldout at 4x and 8x against zero-filled, recon.reconstruct(method="cs") and sigpy
    python scripts/train_bundled.py tune-sigpy --data-cache /tmp/recon-cache
    python scripts/train_bundled.py evaluate varnet unet --data-cache /tmp/recon-cache \
        --sigpy-lamda 4:1e-6,8:1e-6 --json /tmp/eval.json

``train`` resumes from ``<run-dir>/<name>/last.ckpt`` when it exists, so an interrupted run
is continued by running the same command again.

Retraining on the physics corpus (issue 12; :mod:`recon.data.corpus`: phantom subjects x
contrasts x scanners + real images, and a held-out split of sources never trained on) is one
command; it builds the corpus, trains VarNet, an SSDU-trained VarNet (same data and budget),
the deep cascade and the U-Net, scores all of them with zero-filled and ``cs`` on the held-out
split at 4x and 8x (fastMRI equispaced-fraction masks), and writes model cards::

    python scripts/train_bundled.py reproduce --run-dir /tmp/recon-corpus-run            # GPU / quiet CPU
    python scripts/train_bundled.py reproduce --run-dir /tmp/recon-corpus-run --export   # + data/weights/
    python scripts/train_bundled.py reproduce --preset toy --run-dir /tmp/toy            # minutes on CPU

Without ``--export`` nothing in ``data/`` changes: weights, cards and ``REPORT.md`` go to the
run folder. Single models: ``train varnet --data corpus`` / ``evaluate varnet --data corpus``.

Without a GPU the bundled weights come from seven CPU stages (one thread each; see
data/weights/README.md): ``--preset cpu`` fine-tunes the Colin27 weights on a small corpus,
``--preset cpu-more`` continues its VarNet and U-Net on a 4x larger corpus, ``--preset
cpu-orient`` continues all three on new phantom subjects cut axially, coronally and sagittally,
``--preset cpu-orient2`` continues that VarNet at half the learning rate, and ``--preset
cpu-deep`` continues the VarNet and a U-Net deepened to four poolings on 300 new subjects::

    python scripts/train_bundled.py reproduce --preset cpu --init-dir COLIN27_WEIGHTS --run-dir RUN1 --export
    python scripts/train_bundled.py reproduce --preset cpu-more --init-dir RUN1 --run-dir RUN2 --export
    python scripts/train_bundled.py reproduce --preset cpu-orient --init-dir COPY_OF_STAGE2_DATA_WEIGHTS --run-dir RUN3 --export
    python scripts/train_bundled.py train varnet --data corpus --preset cpu-orient2 --init-dir COPY_OF_STAGE3_DATA_WEIGHTS --run-dir RUN4
    # INIT5: RUN4/varnet.pt + the stage-3 unet.pt and cascade.pt
    python scripts/train_bundled.py reproduce --preset cpu-deep --init-dir INIT5 --run-dir RUN5 --export
    # stage 6 (cpu-deep2): the stage-5 VarNet with a fourth pooling level in every cascade
    python scripts/train_bundled.py reproduce --preset cpu-deep2 --init-dir INIT6 --run-dir RUN6 --export
    # stage 7 (cpu-8x, then cpu-8x2 from its run folder): 8x drawn twice as often as 4x; the
    # VarNet continued, the cascade grown (INIT7: the stage-6 varnet.pt, the stage-3 cascade.pt)
    python scripts/train_bundled.py reproduce --preset cpu-8x --init-dir INIT7 --run-dir RUN7
    python scripts/train_bundled.py reproduce --preset cpu-8x2 --init-dir RUN7 --run-dir RUN7B --export

``reproduce`` scores every model on the corpus's validation split and on the held-out split at
4x and 8x; a new file replaces a bundled one only if its **validation** SSIM is higher at both
accelerations (``export_decisions``): the held-out split is reported, never used to choose.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from recon.train import TrainConfig, export_weights, load_model, train  # noqa: E402

logger = logging.getLogger("train_bundled")

WEIGHTS_DIR = REPO / "data" / "weights"

#: what every bundled model's training shares: data, masks (4x and 8x mixed), optimiser, seed
_COMMON = dict(
    train_data="embedded:train",
    val_data="embedded:val",
    mask_type="random",
    center_fractions=[0.08, 0.04],
    accelerations=[4, 8],
    lr=1e-3,
    lr_gamma=0.3,
    seed=20261121,
    num_threads=1,
)

#: the bundled models: file name in data/weights/ and the training config (output_dir and
#: data_cache are filled in from the command line)
BUNDLED: dict[str, dict] = {
    "varnet": dict(
        _COMMON,
        model="varnet",
        model_kwargs={"num_cascades": 8, "chans": 8, "pools": 3, "sens_chans": 4, "sens_pools": 2},
        train_crop_rows=96,
        loss="ssim",
        lr_step_size=10,
        epochs=14,
        batch_size=1,
        val_every=4,
    ),
    "unet": dict(
        _COMMON,
        model="unet",
        model_kwargs={"in_chans": 1, "out_chans": 1, "chans": 16, "num_pool_layers": 3, "drop_prob": 0.0},
        loss="ssim_l1",
        lr_step_size=8,
        epochs=10,
        batch_size=4,
        val_every=2,
    ),
    "cascade": dict(
        _COMMON,
        model="cascade",
        # hard data consistency (lambda = 0). Runs before 2026-12-07 (stage 8) said
        # learn_lambda=True, which did nothing: hard replacement has no gradient with respect to
        # lambda, so every trained lambda stayed 0; CascadeBlock now refuses that combination.
        model_kwargs={
            "num_cascades": 5, "num_convs": 4, "num_filters": 16, "dc_lambda": 0.0, "learn_lambda": False,
            "sens_chans": 4, "sens_pools": 2,
        },
        train_crop_rows=96,
        loss="ssim",
        lr_step_size=7,
        epochs=10,
        batch_size=1,
        val_every=5,
    ),
}


#: what the corpus-trained models share (issue 12): equispaced masks as fastMRI's brain data,
#: 4x and 8x mixed, the held-out scores use the same family of masks
_CORPUS_COMMON = dict(
    mask_type="equispaced_fraction",
    center_fractions=[0.08, 0.04],
    accelerations=[4, 8],
    lr=1e-3,
    lr_gamma=0.3,
    seed=20261206,
    num_threads=None,
)

#: the bundled models retrained on the corpus: sizes for quality within 20 MB in total as
#: float16 exports (VarNet 4.5 M parameters ~ 9 MB, cascade 0.6 M ~ 1.2 MB, U-Net 3.0 M ~ 6 MB);
#: ``varnet_ssdu`` is the VarNet trained self-supervised (SSDU) on the same data and budget
CORPUS_BUNDLED: dict[str, dict] = {
    "varnet": dict(
        _CORPUS_COMMON,
        model="varnet",
        model_kwargs={"num_cascades": 12, "chans": 14, "pools": 3, "sens_chans": 6, "sens_pools": 3},
        train_crop_rows=128,
        loss="ssim",
        lr_step_size=8,
        epochs=10,
        batch_size=1,
        val_every=2,
    ),
    "cascade": dict(
        _CORPUS_COMMON,
        model="cascade",
        model_kwargs={
            "num_cascades": 8, "num_convs": 5, "num_filters": 48, "dc_lambda": 0.0, "learn_lambda": False,
            "sens_chans": 6, "sens_pools": 3,
        },
        train_crop_rows=128,
        loss="ssim",
        lr_step_size=8,
        epochs=10,
        batch_size=1,
        val_every=2,
    ),
    "unet": dict(
        _CORPUS_COMMON,
        model="unet",
        model_kwargs={"in_chans": 1, "out_chans": 1, "chans": 20, "num_pool_layers": 4, "drop_prob": 0.0},
        loss="ssim_l1",
        lr_step_size=8,
        epochs=10,
        batch_size=1,
        val_every=2,
    ),
}
CORPUS_BUNDLED["varnet_ssdu"] = dict(
    CORPUS_BUNDLED["varnet"], self_supervised="ssdu", ssdu_rho=0.4, ssdu_selection="gaussian", ssdu_unit="columns"
)

#: toy sizes for a CPU smoke run of the whole pipeline (``--preset toy``)
TOY_MODEL_KWARGS = {
    "varnet": {"num_cascades": 2, "chans": 4, "pools": 2, "sens_chans": 2, "sens_pools": 1},
    "varnet_ssdu": {"num_cascades": 2, "chans": 4, "pools": 2, "sens_chans": 2, "sens_pools": 1},
    "varnet_short": {"num_cascades": 2, "chans": 4, "pools": 2, "sens_chans": 2, "sens_pools": 1},
    "cascade": {"num_cascades": 2, "num_convs": 2, "num_filters": 4, "dc_lambda": 0.0, "learn_lambda": False,
                "sens_chans": 2, "sens_pools": 1},
    "unet": {"in_chans": 1, "out_chans": 1, "chans": 4, "num_pool_layers": 2, "drop_prob": 0.0},
}


#: the ``cpu`` preset: what one CPU thread trains in about three hours (issue 12 without
#: a GPU). The bundled architectures (the ``BUNDLED`` sizes), fine-tuned from the bundled
#: Colin27 weights (``--init-dir``, default data/weights/) on a smaller corpus (fewer phantom
#: subjects and slices, 4-16 coils) with 96-row readout crops; the held-out split is the
#: ``full`` preset's, so the scores compare with a full run. ``varnet_ssdu`` is the SSDU twin of
#: ``varnet`` on a small budget (same data, init, schedule and steps as ``varnet_short``).
#: VarNet: 7,200 steps, lr x0.3 every 9 epochs (still improving on val at 3,000 steps); U-Net:
#: 2,200 steps of 4 slices, lr x0.3 every 16 epochs (200 steps had left it far behind).
CPU_SCHEDULES: dict[str, dict] = {
    "varnet": dict(lr=5e-4, lr_step_size=9, epochs=36, val_every=3, train_crop_rows=96),
    "cascade": dict(lr=1e-3, lr_step_size=3, epochs=4, val_every=2, train_crop_rows=96),
    "unet": dict(lr=5e-4, lr_step_size=16, epochs=44, val_every=2, batch_size=4),
    "varnet_short": dict(lr=5e-4, lr_step_size=100, epochs=1, val_every=1, train_crop_rows=96),
    "varnet_ssdu": dict(lr=5e-4, lr_step_size=100, epochs=1, val_every=1, train_crop_rows=96),
}
CORPUS_BUNDLED["varnet_short"] = dict(CORPUS_BUNDLED["varnet"])  # the supervised reference of varnet_ssdu (cpu)
#: the cpu preset's training order (the issue's priorities: VarNet, cascade, SSDU pair, U-Net)
CPU_ORDER = ["varnet", "cascade", "varnet_ssdu", "varnet_short", "unet"]

#: the ``cpu-more`` preset: stage 2 of the ``cpu`` run. The ``cpu`` VarNet's validation had
#: been flat for its last 15 epochs on 200 training slices and the U-Net's was still rising, so
#: both continue from the ``cpu`` run's exports (``--init-dir`` = that run folder) on a corpus
#: with 4x the phantom subjects (160, same sources, scanners and slices per volume; the first
#: 40 are the ``cpu`` corpus's subjects) and a wider validation split (8 phantom subjects in
#: all five contrasts + the Colin27 val slabs: 42 slices; the ``cpu`` split had 18 T1 slices),
#: at a lower learning rate, validated every epoch. The cascade is not retrained. Run of
#: 2026-12-07 (one shared thread each, ~1 h): validation SSIM (train-loop protocol) VarNet
#: 0.8071 -> 0.8110 (best epoch 1 of 4), U-Net 0.8214 -> 0.8291 (best epoch 7 of 8); both exported.
CPU_MORE_SCHEDULES: dict[str, dict] = {
    "varnet": dict(lr=5e-5, lr_step_size=2, epochs=4, val_every=1, train_crop_rows=96),
    "unet": dict(lr=1e-4, lr_step_size=3, epochs=8, val_every=1, batch_size=4),
}
CPU_MORE_ORDER = ["varnet", "unet"]
#: the ``cpu-orient`` preset: stage 3. Stages 1-2 trained and validated on axial slices only,
#: and on the held-out split's coronal / sagittal phantoms the U-Net and VarNet lost most
#: (real scans come in all three orientations). Stage 3 continues all three bundled models
#: from the stage-2 files (``--init-dir`` = a copy of data/weights/) on a corpus of new phantom
#: subjects (corpus seed 1, not the stage-1/2 subjects) cycled through axial, coronal and
#: sagittal slabs, validated in all three orientations (9 phantom subjects + the Colin27 val
#: slabs), validated every epoch; the cascade too, so the three are compared on equal data.
#: Run of 2026-12-07 (one shared thread each; VarNet beside U-Net, then the cascade): validation
#: SSIM (train-loop protocol, epoch 0 = the file continued) VarNet 0.7479 -> 0.7566 (45 min),
#: U-Net 0.7491 -> 0.7650 (32 min), cascade 0.7338 -> 0.7492 (12 min), best at the last epoch
#: for all three; all three exported.
CPU_ORIENT_SCHEDULES: dict[str, dict] = {
    "varnet": dict(lr=1e-4, lr_step_size=2, epochs=4, val_every=1, train_crop_rows=96),
    "unet": dict(lr=1e-4, lr_step_size=3, epochs=6, val_every=1, batch_size=4),
    "cascade": dict(lr=3e-4, lr_step_size=1, epochs=2, val_every=1, train_crop_rows=96),
}
CPU_ORIENT_ORDER = ["varnet", "unet", "cascade"]
#: the ``cpu-orient2`` preset: stage 4, the stage-3 VarNet continued on the same corpus at half
#: the learning rate (its validation SSIM was still rising at stage 3's last epoch; on the
#: held-out split it trailed the cascade by 0.006 at 8x). Run of 2026-12-07 (14 min): validation
#: SSIM 0.7566 (stage 3) -> 0.7585, 0.7576, 0.7573, 0.7588 (epoch 4, exported to the run folder,
#: the init of stage 5). The U-Net continued the same way was flat (0.7650 -> 0.7662, 0.7639,
#: 0.7652) and was stopped after 3 epochs: stage 5 starts from the stage-3 U-Net. ``--init-dir`` = a copy of the
#: stage-3 data/weights/.
CPU_ORIENT2_SCHEDULES: dict[str, dict] = {
    "varnet": dict(lr=5e-5, lr_step_size=2, epochs=4, val_every=1, train_crop_rows=96),
}
CPU_ORIENT2_ORDER = ["varnet"]
#: the ``cpu-deep`` preset: stage 5, on a new corpus twice stage 3's size (300 phantom
#: subjects, corpus seed 2, the three orientations). Stage 4 had flattened both models on the
#: stage-3 corpus (validation SSIM flat or falling after its first epoch): new subjects, not
#: more epochs. The VarNet continues from the stage-4 file. The U-Net gets a fourth pooling
#: level, fastMRI's U-Net depth (:func:`deepen_unet`): with three poolings its receptive field
#: (~100 pixels) barely spans the distance between the aliased copies of a 4x equispaced mask
#: (W/4 = 56-64 pixels on these matrices), the 4x held-out gap to ``cs``; at 8x (W/8) it leads.
#: ``--init-dir`` = a folder with the stage-4 ``varnet.pt`` and the stage-3 ``unet.pt`` and
#: ``cascade.pt`` (the cascade is only scored). Run of 2026-12-07 (one thread each, side by side,
#: ~40 min): validation SSIM (train-loop protocol) VarNet 0.7955 -> 0.7968, 0.7996, 0.8047,
#: 0.8042, 0.8046, 0.8048 (epoch 6); U-Net (three poolings: 0.8029; deepened, before training:
#: 0.7984) 0.7896, 0.8083, 0.8074, 0.8022, 0.8116, 0.8125, 0.8224, 0.8236, 0.8242 (epoch 9),
#: 0.8221; the cascade 0.7987. Both exported (validation above the file continued at 4x and 8x).
CPU_DEEP_SCHEDULES: dict[str, dict] = {
    "varnet": dict(lr=5e-5, lr_step_size=3, epochs=6, val_every=1, train_crop_rows=96),
    "unet": dict(lr=3e-4, lr_step_size=4, epochs=10, val_every=1, batch_size=4,
                 model_kwargs={"in_chans": 1, "out_chans": 1, "chans": 16, "num_pool_layers": 4, "drop_prob": 0.0}),
}
CPU_DEEP_ORDER = ["varnet", "unet"]
#: the ``cpu-deep2`` preset: stage 6, the stage-5 VarNet with a fourth pooling level in every
#: cascade's U-Net (:func:`deepen_varnet`; 3.9 M parameters, 7.8 MB as float16), on the stage-5
#: corpus. After stage 5 the deepened U-Net led on validation at 8x (0.786 vs the VarNet's
#: 0.759) with twice the VarNet's parameters; the VarNet had flattened (epochs 3-6 within
#: 0.0006). ``--init-dir`` = a folder with the stage-5 ``varnet.pt``.
CPU_DEEP2_SCHEDULES: dict[str, dict] = {
    "varnet": dict(lr=1e-4, lr_step_size=2, epochs=4, val_every=1, train_crop_rows=96,
                   model_kwargs={"num_cascades": 8, "chans": 8, "pools": 4, "sens_chans": 4, "sens_pools": 2}),
}
CPU_DEEP2_ORDER = ["varnet"]
#: the ``cpu-8x`` preset: stage 7, the stage-6 VarNet continued on the stage-5 corpus with
#: twice as many 8x as 4x samples (``accelerations=[4, 8, 8]``: each training slice draws one of
#: the three pairs, fastMRI's ``MaskFunc`` semantics). After stage 6 the VarNet led the cascade
#: and the U-Net at 4x on validation but trailed the U-Net at 8x (0.766 vs 0.786); the cascade
#: had been trained 20 min in all. ``--init-dir`` = a folder with the stage-6 ``varnet.pt`` and
#: the stage-3 ``cascade.pt``. Run of 2026-12-07 (one thread each, side by side): validation SSIM
#: (train-loop protocol, masks 4x / 8x / 8x) VarNet 0.8017, 0.8034, 0.8068, 0.8062; grown cascade
#: 0.8041, 0.8139, 0.8220, 0.8306, 0.8395, 0.8456, 0.8467.
CPU_8X_MASKS = dict(center_fractions=[0.08, 0.04, 0.04], accelerations=[4, 8, 8])
CPU_8X_SCHEDULES: dict[str, dict] = {
    "varnet": dict(CPU_8X_MASKS, lr=5e-5, lr_step_size=2, epochs=4, val_every=1, train_crop_rows=96,
                   model_kwargs=dict(CPU_DEEP2_SCHEDULES["varnet"]["model_kwargs"])),
    # the stage-3 cascade (5 cascades of 4 convs x 16 filters, 34 k parameters, trained 20 min
    # in all) grown to 10 x 6 x 32 (0.39 M parameters) by :func:`grow_cascade`
    "cascade": dict(CPU_8X_MASKS, lr=5e-4, lr_step_size=4, epochs=7, val_every=1, train_crop_rows=96,
                    model_kwargs={"num_cascades": 10, "num_convs": 6, "num_filters": 32, "dc_lambda": 0.0,
                                  "learn_lambda": False, "sens_chans": 4, "sens_pools": 2}),
}
CPU_8X_ORDER = ["varnet", "cascade"]
#: the ``cpu-8x2`` preset: stage 7b, the ``cpu-8x`` VarNet (still rising on validation at its
#: last epoch) continued with a warm restart at stage 6's learning rate and a longer schedule,
#: same corpus and masks. ``--init-dir`` = the ``cpu-8x`` run folder (its ``varnet.pt`` and
#: ``cascade.pt``).
#: The grown cascade, still rising steeply at its last epoch, continues at the learning rate its
#: ``cpu-8x`` run ended with. Run of 2026-12-07: VarNet 0.8018, 0.8040, 0.8096, 0.8111, 0.8125,
#: 0.8134, 0.8141, 0.8138; cascade 0.8487, 0.8487, 0.8485, 0.8515, 0.8535; both exported
#: (validation with fixed masks above the files they replace at 4x and 8x).
CPU_8X2_SCHEDULES: dict[str, dict] = {
    "varnet": dict(CPU_8X_SCHEDULES["varnet"], lr=1e-4, lr_step_size=3, epochs=8),
    "cascade": dict(CPU_8X_SCHEDULES["cascade"], lr=1.5e-4, lr_step_size=3, epochs=5),
}
CPU_8X2_ORDER = ["varnet", "cascade"]
#: the ``cpu-wide`` preset: stage 8, the stage-7 VarNet with wider full- and half-resolution
#: levels in every cascade's U-Net (:func:`widen_varnet`: channels 8, 16, 32, 64 -> 16, 32, 32,
#: 64; 4.26 M parameters, 8.5 MB as float16), same corpus and masks as stage 7. After stage 7
#: the cascade (10 x 6 convs of 32 filters, all at full resolution) led the VarNet (8 channels
#: at full resolution) by 0.03 / 0.05 SSIM on validation; the VarNet had flattened (its last
#: three epochs within 0.0016). The widths are what fits the VarNet's time target (the U-Net
#: forward 1.35x the stage-7 one, one thread, 224 x 192). ``--init-dir`` = a folder with the
#: stage-7 ``varnet.pt`` (data/weights/). Run of 2026-12-07 (two threads, 48 min): validation SSIM
#: (train-loop protocol) 0.8141 (stage 7) -> 0.8067, 0.8067, 0.8076, 0.8079, 0.8145, 0.8282, 0.8283;
#: fixed masks 4x / 8x 0.8778 / 0.7807 -> 0.8891 / 0.7984.
CPU_WIDE_LEVEL_CHANS = [16, 32, 32, 64]
CPU_WIDE_SCHEDULES: dict[str, dict] = {
    "varnet": dict(CPU_8X_MASKS, lr=2e-4, lr_step_size=5, epochs=7, val_every=1, train_crop_rows=96,
                   model_kwargs=dict(CPU_DEEP2_SCHEDULES["varnet"]["model_kwargs"], chans=16,
                                     level_chans=CPU_WIDE_LEVEL_CHANS)),
}
CPU_WIDE_ORDER = ["varnet"]
#: the ``cpu-wide2`` preset: stage 8b, the ``cpu-wide`` VarNet continued with a warm restart and
#: faster decay, same corpus and masks. ``--init-dir`` = the ``cpu-wide`` run folder.
CPU_WIDE2_SCHEDULES: dict[str, dict] = {
    "varnet": dict(CPU_WIDE_SCHEDULES["varnet"], lr=1e-4, lr_step_size=2, epochs=5),
}
#: the ``cpu-wide3`` preset: stage 9, the stage-8 VarNet (``cpu-wide2``'s, bundled) continued at
#: a lower rate, same corpus and masks: its validation SSIM was still rising at the end of
#: ``cpu-wide2`` (0.8334 -> 0.8352 in the last epoch). ``--init-dir`` = a folder with the stage-8
#: ``varnet.pt`` (data/weights/). Copying trained cascades to add more was tried first and
#: rejected: a fastMRI cascade cannot start as the identity (its NormUnet adds the image mean
#: back), and the copies' extra steps cost 0.03-0.3 SSIM on validation before any training.
CPU_WIDE3_SCHEDULES: dict[str, dict] = {
    "varnet": dict(CPU_WIDE_SCHEDULES["varnet"], lr=5e-5, lr_step_size=3, epochs=9),
}
#: the ``cpu-snr`` preset: stage 10, noise-level robustness. The stage-5 corpus draws SNR
#: log-uniformly in 15-60, so every training target carries a noise floor and the bundled
#: networks learned to add one: on noiseless k-space of dipy's coronal T1 (8 coils, 4x) they
#: scored SSIM 0.31 (VarNet) and 0.40 (cascade) against `cs`'s 0.95 and zero-filled's 0.67, and
#: at SNR 200 still 0.69 / 0.82 against 0.90 (the U-Net 0.26 / 0.59). Stage 10 trains the bundled VarNet and cascade on
#: the stage-5 training split plus :func:`snr_supplement_config`'s (100 more phantom subjects at
#: SNR 60-2000), validating on both validation splits; same architectures and masks; then the
#: stage-5 U-Net the same way. ``--init-dir`` = a folder with the bundled ``varnet.pt``,
#: ``cascade.pt`` and ``unet.pt`` (data/weights/).
CPU_SNR_SCHEDULES: dict[str, dict] = {
    "varnet": dict(CPU_WIDE_SCHEDULES["varnet"], lr=1e-4, lr_step_size=2, epochs=4),
    "cascade": dict(CPU_8X_SCHEDULES["cascade"], lr=1.5e-4, lr_step_size=3, epochs=6),
    # the stage-5 U-Net, same masks as stage 5 (4x / 8x mixed), two threads after the other two runs
    "unet": dict(CPU_DEEP_SCHEDULES["unet"], lr=1e-4, lr_step_size=2, epochs=4),
}
CPU_SNR_ORDER = ["varnet", "cascade", "unet"]
#: the presets that fine-tune the bundled architectures on one CPU thread, and their schedules
CPU_PRESETS: dict[str, dict[str, dict]] = {
    "cpu": CPU_SCHEDULES, "cpu-more": CPU_MORE_SCHEDULES, "cpu-orient": CPU_ORIENT_SCHEDULES,
    "cpu-orient2": CPU_ORIENT2_SCHEDULES, "cpu-deep": CPU_DEEP_SCHEDULES, "cpu-deep2": CPU_DEEP2_SCHEDULES,
    "cpu-8x": CPU_8X_SCHEDULES, "cpu-8x2": CPU_8X2_SCHEDULES, "cpu-wide": CPU_WIDE_SCHEDULES,
    "cpu-wide2": CPU_WIDE2_SCHEDULES, "cpu-wide3": CPU_WIDE3_SCHEDULES, "cpu-snr": CPU_SNR_SCHEDULES,
}
#: the models each of those presets trains, in order (``reproduce``)
CPU_PRESET_ORDERS: dict[str, list[str]] = {
    "cpu": CPU_ORDER, "cpu-more": CPU_MORE_ORDER, "cpu-orient": CPU_ORIENT_ORDER, "cpu-orient2": CPU_ORIENT2_ORDER,
    "cpu-deep": CPU_DEEP_ORDER, "cpu-deep2": CPU_DEEP2_ORDER, "cpu-8x": CPU_8X_ORDER, "cpu-8x2": CPU_8X2_ORDER,
    "cpu-wide": CPU_WIDE_ORDER, "cpu-wide2": CPU_WIDE_ORDER, "cpu-wide3": CPU_WIDE_ORDER, "cpu-snr": CPU_SNR_ORDER,
}
#: the phantom slice orientations of the ``cpu-orient`` corpus (train and val)
ALL_ORIENTATIONS = ("axial", "coronal", "sagittal")


def corpus_config(preset: str):
    """The corpus of the retrained models (``full``), the one-CPU-thread ones (``cpu``,
    ``cpu-more``, ``cpu-orient``: their train / val splits; the held-out split is always
    ``full``'s, see :func:`heldout_config`) or a seconds-size one (``toy``)."""
    from recon.data.corpus import CorpusConfig

    if preset == "toy":
        return CorpusConfig.toy()
    if preset == "cpu":
        return CorpusConfig(num_train_subjects=40, num_val_subjects=2, slices_per_volume=4, coil_counts=(4, 6, 8, 12, 16))
    if preset == "cpu-more":
        return CorpusConfig(num_train_subjects=160, num_val_subjects=8, slices_per_volume=4, coil_counts=(4, 6, 8, 12, 16))
    if preset in ("cpu-orient", "cpu-orient2"):
        return CorpusConfig(num_train_subjects=150, num_val_subjects=9, slices_per_volume=4, coil_counts=(4, 6, 8, 12, 16),
                            orientations=ALL_ORIENTATIONS, seed=1)
    if preset in ("cpu-deep", "cpu-deep2", "cpu-8x", "cpu-8x2", "cpu-wide", "cpu-wide2", "cpu-wide3", "cpu-snr"):
        return CorpusConfig(num_train_subjects=300, num_val_subjects=9, slices_per_volume=4, coil_counts=(4, 6, 8, 12, 16),
                            orientations=ALL_ORIENTATIONS, seed=2)
    return CorpusConfig()


def heldout_config(preset: str):
    """The corpus whose ``test_heldout`` split scores a preset (the ``cpu*`` presets use ``full``'s)."""
    return corpus_config("toy" if preset == "toy" else "full")


def snr_supplement_config():
    """The ``cpu-snr`` preset's second corpus: 100 training and 9 validation phantom subjects
    (other draws than stage 5's: seed 3) at SNR log-uniform in 60-2000, where the noise floor of
    the stage-5 corpus (SNR 15-60) ends and noiseless data begin; no real slabs."""
    from recon.data.corpus import CorpusConfig

    return CorpusConfig(num_train_subjects=100, num_val_subjects=9, num_heldout_subjects=0, slices_per_volume=4,
                        coil_counts=(4, 6, 8, 12, 16), orientations=ALL_ORIENTATIONS, snr_range=(60.0, 2000.0),
                        include_real=False, seed=3)


def union_folder(root, name: str, sources: dict[str, Path]) -> Path:
    """``root/name``: symbolic links to the ``.h5`` files of ``sources`` (``{prefix: folder}``),
    each named ``<prefix>_<file>``; built atomically (:func:`recon.data.io.atomic_folder`), reused
    when it exists."""
    from recon.data.io import atomic_folder

    folder = Path(root) / name
    if folder.is_dir():
        return folder
    files = {prefix: sorted(Path(source).glob("*.h5")) for prefix, source in sources.items()}
    for prefix, found in files.items():
        if not found:
            raise SystemExit(f"union_folder: no .h5 files in {sources[prefix]}")
    with atomic_folder(folder) as tmp:
        for prefix, found in files.items():
            for path in found:
                (tmp / f"{prefix}_{path.name}").symlink_to(path.resolve())
    return folder


def build_preset(preset: str, root) -> dict:
    """``{split: folder}`` of a preset: train / val of :func:`corpus_config`, test_heldout of
    :func:`heldout_config`. ``cpu-snr``: train and val are the unions of the stage-5 splits and
    :func:`snr_supplement_config`'s, and ``val_base`` / ``val_high_snr`` name the two parts."""
    from recon.data.corpus import build_corpus

    folders = build_corpus(corpus_config(preset), root, splits=("train", "val"), progress=True)
    if preset == "cpu-snr":
        supplement = build_corpus(snr_supplement_config(), root, splits=("train", "val"), progress=True)
        base_dir, supplement_dir = folders["train"].parent.name, supplement["train"].parent.name
        union = f"union-{base_dir}-{supplement_dir}"
        folders = {
            "train": union_folder(Path(root) / union, "train", {"base": folders["train"], "snr": supplement["train"]}),
            "val": union_folder(Path(root) / union, "val", {"base": folders["val"], "snr": supplement["val"]}),
            "val_base": folders["val"], "val_high_snr": supplement["val"],
        }
    folders.update(build_corpus(heldout_config(preset), root, splits=("test_heldout",), progress=True))
    return folders


def corpus_settings(name: str, preset: str, corpus_folders: dict, init_dir: Path | None = None) -> dict:
    """A corpus training config (without output_dir): CORPUS_BUNDLED, shrunk for ``toy``,
    the bundled sizes fine-tuned from ``init_dir`` (default data/weights/) for ``cpu`` and
    ``cpu-more`` (whose ``init_dir`` is the ``cpu`` run folder)."""
    settings = dict(CORPUS_BUNDLED[name])
    settings.update(train_data=str(corpus_folders["train"]), val_data=str(corpus_folders["val"]))
    if preset == "toy":
        settings.update(model_kwargs=TOY_MODEL_KWARGS[name], epochs=1, val_every=1, train_crop_rows=None, num_threads=1)
    elif preset in CPU_PRESETS:
        schedules = CPU_PRESETS[preset]
        if name not in schedules:
            raise SystemExit(f"preset {preset!r} trains {sorted(schedules)}, not {name!r}")
        base = name.split("_")[0]
        init = Path(init_dir or WEIGHTS_DIR) / f"{base}.pt"
        settings.update(model_kwargs=dict(BUNDLED[base]["model_kwargs"]), num_threads=1, init_weights=str(init))
        settings.update(schedules[name])  # a schedule may change the architecture (cpu-deep's U-Net)
    return settings


def _deepen_unet_state(old: dict, new: dict, n: int, chans: int) -> dict:
    """The state of a U-Net with ``n + 1`` poolings (``new``: its fresh initialisation) from the
    state ``old`` of one with ``n`` (keys relative to the ``Unet``; see :func:`deepen_unet`)."""
    new = dict(new)
    for key, value in old.items():
        part, rest = key.split(".", 1)
        if part == "down_sample_layers":
            target = key
        elif part == "conv":
            target = f"down_sample_layers.{n}.{rest}"
        else:  # up_transpose_conv.j / up_conv.j -> j + 1
            index, tail = rest.split(".", 1)
            target = f"{part}.{int(index) + 1}.{tail}"
        if new[target].shape != value.shape:
            raise ValueError(f"deepen: {key} {tuple(value.shape)} does not fit {target} {tuple(new[target].shape)}")
        new[target] = value.detach().float().clone()
    width = chans * 2**n  # channels of the new level's skip connection
    first = torch.zeros_like(new["up_conv.0.layers.0.weight"])
    second = torch.zeros_like(new["up_conv.0.layers.4.weight"])
    for c in range(width):
        first[c, width + c, 1, 1] = 1.0  # input = cat(up-sampled bottleneck, skip)
        second[c, c, 1, 1] = 1.0
    new["up_conv.0.layers.0.weight"], new["up_conv.0.layers.4.weight"] = first, second
    return new


def _fresh_model(cls: type, kwargs: dict) -> torch.nn.Module:
    """``cls(**kwargs)`` initialised from a fixed seed (the new parts of a deepened, grown or
    widened network), leaving the global random state alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(20261207)
        return cls(**kwargs)


def _sub_state(state: dict, prefix: str) -> dict:
    """The entries of ``state`` under ``prefix`` (``"a.b."``), keyed relative to it."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _save_deepened(src: Path, dst: Path, prefix: str, model: torch.nn.Module, kwargs: dict) -> Path:
    checkpoint = torch.load(src, map_location="cpu", weights_only=False)
    checkpoint["state_dict"] = {f"{prefix}.{k}": v for k, v in model.state_dict().items()}
    checkpoint.setdefault("hyper_parameters", {}).update(kwargs)
    if "recon" in checkpoint:
        checkpoint["recon"]["model_kwargs"] = dict(kwargs)
        checkpoint["recon"]["deepened_from"] = str(src)
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, dst)
    return dst


def deepen_unet(src: Path, dst: Path) -> Path:
    """A U-Net with one more pooling level, initialised from the trained U-Net ``src``.

    The ``n`` outer levels keep their weights: down-sampling blocks ``0..n-1``, the up-sampling
    blocks (shifted by one) and the final 1x1 conv. The old bottleneck block (``4 chans`` ->
    ``8 chans`` at 1/2**n resolution) becomes the new level's down-sampling block (same
    shape); the new bottleneck and the new level's transposed conv start at PyTorch's default
    initialisation, and the new level's up-sampling block starts as an identity on its skip
    connection (centre taps 1, nothing from the new bottleneck), so that the deeper network
    starts close to what the trained one computes and learns to use the coarser level.

    Returns:
        ``dst``, a checkpoint in ``export_weights``' format (loads with ``load_model``).
    """
    from recon.models.unet import Unet
    from recon.train.checkpoint import load_model

    core, _ = load_model(src, model_name="unet")
    n = int(core.num_pool_layers)
    kwargs = {"in_chans": core.in_chans, "out_chans": core.out_chans, "chans": core.chans,
              "num_pool_layers": n + 1, "drop_prob": core.drop_prob}
    model = _fresh_model(Unet, kwargs)
    model.load_state_dict(_deepen_unet_state(core.state_dict(), model.state_dict(), n, core.chans))
    return _save_deepened(src, dst, "unet", model, kwargs)


def deepen_varnet(src: Path, dst: Path) -> Path:
    """A VarNet whose cascades' U-Nets have one more pooling level (``pools + 1``), each
    initialised from the trained VarNet ``src`` as :func:`deepen_unet` does; the sensitivity
    network and the data-consistency weights are copied unchanged."""
    from recon.models.varnet import VarNet
    from recon.train.checkpoint import load_checkpoint, load_model

    old_model, _ = load_model(src, model_name="varnet")
    kwargs = dict(load_checkpoint(src)["recon"]["model_kwargs"])
    n, chans = int(kwargs["pools"]), int(kwargs["chans"])
    kwargs["pools"] = n + 1
    model = _fresh_model(VarNet, kwargs)
    model.load_state_dict(_varnet_with_new_unets(
        old_model.state_dict(), model.state_dict(), lambda old, new: _deepen_unet_state(old, new, n, chans), "deepen_varnet"
    ))
    return _save_deepened(src, dst, "varnet", model, kwargs)


def _varnet_with_new_unets(old: dict, new: dict, unet_state, who: str) -> dict:
    """The state of a VarNet (``new``: its fresh initialisation) whose cascades' U-Nets were
    reshaped: ``unet_state(old U-Net state, new U-Net state)`` gives each U-Net's, and the rest
    (sensitivity network, data-consistency weights) is copied from ``old``, shapes checked."""
    out = dict(new)
    for key, value in old.items():
        if ".model.unet." not in key:
            if new[key].shape != value.shape:
                raise ValueError(f"{who}: {key} {tuple(value.shape)} does not fit {tuple(new[key].shape)}")
            out[key] = value.detach().float().clone()
    for prefix in sorted({k.split(".model.unet.")[0] + ".model.unet." for k in old if ".model.unet." in k}):
        out.update({prefix + k: v for k, v in unet_state(_sub_state(old, prefix), _sub_state(new, prefix)).items()})
    return out


def _widen_unet_state(old: dict, new: dict, old_widths, new_widths) -> dict:
    """The state of a :class:`~recon.models.Unet` with wider levels (``new``: its fresh
    initialisation) that computes what the U-Net of state ``old`` computes (see
    :func:`widen_varnet`)."""
    p = len(old_widths)
    level = [torch.arange(w) for w in old_widths]
    bottleneck = torch.arange(2 * old_widths[-1])

    def maps(key: str):
        """(old output channels, old input channels) of a weight, in the new tensor's indices."""
        parts = key.split(".")
        if parts[0] == "down_sample_layers":
            k = int(parts[1])
            if parts[3] == "0":
                return level[k], (torch.arange(old[key].shape[1]) if k == 0 else level[k - 1])
            return level[k], level[k]
        if parts[0] == "conv":
            return bottleneck, (level[-1] if parts[2] == "0" else bottleneck)
        j = int(parts[1])
        k = p - 1 - j
        if parts[0] == "up_transpose_conv":
            return level[k], (bottleneck if j == 0 else level[k + 1])
        if parts[0] == "up_conv" and j == p - 1 and parts[2] == "1":  # the final 1x1 conv
            return torch.arange(old[key].shape[0]), level[0]
        if parts[-2] == "0":  # input = cat(up-sampled, skip): the skip starts at the new width
            return level[k], torch.cat([level[k], new_widths[k] + level[k]])
        return level[k], level[k]

    out = {k: v.detach().float().clone() for k, v in new.items()}
    for key, value in old.items():
        value = value.detach().float()
        if key.endswith(".bias"):  # the final 1x1 conv's (its outputs do not widen)
            out[key] = value.clone()
            continue
        rows, cols = maps(key)
        target = out[key]
        if key.startswith("up_transpose_conv"):  # ConvTranspose2d weights are (in, out, kh, kw)
            target[:, rows] = 0.0  # old units do not see the new ones (yet)
            target[cols[:, None], rows[None, :]] = value
        else:
            target[rows] = 0.0
            target[rows[:, None], cols[None, :]] = value
    return out


def widen_varnet(src: Path, dst: Path, level_chans) -> Path:
    """A VarNet whose cascades' U-Nets have wider levels (``level_chans``, finest first; at
    least the trained widths), starting from the trained VarNet ``src`` and computing the same
    image.

    Each trained conv keeps its weights; the new channels get PyTorch's default initialisation
    on their inputs and zero weights on their outputs (the skip connections' included), so they
    change nothing until training uses them. The sensitivity network and the data-consistency
    weights are copied unchanged. Returns ``dst`` (loads with ``load_model``).
    """
    from recon.models.varnet import VarNet
    from recon.train.checkpoint import load_checkpoint, load_model

    old_model, _ = load_model(src, model_name="varnet")
    kwargs = dict(load_checkpoint(src)["recon"]["model_kwargs"])
    old_widths = old_model.cascades[0].model.unet.level_chans
    new_widths = tuple(int(c) for c in level_chans)
    if len(new_widths) != len(old_widths) or any(n < o for n, o in zip(new_widths, old_widths)):
        raise ValueError(
            f"widen_varnet: level_chans must be {len(old_widths)} widths of at least {list(old_widths)}, "
            f"got {list(level_chans)!r}"
        )
    kwargs["level_chans"] = list(new_widths)
    kwargs["chans"] = new_widths[0]
    model = _fresh_model(VarNet, kwargs)
    model.load_state_dict(_varnet_with_new_unets(
        old_model.state_dict(), model.state_dict(),
        lambda old, new: _widen_unet_state(old, new, old_widths, new_widths), "widen_varnet",
    ))
    return _save_deepened(src, dst, "varnet", model, kwargs)


def _grow_block_state(old: dict, new: dict, num_convs: int) -> dict:
    """The state of a wider and deeper :class:`~recon.models.cascade.CascadeBlock` (``new``: its
    fresh initialisation) that computes what the block of state ``old`` computes (see
    :func:`grow_cascade`)."""
    out = {k: v.detach().float().clone() for k, v in new.items()}
    n_old = len({k.split(".")[1] for k in old if k.startswith("convs.")})
    # the old hidden layers keep their places, identity layers fill the gap before the last conv
    mapping = {i: i for i in range(n_old - 1)}
    mapping[n_old - 1] = num_convs - 1
    for i, j in mapping.items():
        w, b = old[f"convs.{i}.weight"].float(), old[f"convs.{i}.bias"].float()
        nw, nb = out[f"convs.{j}.weight"], out[f"convs.{j}.bias"]
        co, ci = w.shape[:2]
        nw[:co, :ci] = w
        nb[:co] = b
        nw[:co, ci:] = 0.0  # old units (and the 2 output channels, all old) do not see the new ones (yet)
    for j in range(n_old - 1, num_convs - 1):  # identity on post-ReLU (non-negative) features
        nw, nb = out[f"convs.{j}.weight"], out[f"convs.{j}.bias"]
        nw.zero_()
        nb.zero_()
        for c in range(nw.shape[0]):
            nw[c, c, 1, 1] = 1.0
    out["dc_lambda"] = old["dc_lambda"].detach().float().clone()
    return out


def grow_cascade(src: Path, dst: Path, num_cascades: int, num_convs: int, num_filters: int) -> Path:
    """A larger deep cascade (more cascades, conv layers and filters) that starts from the
    trained cascade ``src`` and computes the same image.

    * wider: each trained conv keeps its weights; the new filters get PyTorch's default
      initialisation on their inputs and zero weights on their outputs, so they change
      nothing until training uses them;
    * deeper: the new conv layers, inserted before each CNN's last conv, start as identities
      (centre tap 1): their input is a ReLU's output, so ``relu(identity(x)) = x``;
    * more cascades: the new ones follow the trained ones, with the last cascade's
      data-consistency weight and a zero last conv (the CNN's residual is zero).

    The sensitivity network is copied unchanged. Returns ``dst`` (loads with ``load_model``).
    """
    from recon.models.cascade import CascadeNet
    from recon.train.checkpoint import load_checkpoint, load_model

    old_model, _ = load_model(src, model_name="cascade")
    kwargs = dict(load_checkpoint(src)["recon"]["model_kwargs"])
    n_old = len(old_model.cascades)
    if num_cascades < n_old or num_convs < kwargs["num_convs"] or num_filters < kwargs["num_filters"]:
        raise ValueError(
            f"grow_cascade: sizes can only grow, got num_cascades={num_cascades}, num_convs={num_convs}, "
            f"num_filters={num_filters} from {n_old}, {kwargs['num_convs']}, {kwargs['num_filters']}"
        )
    kwargs.update(num_cascades=num_cascades, num_convs=num_convs, num_filters=num_filters)
    model = _fresh_model(CascadeNet, kwargs)
    old, new = old_model.state_dict(), model.state_dict()
    out = dict(new)
    for key, value in old.items():
        if key.startswith("sens_net."):
            out[key] = value.detach().float().clone()
    for c in range(num_cascades):
        sub_new = _sub_state(new, f"cascades.{c}.")
        if c < n_old:
            grown = _grow_block_state(_sub_state(old, f"cascades.{c}."), sub_new, num_convs)
        else:
            grown = {k: v.detach().float().clone() for k, v in sub_new.items()}
            grown[f"convs.{num_convs - 1}.weight"].zero_()
            grown[f"convs.{num_convs - 1}.bias"].zero_()
            grown["dc_lambda"] = old[f"cascades.{n_old - 1}.dc_lambda"].detach().float().clone()
        out.update({f"cascades.{c}.{k}": v for k, v in grown.items()})
    model.load_state_dict(out)
    return _save_deepened(src, dst, "cascade", model, kwargs)


#: the presets whose network is larger than the trained file they start from: ``(preset, model)
#: -> reshape(init file, run folder, model_kwargs) -> the reshaped init file`` (in the run folder)
INIT_RESHAPES: dict[tuple[str, str], Callable[[Path, Path, dict], Path]] = {
    # one more pooling level (CPU_DEEP_SCHEDULES)
    ("cpu-deep", "unet"): lambda src, run, kw: deepen_unet(src, run / "unet_deepened_init.pt"),
    # one more pooling level in every cascade (CPU_DEEP2_SCHEDULES)
    ("cpu-deep2", "varnet"): lambda src, run, kw: deepen_varnet(src, run / "varnet_deepened_init.pt"),
    # more, deeper and wider cascades (CPU_8X_SCHEDULES)
    ("cpu-8x", "cascade"): lambda src, run, kw: grow_cascade(
        src, run / "cascade_grown_init.pt", kw["num_cascades"], kw["num_convs"], kw["num_filters"]),
    # wider U-Net levels (CPU_WIDE_SCHEDULES)
    ("cpu-wide", "varnet"): lambda src, run, kw: widen_varnet(src, run / "varnet_widened_init.pt", kw["level_chans"]),
}


def weights_path(name: str) -> Path:
    return WEIGHTS_DIR / f"{name}.pt"


def bundled_path(name: str, init_dir: Path | None = None) -> Path:
    """The weights a corpus model is compared with (and the cpu preset starts from)."""
    return Path(init_dir or WEIGHTS_DIR) / f"{name}.pt"


def export_decisions(results: dict, names, split: str = "val") -> dict[str, tuple[bool, str]]:
    """Which retrained models may replace the bundled weights: only those whose SSIM on
    ``split`` beats the bundled model's at both 4x and 8x (``bundled_<name>`` entries of
    ``results``). ``reproduce`` decides on the corpus's validation split, so that the held-out
    split chooses nothing (the ``cpu`` run of 2026-12-07 decided on ``test_heldout``).

    Returns:
        ``{name: (export?, reason)}`` for the names of the bundled models (varnet, cascade, unet).
    """
    out = {}
    for name in names:
        if name not in BUNDLED:
            continue
        parts = []
        ok = True
        for accel in ("4x", "8x"):
            new = results["splits"].get(f"{split}/{accel}/{name}")
            old = results["splits"].get(f"{split}/{accel}/bundled_{name}")
            if new is None:
                ok = False
                parts.append(f"{accel}: not scored")
                continue
            if old is None:
                parts.append(f"{accel}: SSIM {new['ssim']:.4f} (no bundled weights to compare)")
                continue
            better = new["ssim"] > old["ssim"]
            ok = ok and better
            parts.append(f"{accel}: SSIM {new['ssim']:.4f} vs bundled {old['ssim']:.4f}")
        out[name] = (ok, f"{split} " + "; ".join(parts))
    return out


def cmd_train(args: argparse.Namespace) -> int:
    corpus = getattr(args, "data", "embedded") == "corpus"
    if corpus:
        folders = build_preset(args.preset, args.corpus_root)
        settings = corpus_settings(args.name, args.preset, folders, getattr(args, "init_dir", None))
        reshape = INIT_RESHAPES.get((args.preset, args.name))
        if reshape is not None:  # a preset that trains a larger network than its init file's
            kwargs = settings["model_kwargs"]
            settings["init_weights"] = str(reshape(Path(settings["init_weights"]), args.run_dir, kwargs))
    elif args.name not in BUNDLED:
        raise SystemExit(f"{args.name!r} is trained on the corpus only (--data corpus)")
    else:
        settings = dict(BUNDLED[args.name])
    settings.update(output_dir=str(args.run_dir / args.name), data_cache=args.data_cache, progress=False)
    if args.model_impl:
        settings["model_impl"] = args.model_impl
    if args.model_kwargs:
        settings["model_kwargs"] = json.loads(args.model_kwargs)
    if args.epochs:
        settings["epochs"] = args.epochs
    if args.num_threads:
        settings["num_threads"] = args.num_threads
    config = TrainConfig.from_dict(settings)
    (args.run_dir / args.name).mkdir(parents=True, exist_ok=True)
    (args.run_dir / args.name / "config.json").write_text(config.to_json())
    logger.info("config: %s", config.to_json())
    start = time.perf_counter()
    result = train(config)
    elapsed = time.perf_counter() - start
    logger.info("trained in %.1f min; best %s", elapsed / 60, result.best)
    if result.best_checkpoint is None:
        logger.error("no validation was run, nothing to export")
        return 1
    if corpus:
        # corpus runs export float16 weights into the run folder; data/weights/ only with --export
        dst = weights_path(args.name) if getattr(args, "export", False) else args.run_dir / f"{args.name}.pt"
        out = export_weights(result.best_checkpoint, dst, half=True)
    else:
        out = export_weights(result.best_checkpoint, weights_path(args.name))
    logger.info("exported %s (%.2f MB)", out, out.stat().st_size / 1e6)
    return 0


# --------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------


class ApiMethod(torch.nn.Module):
    """``recon.reconstruct(method=...)`` (e.g. its tuned L1-wavelet CS) with a k-space model's signature."""

    def __init__(self, method: str) -> None:
        super().__init__()
        self.method = method

    def forward(self, masked_kspace, mask, num_low_frequencies=None):
        from recon.api import reconstruct

        out = [
            reconstruct(masked_kspace[i], mask[i, 0, 0, :, 0].float(), method=self.method, progress=False)
            for i in range(masked_kspace.shape[0])
        ]
        return torch.stack(out).float()


class SigpyL1Wavelet(torch.nn.Module):
    """sigpy's ``L1WaveletRecon`` (sampling mask as ``weights``) with ``EspiritCalib`` maps
    calibrated on the fully sampled centre lines (the baseline of the issue)."""

    def __init__(self, lamda: float, max_iter: int = 100) -> None:
        super().__init__()
        self.lamda = lamda
        self.max_iter = max_iter

    def forward(self, masked_kspace, mask, num_low_frequencies=None):
        import sigpy.mri as mr

        out = []
        calib = int(num_low_frequencies) if num_low_frequencies else 24
        for i in range(masked_kspace.shape[0]):
            kspace = torch.view_as_complex(masked_kspace[i].contiguous()).numpy().astype(np.complex128)
            weights = mask[i, 0, 0, :, 0].numpy().astype(np.float64)
            kernel = max(3, min(6, calib // 2))  # a 6-wide kernel in an 8-line centre leaves no calibration rows
            maps = mr.app.EspiritCalib(kspace, calib_width=calib, kernel_width=kernel, show_pbar=False).run()
            image = mr.app.L1WaveletRecon(
                kspace, maps, self.lamda, weights=weights, max_iter=self.max_iter, show_pbar=False
            ).run()
            coils = maps * image[None]  # RSS of the coil images, as the targets are
            out.append(torch.from_numpy(np.sqrt((np.abs(coils) ** 2).sum(0))).float())
        return torch.stack(out)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from recon.train.data import make_dataset, make_loader, make_transform
    from recon.train.evaluate import ZeroFilled, evaluate
    from recon.train.registry import MODEL_SPECS

    torch.set_num_threads(args.num_threads or 1)
    if args.weights and len(args.names) != 1:
        raise SystemExit("--weights needs exactly one model name")
    learned, results = {}, {"weights": {}, "splits": {}}
    corpus_folders = {}
    if getattr(args, "data", "embedded") == "corpus":
        corpus_folders = build_preset(args.preset, args.corpus_root)
    mask_type = getattr(args, "mask_type", None) or ("equispaced_fraction" if corpus_folders else "random")
    for name in args.names:
        if args.weights:
            path = Path(args.weights)
        elif corpus_folders and not getattr(args, "export", False):
            path = args.run_dir / f"{name}.pt"
        else:
            path = weights_path(name)
        learned[name] = load_model(path)[0]
        results["weights"][name] = str(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
    baselines = {"zero_filled": ZeroFilled()}
    for method in args.api_methods:
        baselines[f"reconstruct_{method}"] = ApiMethod(method)

    for split in args.splits:
        for accel, frac in ((4, 0.08), (8, 0.04)):
            loaders = {}
            for domain, family in (("kspace", "varnet"), ("image", "unet")):
                transform = make_transform(
                    family, train=False, mask_type=mask_type, center_fractions=[frac], accelerations=[accel], seed=0
                )
                data = str(corpus_folders[split]) if split in corpus_folders else f"embedded:{split}"
                dataset = make_dataset(data, transform, cache=args.data_cache)
                if args.max_slices:
                    dataset.raw_samples = dataset.raw_samples[: args.max_slices]
                loaders[domain] = make_loader(dataset, batch_size=1, shuffle=False, seed=0)[0]
            run = {name: (model, MODEL_SPECS[name.split("_")[0]].domain) for name, model in learned.items()}
            run.update({name: (net, "kspace") for name, net in baselines.items()})
            if accel in args.sigpy_lamda:
                run["sigpy_l1wavelet"] = (SigpyL1Wavelet(args.sigpy_lamda[accel]), "kspace")
            for method, (net, domain) in run.items():
                start = time.perf_counter()
                with torch.inference_mode():
                    scores = evaluate(net, loaders[domain], domain=domain, progress=False)
                seconds = (time.perf_counter() - start) / max(scores["num_slices"], 1)
                key = f"{split}/{accel}x/{method}"
                results["splits"][key] = {
                    k: v for k, v in scores.items() if k in ("nmse", "psnr", "ssim", "ssim_std", "num_volumes", "num_slices")
                } | {"seconds_per_slice": seconds, "volumes": scores["volumes"]}
                logger.info("%-28s ssim %.4f psnr %.2f nmse %.4f (%.2fs/slice)", key, scores["ssim"], scores["psnr"], scores["nmse"], seconds)
                if args.json:
                    Path(args.json).write_text(json.dumps(results, indent=2))
    print(markdown_table(results))
    return 0


def _lamdas(text: str) -> dict[int, float]:
    out = {}
    for item in text.split(","):
        accel, lamda = item.split(":")
        out[int(accel)] = float(lamda)
    return out


def cmd_tune_sigpy(args: argparse.Namespace) -> int:
    """Pick sigpy's lamda per acceleration by mean SSIM on val slices (fixed masks)."""
    from recon.train.data import make_dataset, make_transform
    from recon.metrics import ssim

    torch.set_num_threads(1)
    best = {}
    for accel, frac in ((4, 0.08), (8, 0.04)):
        if accel not in args.accels:
            continue
        transform = make_transform("varnet", train=False, mask_type="random", center_fractions=[frac], accelerations=[accel], seed=0)
        dataset = make_dataset("embedded:val", transform, cache=args.data_cache)
        picks = np.linspace(0, len(dataset) - 1, args.slices).round().astype(int)
        samples = [dataset[int(i)] for i in picks]
        scores = {}
        for lamda in args.lamdas:
            net = SigpyL1Wavelet(lamda)
            values = []
            for sample in samples:
                out = net(sample.masked_kspace[None], sample.mask[None], sample.num_low_frequencies)[0].numpy()
                if not np.isfinite(out).all():
                    values.append(float("nan"))  # sigpy diverged: this lamda is not a candidate
                    continue
                values.append(float(ssim(sample.target.numpy()[None], out[None], maxval=sample.max_value)))
            scores[lamda] = float(np.mean(values))
            logger.info("%dx lamda %g: val ssim %.4f", accel, lamda, scores[lamda])
        finite = {k: v for k, v in scores.items() if np.isfinite(v)}
        best[accel] = max(finite, key=finite.get)
    print(",".join(f"{a}:{l:g}" for a, l in best.items()))
    return 0


def markdown_table(results: dict) -> str:
    lines = ["| split | accel | method | SSIM | PSNR (dB) | NMSE | s/slice |", "|---|---|---|---|---|---|---|"]
    for key, r in results["splits"].items():
        split, accel, method = key.split("/")
        lines.append(
            f"| {split} | {accel} | {method} | {r['ssim']:.4f} | {r['psnr']:.2f} | {r['nmse']:.4f} | {r['seconds_per_slice']:.3f} |"
        )
    return "\n".join(lines)


def _corpus_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", choices=("embedded", "corpus"), default="embedded" if parser.prog.split()[-1] != "reproduce" else "corpus",
                        help="embedded Colin27 splits (the current bundled weights) or the physics corpus")
    parser.add_argument("--preset", choices=("full", *CPU_PRESETS, "toy"), default="full",
                        help="corpus and model sizes (full: GPU; cpu: bundled sizes fine-tuned in ~3 h of one CPU thread; "
                             "cpu-more: the cpu run's VarNet and U-Net continued on a 4x larger corpus; cpu-orient: the "
                             "three bundled models continued on axial + coronal + sagittal phantoms; toy: CPU smoke run)")
    parser.add_argument("--init-dir", type=Path, default=None,
                        help="cpu / cpu-more / cpu-orient presets: fine-tune from <DIR>/<model>.pt (default data/weights/; "
                             "cpu: the Colin27 weights of commit b98079f, cpu-more: the cpu run folder, cpu-orient: a copy "
                             "of data/weights/ after stage 2)")
    parser.add_argument("--corpus-root", default=None, help="parent folder of the corpus cache (default $RECON_CACHE)")
    parser.add_argument("--export", action="store_true", help="write the float16 weights into data/weights/ (default: the run folder)")


def model_card(name: str, run_dir: Path, results: dict, preset: str) -> str:
    """A markdown model card: data, command, config, training time, held-out scores."""
    from recon.train import load_model as _load

    ckpt_path = run_dir / name / "best.ckpt"
    config = json.loads((run_dir / name / "config.json").read_text())
    meta = torch.load(ckpt_path, map_location="cpu", weights_only=False).get("recon", {}) if ckpt_path.exists() else {}
    history = meta.get("history") or []
    minutes = sum(h.get("train_time_s", 0.0) for h in history) / 60
    weights = run_dir / f"{name}.pt"
    if not weights.exists():
        weights = weights_path(name)  # exported with --export
    params = sum(p.numel() for p in _load(weights)[0].parameters()) if weights.exists() else 0
    lines = [
        f"# Model card: `{name}`", "",
        f"* model: `{config['model']}` with `{json.dumps(config['model_kwargs'])}` ({params:,} parameters, "
        f"{weights.stat().st_size / 1e6 if weights.exists() else 0:.2f} MB float16)",
        f"* training: {'self-supervised SSDU (rho %s, %s selection of %s), no references' % (config.get('ssdu_rho'), config.get('ssdu_selection'), config.get('ssdu_unit', 'points')) if config.get('self_supervised') else 'supervised, loss ' + config['loss']}; "
        f"{len(history)} epochs, {history[-1]['global_step'] if history else 0} steps, {minutes:.1f} min",
        f"* data: `recon.data.corpus` preset `{preset}`: train `{config['train_data']}`, val `{config['val_data']}`",
        f"* masks: {config['mask_type']} {config['accelerations']}x with centre fractions {config['center_fractions']}",
        f"* command: `python scripts/train_bundled.py reproduce --preset {preset} --run-dir {run_dir}"
        + (" --init-dir <the Colin27 weights>` (fine-tuned from `" + str(config.get("init_weights")) + "`)" if config.get("init_weights") else "`"),
        f"* best validation: {json.dumps({k: round(v, 4) for k, v in (meta.get('best') or {}).items() if isinstance(v, float)})}",
        "", "## Scores (val: the validation split, which decides the export; test_heldout: sources never used for training)", "",
        "| split | accel | SSIM | PSNR (dB) | NMSE |", "|---|---|---|---|---|",
    ]
    for key, r in results["splits"].items():
        split, accel, method = key.split("/")
        if method == name:
            lines.append(f"| {split} | {accel} | {r['ssim']:.4f} | {r['psnr']:.2f} | {r['nmse']:.4f} |")
    lines += ["", "## Config", "", "```json", json.dumps(config, indent=2, sort_keys=True), "```", ""]
    return "\n".join(lines)


def source_table(results: dict) -> str:
    """SSIM per held-out source (volumes grouped by file-name source, slice-weighted)."""

    def source(fname: str) -> str:
        stem = fname.rsplit(".", 1)[0].split("_", 3)[-1]  # test_heldout_0001_<source>
        return stem.split("_", 1)[-1] if stem[:4].isdigit() else stem

    rows: dict[tuple[str, str], dict[str, float]] = {}
    sources: list[str] = []
    for key, r in results["splits"].items():
        split, accel, method = key.split("/")
        if split != "test_heldout":
            continue
        groups: dict[str, list[tuple[float, int]]] = {}
        for fname, v in r.get("volumes", {}).items():
            groups.setdefault(source(fname), []).append((v["ssim"], v.get("slices", 1)))
        for name, vals in groups.items():
            if name not in sources:
                sources.append(name)
            weight = sum(n for _, n in vals)
            rows.setdefault((accel, method), {})[name] = sum(x * n for x, n in vals) / weight
    lines = ["| accel | method | " + " | ".join(sources) + " |", "|---|---|" + "---|" * len(sources)]
    for (accel, method), vals in rows.items():
        lines.append(f"| {accel} | {method} | " + " | ".join(f"{vals.get(s, float('nan')):.4f}" for s in sources) + " |")
    return "\n".join(lines)


def cmd_reproduce(args: argparse.Namespace) -> int:
    """Corpus -> every corpus model -> held-out scores -> model cards and REPORT.md."""
    from recon.data.io import atomic_path

    args.run_dir.mkdir(parents=True, exist_ok=True)
    if args.names is None:
        args.names = CPU_PRESET_ORDERS.get(args.preset, ["varnet", "varnet_ssdu", "cascade", "unet"])
    for name in [] if args.no_train else args.names:
        train_args = argparse.Namespace(
            name=name, run_dir=args.run_dir, data_cache=args.data_cache, model_impl=None, model_kwargs=None,
            epochs=None, num_threads=args.num_threads, data="corpus", preset=args.preset,
            corpus_root=args.corpus_root, export=False, init_dir=args.init_dir,
        )
        if cmd_train(train_args) != 0:
            return 1
    scores_file = args.run_dir / "heldout_scores.json"
    previous = {"weights": {}, "splits": {}}
    if args.reuse_scores and scores_file.exists():
        previous = json.loads(scores_file.read_text())

    splits = ["val", "test_heldout"]  # val: the export decision; test_heldout: the reported scores
    results = {"weights": dict(previous["weights"]), "splits": dict(previous["splits"])}

    def scored(method: str, split: str) -> bool:
        return all(f"{split}/{accel}x/{method}" in results["splits"] for accel in (4, 8))

    common = dict(
        weights=None, data_cache=args.data_cache, num_threads=args.num_threads, sigpy_lamda={}, max_slices=args.max_slices,
        mask_type=None, run_dir=args.run_dir, data="corpus", preset=args.preset, corpus_root=args.corpus_root, export=False,
    )
    # the run's weights (run_dir/<name>.pt) are scored; data/weights/ changes only after the decision below
    for split in splits:
        names = [n for n in args.names if not scored(n, split)]
        methods = [m for m in args.api_methods if not scored(f"reconstruct_{m}", split)]
        if not (names or methods or not scored("zero_filled", split)):
            continue
        out = args.run_dir / f"scores_{split}_new.json"
        cmd_evaluate(argparse.Namespace(**common, names=names, splits=[split], api_methods=methods, json=str(out)))
        new = json.loads(out.read_text())
        results["weights"].update(new["weights"])
        results["splits"].update(new["splits"])
    if args.compare_bundled:
        # the weights bundled now (or those of --init-dir), scored on the same files
        for name in sorted(BUNDLED):
            if not bundled_path(name, args.init_dir).exists():
                continue
            for split in splits:
                if scored(f"bundled_{name}", split):
                    continue
                out = args.run_dir / f"scores_{split}_bundled_{name}.json"
                cmd_evaluate(argparse.Namespace(**{**common, "weights": str(bundled_path(name, args.init_dir))}, names=[name],
                                                splits=[split], api_methods=[], json=str(out)))
                for key, value in json.loads(out.read_text())["splits"].items():
                    key_split, accel, method = key.split("/")
                    if method == name:
                        results["splits"][f"{key_split}/{accel}/bundled_{name}"] = value
    with atomic_path(scores_file) as tmp:
        tmp.write_text(json.dumps(results, indent=2))
    decisions = export_decisions(results, args.names, split="val")
    if args.export:
        for name, (ok, why) in decisions.items():
            if ok:
                with atomic_path(weights_path(name)) as tmp:
                    shutil.copyfile(args.run_dir / f"{name}.pt", tmp)
            logger.info("%s: %s (%s)", name, "exported to data/weights/" if ok else "NOT exported", why)
    cards = args.run_dir / "cards"
    cards.mkdir(exist_ok=True)
    for name in args.names:
        with atomic_path(cards / f"{name}.md") as tmp:
            tmp.write_text(model_card(name, args.run_dir, results, args.preset))
    ordered = sorted(results["splits"].items(), key=lambda kv: (kv[0].split("/")[0], int(kv[0].split("/")[1].rstrip("x"))))
    results = {**results, "splits": dict(ordered)}  # stable: methods keep their order per acceleration
    table = markdown_table(results)
    with atomic_path(args.run_dir / "REPORT.md") as tmp:
        tmp.write_text(
            f"# Corpus-trained models, validation and held-out scores (preset {args.preset})\n\n"
            "Mean over volumes of fastMRI's per-volume SSIM / PSNR / NMSE on `val` (chooses the exports) "
            "and `test_heldout` (sources never used for training, only reported; see recon.data.corpus).\n\n"
            f"{table}\n\n## SSIM per held-out source (slice-weighted)\n\n{source_table(results)}\n\n"
            "## Export decision (new weights replace the bundled ones only if better on validation at 4x and 8x)\n\n"
            + "".join(f"* `{n}`: {'export' if ok else 'keep the bundled weights'} - {why}\n" for n, (ok, why) in decisions.items())
        )
    logger.info("wrote %s and %s", args.run_dir / "REPORT.md", cards)
    return 0


def cmd_time(args: argparse.Namespace) -> int:
    """``recon.reconstruct`` time of the learned methods against ``cs`` on the committed sample
    (3 slices, 8 coils, 224 x 192, 4x equispaced mask), in one process, calls interleaved so
    that background load hits every method alike; the median of ``--repeats`` calls after a
    warm-up call (which also loads the weights)."""
    import h5py

    from recon.api import reconstruct
    from recon.data import sample_file
    from recon.masks import create_mask_for_mask_type

    previous = torch.get_num_threads()
    torch.set_num_threads(args.num_threads)
    try:
        with h5py.File(sample_file("val"), "r") as hf:
            kspace = hf["kspace"][()]
        mask_func = create_mask_for_mask_type("equispaced_fraction", [0.08], [4])
        mask = mask_func((1, 1, kspace.shape[-1], 1), seed=0)[0].numpy().reshape(-1)
        undersampled = kspace * mask
        methods = ["cs", *args.methods]
        for method in methods:  # warm-up
            reconstruct(undersampled, mask, method=method, weights=args.weights.get(method), progress=False)
        times = {m: [] for m in methods}
        for _ in range(args.repeats):
            for method in methods:
                start = time.perf_counter()
                reconstruct(undersampled, mask, method=method, weights=args.weights.get(method), progress=False)
                times[method].append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous)
    median = {m: float(np.median(t)) for m, t in times.items()}
    result = {"data": "data/fastmri/sample_val_multicoil.h5, 3 slices, 4x equispaced", "threads": args.num_threads,
              "repeats": args.repeats, "seconds": median, "ratio_to_cs": {m: median[m] / median["cs"] for m in methods},
              "weights": {m: args.weights.get(m, "bundled") for m in args.methods}}
    lines = ["| method | median s / call (3 slices) | time / cs |", "|---|---|---|"]
    lines += [f"| {m} | {median[m]:.3f} | {median[m] / median['cs']:.2f} |" for m in methods]
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


def _weights_map(text: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in text.split(",") if item)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_train = sub.add_parser("train", help="train one bundled model and export it to data/weights/")
    p_train.add_argument("name", choices=sorted(set(BUNDLED) | set(CORPUS_BUNDLED)))
    p_train.add_argument("--run-dir", type=Path, default=Path("/tmp/recon-bundled"), help="checkpoints go here (outside the repo)")
    p_train.add_argument("--data-cache", default=None, help="cache folder for the embedded splits")
    p_train.add_argument("--model-impl", choices=("recon", "fastmri"), default=None)
    p_train.add_argument("--model-kwargs", default=None, help="override the constructor arguments (JSON)")
    p_train.add_argument("--epochs", type=int, default=None, help="override the number of epochs")
    p_train.add_argument("--num-threads", type=int, default=None)
    _corpus_arguments(p_train)
    p_train.set_defaults(func=cmd_train)
    p_eval = sub.add_parser("evaluate", help="score bundled weights on test splits at 4x and 8x")
    p_eval.add_argument("names", nargs="+", choices=sorted(set(BUNDLED) | set(CORPUS_BUNDLED)), metavar="NAME", help="bundled models to score")
    p_eval.add_argument("--weights", default=None, help="a checkpoint (default data/weights/<name>.pt)")
    p_eval.add_argument("--splits", nargs="+", default=["test", "test_heldout"])
    p_eval.add_argument("--data-cache", default=None)
    p_eval.add_argument("--num-threads", type=int, default=None)
    p_eval.add_argument("--json", default=None, help="write the scores here")
    p_eval.add_argument("--api-methods", nargs="*", default=["cs"], help="recon.reconstruct methods to compare with")
    p_eval.add_argument("--sigpy-lamda", type=_lamdas, default={}, metavar="4:L,8:L",
                        help="also run sigpy L1WaveletRecon with these lamdas per acceleration (see tune-sigpy)")
    p_eval.add_argument("--max-slices", type=int, default=None, help="score only the first slices of each split")
    p_eval.add_argument("--mask-type", default=None, help="evaluation masks (default: random; equispaced_fraction with --data corpus)")
    p_eval.add_argument("--run-dir", type=Path, default=Path("/tmp/recon-bundled"), help="where corpus runs exported their weights")
    _corpus_arguments(p_eval)
    p_rep = sub.add_parser("reproduce", help="build the corpus, train all corpus models, score them held-out, write cards")
    p_rep.add_argument("--run-dir", type=Path, required=True)
    p_rep.add_argument("--names", nargs="+", default=None, choices=sorted(CORPUS_BUNDLED),
                       help="models to train (default: varnet varnet_ssdu cascade unet; cpu preset: "
                            "varnet cascade varnet_ssdu varnet_short unet)")
    p_rep.add_argument("--num-threads", type=int, default=None)
    p_rep.add_argument("--data-cache", default=None)
    p_rep.add_argument("--max-slices", type=int, default=None, help="score only the first slices of each split")
    p_rep.add_argument("--api-methods", nargs="*", default=["cs"])
    p_rep.add_argument("--no-train", action="store_true",
                       help="score and report the weights already in the run folder (<run-dir>/<name>.pt), train nothing")
    p_rep.add_argument("--reuse-scores", action="store_true",
                       help="keep the scores already in <run-dir>/heldout_scores.json (same held-out files) "
                            "instead of scoring those methods again")
    p_rep.add_argument("--no-compare-bundled", dest="compare_bundled", action="store_false",
                       help="do not also score the weights bundled now (data/weights/) on the held-out split")
    _corpus_arguments(p_rep)
    p_rep.set_defaults(func=cmd_reproduce)
    p_tune = sub.add_parser("tune-sigpy", help="grid-search sigpy L1WaveletRecon's lamda on val slices")
    p_tune.add_argument("--lamdas", type=float, nargs="+", default=[1e-7, 3e-7, 1e-6, 3e-6, 1e-5])
    p_tune.add_argument("--slices", type=int, default=4, help="val slices used (spread over the split)")
    p_tune.add_argument("--data-cache", default=None)
    p_tune.add_argument("--accels", type=int, nargs="+", default=[4, 8])
    p_tune.set_defaults(func=cmd_tune_sigpy)
    p_eval.set_defaults(func=cmd_evaluate)
    p_time = sub.add_parser("time", help="reconstruct() time of learned methods vs cs on the committed sample")
    p_time.add_argument("--methods", nargs="+", default=["varnet", "cascade", "unet"])
    p_time.add_argument("--weights", type=_weights_map, default={}, metavar="varnet=PATH,...",
                        help="checkpoints to time instead of the bundled ones")
    p_time.add_argument("--repeats", type=int, default=5)
    p_time.add_argument("--num-threads", type=int, default=1)
    p_time.add_argument("--json", default=None)
    p_time.set_defaults(func=cmd_time)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
