"""Build the physics training corpus of ``recon.data.corpus`` (fastMRI HDF5 train / val /
test_heldout) and print where it is.

Examples::

    python scripts/build_corpus.py                                   # the full corpus into $RECON_CACHE
    python scripts/build_corpus.py --preset toy --root /tmp/corpus   # seconds, for smoke tests
    python scripts/build_corpus.py --root /data/corpus --workers 8 --train-subjects 200

The corpus folder's name hashes its whole configuration, so a rerun with the same options
reuses it, and changed options never mix with old files. Each split is written to a
temporary folder and renamed into place; ``<split>.json`` lists every file's source,
contrast, field strength, sequence and scanner parameters and seed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recon.data.corpus import CORPUS_SPLITS, CorpusConfig, build_corpus  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=("full", "toy"), default="full")
    parser.add_argument("--root", default=None, help="parent folder (default $RECON_CACHE or ~/.cache/recon)")
    parser.add_argument("--splits", nargs="+", choices=CORPUS_SPLITS, default=list(CORPUS_SPLITS))
    parser.add_argument("--workers", type=int, default=0, help="worker processes")
    parser.add_argument("--train-subjects", type=int, default=None)
    parser.add_argument("--val-subjects", type=int, default=None)
    parser.add_argument("--heldout-subjects", type=int, default=None)
    parser.add_argument("--slices", type=int, default=None, help="slices per phantom volume")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--no-real", action="store_true", help="leave out the Colin27 slabs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    changes = {
        key: value
        for key, value in (
            ("num_train_subjects", args.train_subjects), ("num_val_subjects", args.val_subjects),
            ("num_heldout_subjects", args.heldout_subjects), ("slices_per_volume", args.slices), ("seed", args.seed),
        )
        if value is not None
    }
    if args.no_real:
        changes["include_real"] = False
    try:
        config = CorpusConfig.toy(**changes) if args.preset == "toy" else CorpusConfig(**changes)
        start = time.perf_counter()
        folders = build_corpus(config, args.root, splits=args.splits, num_workers=args.workers)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"build_corpus: {err}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - start
    summary = {split: {"folder": str(folder), "files": len(list(folder.glob("*.h5")))} for split, folder in folders.items()}
    print(json.dumps({"config": dataclasses.asdict(config), "splits": summary, "seconds": round(elapsed, 1)}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
