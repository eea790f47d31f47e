"""Run the ``recon`` command line and SIGKILL it at a named point of its write path.

Usage: ``python crash_child.py POINT NTH recon-arguments...``. The process kills itself (``kill -9``:
no cleanup, no ``finally``) the NTH time it reaches POINT:

==================  ========================================================================
``temp-created``    right after :func:`recon.data.io.atomic_path` created a temporary (empty)
``h5-mid-write``    after an HDF5 dataset was created and flushed, before the file is closed
``gz-mid-write``    after a chunk of a gzip stream (``.nii.gz``) was written and flushed
``before-rename``   just before ``os.replace`` moves a finished temporary into place
``after-rename``    just after ``os.replace``
``never``           no kill: a normal run (the random-delay tests kill it from outside)
==================  ========================================================================

The hooks wrap library functions in this process only; recon itself has no crash hooks.
"""

from __future__ import annotations

import gzip
import os
import signal
import sys


def install(point: str, nth: int) -> None:
    count = [0]

    def hit() -> None:
        count[0] += 1
        if count[0] == nth:
            os.kill(os.getpid(), signal.SIGKILL)

    if point == "temp-created":
        from recon.data.io import is_temporary

        real_open = os.open

        def open_(path, flags, mode=0o777, *args, **kwargs):
            fd = real_open(path, flags, mode, *args, **kwargs)
            if flags & os.O_EXCL and is_temporary(os.fspath(path)):
                hit()
            return fd

        os.open = open_
    elif point == "h5-mid-write":
        import h5py

        real_create = h5py.Group.create_dataset

        def create_dataset(self, *args, **kwargs):
            dataset = real_create(self, *args, **kwargs)
            self.file.flush()
            hit()
            return dataset

        h5py.Group.create_dataset = create_dataset
    elif point == "gz-mid-write":
        real_write = gzip.GzipFile.write

        def write(self, data):
            written = real_write(self, data)
            self.flush()
            hit()
            return written

        gzip.GzipFile.write = write
    elif point in ("before-rename", "after-rename"):
        real_replace = os.replace

        def replace(src, dst, *args, **kwargs):
            if point == "before-rename":
                hit()
            result = real_replace(src, dst, *args, **kwargs)
            if point == "after-rename":
                hit()
            return result

        os.replace = replace
    elif point != "never":
        raise SystemExit(f"unknown crash point {point!r}")


if __name__ == "__main__":
    install(sys.argv[1], int(sys.argv[2]))
    from recon.cli import main

    sys.exit(main(sys.argv[3:]))
