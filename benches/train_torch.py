"""PyTorch side of the training-speed benchmark: emolab's cnn_v3 trained with plain torch.

    python benches/train_torch.py --cache-dir DIR --epochs E --batch-size B --threads T \
        [--device cpu|cuda] [--variants all|original] [--seed S] [--json OUT]

`make bench-train` runs this with the project venv's python (`.venv`: torch, numpy and pyarrow
are required) on the same feature cache, epochs, batch size and thread count as emolab's Rust
(tch/libtorch) trainer, and sets the two per-epoch timings side by side. Both sides call the same
libtorch kernels, so the comparison measures each framework's overhead around them.

DIR is a pipeline's cache folder (`emolab cache info --pipeline P.yaml` prints it; a cache root
holding exactly one pipeline folder also works). Its `part-*.parquet` rows are deduplicated on
`key` and sorted by it; labels are the sorted unique `emotion` values. X is float32
[N, 1, n_mels, frames] (the cache stores each spectrogram frame-major), standardised per mel bin
(mean and population std over clips and frames, std floored at 1e-5) as emolab's Normalizer does.

The model and optimisation copy emolab (src/models/cnn.rs `CnnSpec::v3()`, src/train/mod.rs):
3 × [Conv 3×3 valid → ReLU → MaxPool 2] with 32/64/128 channels → Flatten → Dense 128 → ReLU →
Dropout 0.3 → Dense k. Keras-style L2 1e-3 on the conv and dense-128 layers (weights and biases)
is Adam's coupled weight decay 2e-3 on that parameter group; Adam lr 1e-3; cross entropy with
sklearn "balanced" class weights n / (k · count_c). Each epoch visits a seeded permutation in
batches of B. Only the training pass is timed (no evaluation); loading is timed apart.
"""
import argparse
import glob
import json
import os
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from torch import nn


def part_files(cache_dir):
    files = sorted(glob.glob(os.path.join(cache_dir, "part-*.parquet")))
    if not files:  # a cache root with a single pipeline folder
        files = sorted(glob.glob(os.path.join(cache_dir, "*", "part-*.parquet")))
        if len({os.path.dirname(f) for f in files}) > 1:
            raise SystemExit(f"{cache_dir} holds several pipelines; pass one pipeline folder")
    if not files:
        raise SystemExit(f"no part-*.parquet in {cache_dir}")
    return files


def load(cache_dir, variants):
    cols = ["key", "emotion", "variant", "n_frames", "n_features", "spectrogram"]
    t = pa.concat_tables(pq.read_table(f, columns=cols) for f in part_files(cache_dir))
    if variants == "original":
        t = t.filter(pc.equal(t["variant"], "original"))
    keys = t["key"].to_pylist()
    first = {}
    for i, k in enumerate(keys):  # a key may sit in two parts: keep one row
        first.setdefault(k, i)
    t = t.take(pa.array([first[k] for k in sorted(first)]))
    if t.num_rows == 0:
        raise SystemExit("no rows to train on")
    frames, feats = (pc.unique(t[c]).to_pylist() for c in ("n_frames", "n_features"))
    if len(frames) != 1 or len(feats) != 1:
        raise SystemExit(f"rows differ in shape: n_frames {frames}, n_features {feats}")
    t_frames, n_mels = frames[0], feats[0]
    flat = pc.list_flatten(t["spectrogram"].combine_chunks()).to_numpy()
    x = flat.astype(np.float32, copy=False).reshape(t.num_rows, t_frames, n_mels)
    x = np.ascontiguousarray(x.transpose(0, 2, 1))[:, None]  # [N, 1, n_mels, frames]
    mean = x.mean(axis=(0, 1, 3), keepdims=True)
    std = np.maximum(x.std(axis=(0, 1, 3), keepdims=True), 1e-5)
    x = (x - mean) / std
    labels = t["emotion"].to_pylist()
    classes = sorted(set(labels))
    y = np.array([classes.index(v) for v in labels], dtype=np.int64)
    return torch.from_numpy(x), torch.from_numpy(y), classes


class CnnV3(nn.Module):
    """emolab's cnn_v3; `l2` holds the layers that get Keras-style L2."""

    def __init__(self, n_mels, frames, k, channels=(32, 64, 128), dense=128, dropout=0.3):
        super().__init__()
        convs, c_in, h, w = [], 1, n_mels, frames
        for c in channels:
            convs.append(nn.Conv2d(c_in, c, 3))
            c_in, h, w = c, (h - 2) // 2, (w - 2) // 2
        self.convs = nn.ModuleList(convs)
        self.dense = nn.Linear(c_in * h * w, dense)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(dense, k)
        self.l2 = [*self.convs, self.dense]

    def forward(self, x):
        for conv in self.convs:
            x = torch.max_pool2d(torch.relu(conv(x)), 2)
        return self.out(self.drop(torch.relu(self.dense(x.flatten(1)))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache-dir", required=True)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--variants", choices=["all", "original"], default="all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the results here as JSON")
    a = ap.parse_args()
    if a.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device visible to torch")
    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # only allowed before any parallel work has started
        pass
    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    t0 = time.perf_counter()
    x, y, classes = load(a.cache_dir, a.variants)
    x, y = x.to(dev), y.to(dev)
    sync()
    load_s = time.perf_counter() - t0
    n, _, n_mels, frames = x.shape
    k = len(classes)

    model = CnnV3(n_mels, frames, k).to(dev)
    l2 = {id(p) for m in model.l2 for p in m.parameters()}
    opt = torch.optim.Adam([
        {"params": [p for p in model.parameters() if id(p) in l2], "weight_decay": 2 * 1e-3},
        {"params": [p for p in model.parameters() if id(p) not in l2], "weight_decay": 0.0},
    ], lr=1e-3)
    counts = torch.bincount(y, minlength=k).double()
    weights = (n / (k * counts)).nan_to_num(0.0, 0.0, 0.0).float()
    loss_fn = nn.CrossEntropyLoss(weight=weights)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"pytorch {torch.__version__} on {dev} ({a.threads} threads): {n} clips, "
          f"{n_mels}x{frames}, {k} classes, {n_params:,} parameters, loaded in {load_s:.2f} s")

    epoch_s, train_loss, gpu_util = [], [], []
    model.train()
    for epoch in range(1, a.epochs + 1):
        order = torch.from_numpy(np.random.default_rng([a.seed, epoch]).permutation(n)).to(dev)
        total = torch.zeros((), device=dev)
        sync()
        t = time.perf_counter()
        for idx in order.split(a.batch_size):
            loss = loss_fn(model(x.index_select(0, idx)), y.index_select(0, idx))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.detach() * len(idx)
        sync()
        epoch_s.append(time.perf_counter() - t)
        train_loss.append(total.item() / n)
        if dev.type == "cuda":
            try:  # needs nvidia-ml-py; the last sampling period only, so a rough figure
                gpu_util.append(torch.cuda.utilization(dev))
            except Exception:
                pass
        print(f"epoch {epoch}: {epoch_s[-1]:.3f} s, {n / epoch_s[-1]:.0f} clips/s, "
              f"train loss {train_loss[-1]:.4f}")

    result = {
        "framework": "pytorch", "torch": torch.__version__,
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "threads": a.threads, "batch_size": a.batch_size, "n_train": n, "n_mels": n_mels,
        "frames": frames, "classes": k, "parameters": n_params, "load_s": round(load_s, 4),
        "epoch_s": [round(s, 4) for s in epoch_s], "train_loss": train_loss,
    }
    if gpu_util:
        result["gpu_util_pct"] = gpu_util
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
