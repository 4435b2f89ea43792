#!/usr/bin/env python3
"""Functionals extraction throughput: emolab (pipelines/functionals.yaml, cold cache; then the same
with ``formants: true``) against openSMILE eGeMAPSv02 functionals on the same clips and the same
cores, side by side.

Usage: benches/functionals_speed.py EMOLAB_BINARY CORPUS_FOLDER

Both use every core of the machine (emolab's rayon pool; opensmile with ``num_workers`` =
cores, multiprocessing). Prints clips/s of each and the ratios: emolab's whole process (start-up,
scan, extraction, cache write) and its extraction stage alone (the time the featurize summary
reports), against openSMILE's ``process_files`` (which excludes its Python start-up and
configuration, as the stage does). Benchmark, not a test (needs
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
    def featurize(pipeline: str) -> tuple[int, float]:
        with tempfile.TemporaryDirectory() as cache:
            t = time.time()
            out = subprocess.run([binary, "--quiet", "featurize", "--pipeline", pipeline, corpus,
                                  "--cache", cache], check=True, capture_output=True, text=True)
            took = time.time() - t
        text = out.stdout + out.stderr
        stage = float(re.search(r"skipped in ([0-9.]+) s", text).group(1))
        return int(re.search(r"(\d+) computed", text).group(1)), took, stage

    n, ours, stage = featurize("pipelines/functionals.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        formants = os.path.join(tmp, "functionals_formants.yaml")
        with open("pipelines/functionals.yaml") as f, open(formants, "w") as g:
            g.write(f.read().rstrip("\n") + "\n  formants: true\n")
        nf, ours_f, stage_f = featurize(formants)
    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                            feature_level=opensmile.FeatureLevel.Functionals,
                            num_workers=cores, multiprocessing=cores > 1)
    t = time.time()
    smile.process_files(files)
    theirs = time.time() - t
    rate = len(files) / theirs
    print(f"{cores} cores, {len(files)} clips")
    print(f"emolab functionals (85 values)   {n:>5} clips {ours:7.1f} s {n / ours:8.1f} clips/s "
          f"(extraction stage {stage:.1f} s, {n / stage:.1f} clips/s)")
    print(f"emolab + formants (94 values)    {nf:>5} clips {ours_f:7.1f} s {nf / ours_f:8.1f} clips/s "
          f"(extraction stage {stage_f:.1f} s, {nf / stage_f:.1f} clips/s)")
    print(f"openSMILE eGeMAPSv02 (88 values) {len(files):>5} clips {theirs:7.1f} s {rate:8.1f} clips/s")
    print(f"ratio, whole process: emolab {n / ours / rate:.1f}x openSMILE's throughput "
          f"({nf / ours_f / rate:.1f}x with formants)")
    print(f"ratio, extraction stage: emolab {n / stage / rate:.1f}x "
          f"({nf / stage_f / rate:.1f}x with formants)")

if __name__ == "__main__":
    main()
