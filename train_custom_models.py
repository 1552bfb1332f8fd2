#!/usr/bin/env python
"""Train emotion models on RAVDESS with speaker-independent cross-validation and save bundles.

    python train_custom_models.py --data-dir ../shared/data/ravdess16k --output-dir models/custom

Same as ``vibe-check train``; see ``--help``.
"""

import sys

from vibe_check.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
