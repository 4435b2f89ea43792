#!/usr/bin/env python3
"""Functionals extraction throughput: emolab (pipelines/functionals.yaml, cold cache) against
openSMILE eGeMAPSv02 functionals on the same clips and the same cores, side by side.

Usage: benches/functionals_speed.py EMOLAB_BINARY CORPUS_FOLDER

Both use every core of the machine (emolab's rayon pool; opensmile with ``num_workers`` =
cores, multiprocessing). Prints clips/s of each and the ratio. Benchmark, not a test (needs
``opensmile``: ``make bench-venv``).
"""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys
import tempfile
import time

import opensmile


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    binary, corpus = sys.argv[1], sys.argv[2]
    files = sorted(glob.glob(os.path.join(corpus, "**", "*.wav"), recursive=True))
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as cache:
        t = time.time()
        out = subprocess.run([binary, "--quiet", "featurize", "--pipeline", "pipelines/functionals.yaml",
                              corpus, "--cache", cache], check=True, capture_output=True, text=True)
        ours = time.time() - t
    n = int(re.search(r"(\d+) computed", out.stdout + out.stderr).group(1))
    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                            feature_level=opensmile.FeatureLevel.Functionals,
                            num_workers=cores, multiprocessing=cores > 1)
    t = time.time()
    smile.process_files(files)
    theirs = time.time() - t
    print(f"{cores} cores, {len(files)} clips")
    print(f"emolab functionals (85 values)   {n:>5} clips {ours:7.1f} s {n / ours:8.1f} clips/s")
    print(f"openSMILE eGeMAPSv02 (88 values) {len(files):>5} clips {theirs:7.1f} s {len(files) / theirs:8.1f} clips/s")
    print(f"ratio: emolab {n / ours / (len(files) / theirs):.1f}x openSMILE's throughput")


if __name__ == "__main__":
    main()
