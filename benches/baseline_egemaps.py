#!/usr/bin/env python3
"""openSMILE eGeMAPSv02 functionals + RBF SVM on exactly the folds of emolab experiments.

Usage: benches/baseline_egemaps.py RESULTS/EXPERIMENT [RESULTS/EXPERIMENT ...]

The first experiment's run folders (``fold*-seed<first seed>``) give the folds: each
``split.parquet`` says which clips are train / val / test, and the ``predictions.parquet`` files
give every clip's path (every clip is a test clip of one fold). For each fold an SVM
(scikit-learn ``SVC(kernel="rbf", C=1, class_weight="balanced")``, the classic 2010s setting of
Schuller et al. and Eyben et al., 2016) is fitted on the training and validation clips (the
SVM has no epochs to select) and scored once on the test clips, with two normalisations:

* ``train``: z-scored with the training clips' mean and standard deviation;
* ``speaker``: every speaker's features z-scored on that speaker's own clips (test speakers'
  audio included, never their labels), as emolab's ``normalize: speaker``.

Then every experiment given is printed beside it: mean ± std UA (unweighted average recall)
over the same folds. Benchmark, not a test: needs ``opensmile``, ``scikit-learn`` and
``pyarrow`` (``make bench-venv``).
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import opensmile
import pyarrow.parquet as pq
from sklearn.metrics import balanced_accuracy_score
from sklearn.svm import SVC


def runs_of(exp: Path) -> list[Path]:
    runs = sorted(p for p in exp.iterdir() if p.is_dir() and (p / "metrics.json").exists()
                  and json.loads((p / "meta.json").read_text()).get("status") == "complete")
    if not runs:
        sys.exit(f"error: {exp} has no complete runs: run the experiment first")
    return runs


def zscore(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return (x - mean) / np.where(std > 1e-8, std, 1.0)


def main() -> None:
    # A held-out speaker may lack a class the SVM predicts; UA averages over the classes present.
    warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    exps = [Path(a) for a in sys.argv[1:]]
    runs = runs_of(exps[0])
    seed = json.loads((runs[0] / "meta.json").read_text())["seed"]
    runs = [r for r in runs if json.loads((r / "meta.json").read_text())["seed"] == seed]
    paths, speakers = {}, {}
    for r in runs:
        t = pq.read_table(r / "predictions.parquet").to_pydict()
        for c, p, s in zip(t["clip_id"], t["path"], t["speaker"]):
            paths[c], speakers[c] = p, s
    clips = sorted(paths)
    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                            feature_level=opensmile.FeatureLevel.Functionals)
    t0 = time.time()
    feats = {c: smile.process_file(paths[c]).to_numpy()[0] for c in clips}
    took = time.time() - t0
    print(f"openSMILE {opensmile.__version__} eGeMAPSv02: {len(clips)} clips, "
          f"{feats[clips[0]].shape[0]} functionals, {took:.1f} s ({len(clips) / took:.1f} clips/s)")
    # Per-speaker statistics over each speaker's own clips (no labels).
    spk_stats = {}
    for s in set(speakers.values()):
        x = np.stack([feats[c] for c in clips if speakers[c] == s])
        spk_stats[s] = (x.mean(0), x.std(0))
    results = {"egemaps_svm_train": [], "egemaps_svm_speaker": []}
    for r in runs:
        split = pq.read_table(r / "split.parquet").to_pydict()
        rows = list(zip(split["clip_id"], split["label"], split["role"]))
        fit = [(c, l) for c, l, role in rows if role in ("train", "val")]
        test = [(c, l) for c, l, role in rows if role == "test"]
        xf = np.stack([feats[c] for c, _ in fit])
        xt = np.stack([feats[c] for c, _ in test])
        yf, yt = [l for _, l in fit], [l for _, l in test]
        for name, (a, b) in {
            "egemaps_svm_train": (zscore(xf, xf.mean(0), xf.std(0)), zscore(xt, xf.mean(0), xf.std(0))),
            "egemaps_svm_speaker": (
                np.stack([zscore(feats[c], *spk_stats[speakers[c]]) for c, _ in fit]),
                np.stack([zscore(feats[c], *spk_stats[speakers[c]]) for c, _ in test]),
            ),
        }.items():
            svm = SVC(kernel="rbf", C=1.0, class_weight="balanced").fit(a, yf)
            results[name].append(balanced_accuracy_score(yt, svm.predict(b)))
    folds = len(runs)
    print(f"\n{'entry':<48} {'folds':>5}  {'UA mean ± std':>15}")
    for name, uas in results.items():
        print(f"{name:<48} {folds:>5}  {np.mean(uas):.3f} ± {np.std(uas, ddof=1):.3f}")
    for exp in exps:
        ua = [json.loads((r / "metrics.json").read_text())["test"]["ua"] for r in runs_of(exp)]
        trans = any(json.loads((r / "meta.json").read_text()).get("transductive") for r in runs_of(exp))
        tag = " (speaker-normalised)" if trans else ""
        print(f"{'emolab ' + exp.name + tag:<48} {len(ua):>5}  {np.mean(ua):.3f} ± {np.std(ua, ddof=1):.3f}")


if __name__ == "__main__":
    main()
