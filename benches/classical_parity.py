#!/usr/bin/env python3
"""scikit-learn on exactly emolab's clip vectors and folds, beside emolab's classical models:
accuracy and time, side by side.

Usage: benches/classical_parity.py [--threads N] [--folds N] CACHE_ROOT RESULTS/EXPERIMENT [...]

For every experiment (a classical model: ``svm``, ``logistic`` or ``random_forest`` on a
clip-vector pipeline), the clip vectors are read from emolab's Parquet feature cache (the
folder ``CACHE_ROOT/<feature_key>`` the run's ``meta.json`` names; original variants only), every
run's ``split.parquet`` gives the fold, and the vectors are standardised as the run did
(``meta.json``: transductive → each speaker on its own clips, else the training clips' mean and
std). scikit-learn's counterpart (``SVC(C=1, gamma="scale", class_weight="balanced",
probability=True)``, ``LogisticRegression(C=1)``, ``RandomForestClassifier(300 trees)``) then
does the work emolab's fold does: fit on the training clips and score them and the validation
clips; permutation importance on the validation clips (``n_repeats=5``, balanced accuracy);
refit on training + validation clips; probabilities and classes of the test clips. Its wall
time is set beside emolab's (``meta.json`` ``classical``: fit + importance + refit, the same
steps; the feature cache is read by both outside the timing).

scikit-learn gets the machine's cores where it can use them (``n_jobs`` of the importance and
of the forest; ``--threads``, default all); libsvm's fit is single-threaded by design.

Prints per experiment: folds, test UA of both and their difference, seconds per fold of both
and the ratio emolab / scikit-learn (below 1: emolab is faster). Benchmark, not a test
(``make bench-classical``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from sklearn.ensemble import RandomForestClassifier
from sklearn.inspection import permutation_importance
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


def model_of(family: str, seed: int, config: str, threads: int):
    if family == "svm":
        kernel = re.search(r"^  kernel: (\w+)", config, re.M)
        kernel = kernel.group(1) if kernel else "rbf"
        return SVC(kernel=kernel, C=1.0, gamma="scale", class_weight="balanced", probability=True,
                   random_state=seed)
    if family == "logistic":
        return LogisticRegression(C=1.0, max_iter=500)
    if family == "random_forest":
        return RandomForestClassifier(n_estimators=300, random_state=seed, n_jobs=threads)
    sys.exit(f"error: no scikit-learn counterpart for {family}")


def standardised(rows, x, transductive: bool):
    """The run's standardisation: per speaker on its own clips, or the training clips' stats."""
    if transductive:
        spk = {}
        for sp in {q for *_, q in rows}:
            a = np.stack([x[c] for c, _, _, q in rows if q == sp])
            spk[sp] = (a.mean(0), np.maximum(a.std(0), 1e-5))
        return {c: (x[c] - spk[q][0]) / spk[q][1] for c, _, _, q in rows}
    a = np.stack([x[c] for c, _, role, _ in rows if role == "train"])
    mu, sd = a.mean(0), np.maximum(a.std(0), 1e-5)
    return {c: (x[c] - mu) / sd for c, *_ in rows}


def fold_work(make, z, rows, seed: int, threads: int) -> tuple[float, float]:
    """scikit-learn doing one emolab fold's work; (test UA, seconds)."""
    part = lambda roles: (np.stack([z[c] for c, _, r, _ in rows if r in roles]),
                          np.array([l for _, l, r, _ in rows if r in roles]))
    xt, yt = part({"train"})
    xv, yv = part({"val"})
    xa, ya = part({"train", "val"})
    xs, ys = part({"test"})
    start = time.perf_counter()
    clf = make().fit(xt, yt)
    clf.predict(xt), clf.predict(xv)
    if hasattr(clf, "predict_proba"):
        clf.predict_proba(xt), clf.predict_proba(xv)
    permutation_importance(clf, xv, yv, n_repeats=5, random_state=seed,
                           scoring="balanced_accuracy", n_jobs=threads)
    clf = make().fit(xa, ya)
    clf.predict_proba(xs)
    pred = clf.predict(xs)
    return balanced_accuracy_score(ys, pred), time.perf_counter() - start


def main() -> None:
    warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
    warnings.filterwarnings("ignore", category=FutureWarning)  # SVC(probability=True), 1.9+
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--folds", type=int, default=None, help="only the first N runs of each experiment")
    ap.add_argument("cache_root", type=Path)
    ap.add_argument("experiments", type=Path, nargs="+")
    args = ap.parse_args()
    summary = []
    for exp in args.experiments:
        runs = sorted(p for p in exp.iterdir() if (p / "metrics.json").exists())[: args.folds]
        if not runs:
            sys.exit(f"error: {exp} holds no complete run")
        meta = json.loads((runs[0] / "meta.json").read_text())
        vec = cache_vectors(args.cache_root / meta["feature_key"])
        print(f"\n{exp.name} ({meta['family']}, {len(runs)} folds, {len(vec)} clips)")
        print("fold  UA emolab  UA sklearn   s emolab  s sklearn")
        ours, theirs, t_ours, t_theirs = [], [], [], []
        for r in runs:
            m = json.loads((r / "meta.json").read_text())
            s = pq.read_table(r / "split.parquet").to_pydict()
            rows = list(zip(s["clip_id"], s["label"], s["role"], s["speaker"]))
            z = standardised(rows, {c: vec[c] for c, *_ in rows}, m.get("transductive", False))
            config = (r / "config.yaml").read_text()
            make = lambda: model_of(m["family"], m["seed"], config, args.threads)
            ua, secs = fold_work(make, z, rows, m["seed"], args.threads)
            c = m.get("classical")
            mine = (c["fit_seconds"] + c["importance_seconds"] + c["refit_seconds"]) if c else m["seconds"]
            ours.append(json.loads((r / "metrics.json").read_text())["test"]["ua"])
            theirs.append(ua)
            t_ours.append(mine)
            t_theirs.append(secs)
            print(f"{len(ours) - 1:>4}  {ours[-1]:9.3f}  {ua:10.3f}   {mine:8.2f}  {secs:9.2f}", flush=True)
        print(f"mean  {np.mean(ours):9.3f}  {np.mean(theirs):10.3f}   {np.mean(t_ours):8.2f}  "
              f"{np.mean(t_theirs):9.2f}   (UA difference {np.mean(ours) - np.mean(theirs):+.3f}, "
              f"time ratio {np.sum(t_ours) / np.sum(t_theirs):.2f})")
        summary.append((exp.name, meta["family"], len(runs), len(vec), np.mean(ours), np.mean(theirs),
                        np.mean(t_ours), np.mean(t_theirs)))
    print(f"\nscikit-learn threads: {args.threads} (importance, forest); seconds are per fold, "
          "all of a fold's work; ratio = emolab / scikit-learn")
    print(f"{'experiment':<34} {'model':<14} {'folds':>5} {'clips':>6} {'UA emolab':>9} {'UA sklearn':>10} "
          f"{'s emolab':>9} {'s sklearn':>9} {'ratio':>6}")
    for name, fam, n, clips, a, b, ta, tb in summary:
        print(f"{name:<34} {fam:<14} {n:>5} {clips:>6} {a:9.3f} {b:10.3f} {ta:9.2f} {tb:9.2f} {ta / tb:6.2f}")


if __name__ == "__main__":
    main()
