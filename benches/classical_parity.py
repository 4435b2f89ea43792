#!/usr/bin/env python3
"""scikit-learn on exactly emolab's clip vectors and folds, beside emolab's classical models.

Usage: benches/classical_parity.py CACHE_ROOT RESULTS/EXPERIMENT [RESULTS/EXPERIMENT ...]

For every experiment (a classical model: ``svm``, ``logistic`` or ``random_forest`` on a
clip-vector pipeline), the clip vectors are read from emolab's Parquet feature cache (the
folder ``CACHE_ROOT/<feature_key>`` the run's ``meta.json`` names; original variants only), every run's ``split.parquet`` gives the fold, and the vectors are standardised as the run
did (``meta.json``: transductive → each speaker on its own clips, else the training + validation
clips' mean and std). scikit-learn's counterpart (``SVC(C=1, gamma="scale",
class_weight="balanced")``, ``LogisticRegression(C=1)``, ``RandomForestClassifier(300 trees)``)
is fitted on the training + validation clips, as emolab refits, and scored once on the test
clips. Prints UA per fold and the mean for both. Benchmark, not a test (``make bench-venv``).
"""

from __future__ import annotations

import json
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.svm import SVC


def cache_vectors(folder: Path) -> dict[str, np.ndarray]:
    if not folder.is_dir():
        sys.exit(f"error: {folder} does not exist (the run's feature cache)")
    out = {}
    for part in sorted(folder.glob("part-*.parquet")):
        t = pq.read_table(part, columns=["clip_id", "variant", "spectrogram"]).to_pydict()
        for c, v, x in zip(t["clip_id"], t["variant"], t["spectrogram"]):
            if v == "original":
                out[c] = np.asarray(x, dtype=np.float64)
    return out


def model_of(family: str, seed: int, config: str):
    if family == "svm":
        kernel = re.search(r"^  kernel: (\w+)", config, re.M)
        kernel = kernel.group(1) if kernel else "rbf"
        return SVC(kernel=kernel, C=1.0, gamma="scale", class_weight="balanced")
    if family == "logistic":
        return LogisticRegression(C=1.0, max_iter=500)
    if family == "random_forest":
        return RandomForestClassifier(n_estimators=300, random_state=seed)
    sys.exit(f"error: no scikit-learn counterpart for {family}")


def main() -> None:
    warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    root = Path(sys.argv[1])
    for exp in map(Path, sys.argv[2:]):
        runs = sorted(p for p in exp.iterdir() if (p / "metrics.json").exists())
        meta = json.loads((runs[0] / "meta.json").read_text())
        vec = cache_vectors(root / meta["feature_key"])
        ours, theirs = [], []
        for r in runs:
            m = json.loads((r / "meta.json").read_text())
            s = pq.read_table(r / "split.parquet").to_pydict()
            rows = list(zip(s["clip_id"], s["label"], s["role"], s["speaker"]))
            x = {c: vec[c] for c, *_ in rows}
            if m.get("transductive"):
                spk = {}
                for sp in set(s["speaker"]):
                    a = np.stack([x[c] for c, _, _, q in rows if q == sp])
                    spk[sp] = (a.mean(0), a.std(0))
                z = {c: (x[c] - spk[q][0]) / np.maximum(spk[q][1], 1e-5) for c, _, _, q in rows}
            else:
                a = np.stack([x[c] for c, _, role, _ in rows if role != "test"])
                mu, sd = a.mean(0), np.maximum(a.std(0), 1e-5)
                z = {c: (x[c] - mu) / sd for c, *_ in rows}
            fit = [(z[c], l) for c, l, role, _ in rows if role != "test"]
            test = [(z[c], l) for c, l, role, _ in rows if role == "test"]
            clf = model_of(m["family"], m["seed"], (r / "config.yaml").read_text()).fit(np.stack([a for a, _ in fit]), [l for _, l in fit])
            pred = clf.predict(np.stack([a for a, _ in test]))
            theirs.append(balanced_accuracy_score([l for _, l in test], pred))
            ours.append(json.loads((r / "metrics.json").read_text())["test"]["ua"])
        print(f"\n{exp.name} ({meta['family']}, {len(runs)} folds)")
        print("fold  emolab  sklearn")
        for i, (a, b) in enumerate(zip(ours, theirs)):
            print(f"{i:>4}  {a:.3f}   {b:.3f}")
        print(f"mean  {np.mean(ours):.3f}   {np.mean(theirs):.3f}   (difference {np.mean(ours) - np.mean(theirs):+.3f})")


if __name__ == "__main__":
    main()
