"""``python -m recon.train`` / ``torchrun ... -m recon.train``: see :mod:`recon.train.cli`."""

import sys

from recon.train.cli import main

sys.exit(main())
