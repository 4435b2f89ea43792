#!/usr/bin/env python3
"""Why the functionals track F0 with pYIN and not plain YIN: on real clips, how often YIN's
absolute-threshold voicing decision (de Cheveigné & Kawahara, JASA 2002: voiced when a trough of
the cumulative-mean-normalised difference lies below the threshold) agrees with
``librosa.pyin``'s, at the thresholds in use (0.1 in the paper and ``librosa.yin``; 0.15 in
aubio; up to 0.3), and the F0 error on frames both call voiced.

Usage: benches/yin_voicing.py CORPUS_FOLDER [MAX_CLIPS]

Frames as the functionals pipeline's pitch tracker (16 kHz, 50 ms frames, 10 ms hop,
``center=False``, 60-600 Hz). The issue on clip-level features asks for ≥ 90 % voicing
agreement with pYIN. Benchmark, not a test (needs librosa: ``make bench-venv``).
"""

from __future__ import annotations

import glob
import os
import sys

import librosa
import numpy as np
from librosa.core.pitch import _cumulative_mean_normalized_difference as cmnd

SR, FRAME, HOP, FMIN, FMAX = 16000, 800, 160, 60.0, 600.0
THRESHOLDS = (0.1, 0.15, 0.2, 0.25, 0.3)


def main() -> None:
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    files = sorted(glob.glob(os.path.join(sys.argv[1], "**", "*.wav"), recursive=True))
    if len(sys.argv) == 3:
        files = files[: int(sys.argv[2])]
    min_p = int(np.floor(SR / FMAX))
    max_p = min(int(np.ceil(SR / FMIN)), FRAME - 1)
    agree = {t: 0 for t in THRESHOLDS}
    cents = {t: [] for t in THRESHOLDS}
    frames = voiced_pyin = 0
    for path in files:
        y, _ = librosa.load(path, sr=SR)
        f0, voiced, _ = librosa.pyin(y, fmin=FMIN, fmax=FMAX, sr=SR, frame_length=FRAME,
                                     hop_length=HOP, center=False)
        d = cmnd(librosa.util.frame(y, frame_length=FRAME, hop_length=HOP), min_p, max_p)
        trough = librosa.util.localmin(d, axis=0)
        trough[0] = d[0] < d[1]
        n = min(d.shape[1], len(voiced))
        frames += n
        voiced_pyin += int(voiced[:n].sum())
        for t in THRESHOLDS:
            below = trough & (d < t)
            for i in range(n):
                idx = np.flatnonzero(below[:, i])
                v = idx.size > 0
                agree[t] += int(v == voiced[i])
                if v and voiced[i]:
                    k = idx[0]
                    x = d[:, i]
                    shift = 0.0
                    if 0 < k < len(x) - 1:
                        a, b = x[k + 1] + x[k - 1] - 2 * x[k], (x[k + 1] - x[k - 1]) / 2
                        shift = 0.0 if abs(b) >= abs(a) else -b / a
                    cents[t].append(abs(1200 * np.log2(SR / (min_p + k + shift) / f0[i])))
    print(f"{len(files)} clips, {frames} frames, {voiced_pyin} voiced by pyin")
    for t in THRESHOLDS:
        c = np.array(cents[t])
        print(f"YIN threshold {t:.2f}: voicing agreement with pyin {100 * agree[t] / frames:5.1f} %, "
              f"{c.size} frames both voiced, median F0 error {np.median(c):.1f} cents, "
              f"{100 * np.mean(c > 50):.1f} % over 50 cents")


if __name__ == "__main__":
    main()
