#!/usr/bin/env python
"""See vibe-check work end to end on generated speech: no download, no corpus.

    python demo_custom_models.py [--output-dir models/custom] [--speakers 8]
"""

import argparse
import sys

from vibe_check._demo import add_demo_arguments, run_demo

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_demo_arguments(parser)
    sys.exit(run_demo(parser.parse_args()))
