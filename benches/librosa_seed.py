"""The seed project's feature path, timed: librosa 0.11 over a folder of WAVs with joblib.

    python benches/librosa_seed.py DIR [--jobs N]

Per clip: librosa.load(path, sr=None); melspectrogram(y=y, sr=sr, n_mels=128) (all other
defaults); power_to_db(S, ref=np.max); pad with 0 dB / crop to 128 frames. joblib runs it over
all cores. Workers are started and warmed on a few clips first, so the timing is the steady
throughput. Prints one JSON line.
"""
import argparse
import glob
import json
import os
import time

import numpy as np


def seed_features(path):
    import librosa

    y, sr = librosa.load(path, sr=None)
    s = librosa.feature.melspectrogram(y=y, sr=sr, n_mels=128)
    s = librosa.power_to_db(s, ref=np.max)
    if s.shape[1] < 128:
        s = np.pad(s, ((0, 0), (0, 128 - s.shape[1])), constant_values=0)
    return s[:, :128].astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--jobs", type=int, default=os.cpu_count())
    a = ap.parse_args()
    import librosa
    from joblib import Parallel, delayed

    files = sorted(glob.glob(os.path.join(a.dir, "*.wav")))
    if not files:
        raise SystemExit(f"no .wav files in {a.dir}")
    with Parallel(n_jobs=a.jobs) as par:
        par(delayed(seed_features)(f) for f in files[: 8 * a.jobs])  # start + warm workers
        t = time.perf_counter()
        out = par(delayed(seed_features)(f) for f in files)
        dt = time.perf_counter() - t
    print(json.dumps({
        "tool": f"librosa {librosa.__version__}",
        "clips": len(out),
        "jobs": a.jobs,
        "seconds": round(dt, 3),
        "clips_per_s": round(len(out) / dt, 1),
    }))


if __name__ == "__main__":
    main()
