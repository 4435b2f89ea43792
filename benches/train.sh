#!/usr/bin/env bash
# make bench-train: cnn_v3 in PyTorch (benches/train_torch.py) and in emolab (tch), same cached
# features, batch size and threads, timed per epoch side by side in one run; then the per-epoch
# time of every model family in emolab.
# Usage: benches/train.sh BIN PYTHON CORPUS_DIR [EPOCHS] [THREADS] [DEVICE] [FAMILY_EPOCHS]
set -euo pipefail
bin=$1 py=$2 corpus=$3 epochs=${4:-3} threads=${5:-$(nproc)} device=${6:-cpu} fam_epochs=${7:-1}
pipeline=${PIPELINE:-pipelines/logmel128.yaml}
cache=${EMOLAB_CACHE:-data/cache}
out=$(mktemp -d "${TMPDIR:-/tmp}/emolab-bench-train.XXXXXX")
trap 'rm -rf "$out"' EXIT
echo "corpus: $corpus, pipeline $pipeline, $(nproc) cores, threads $threads, device $device, $(date -u +%F)"

"$bin" --quiet featurize --pipeline "$pipeline" --cache "$cache" "$corpus" > /dev/null
dir=$("$bin" cache info --pipeline "$pipeline" --cache "$cache" | awk '/^folder/ {print $2}')

echo "== cnn_v3, $epochs epochs, batch 64: PyTorch (default glibc malloc)"
"$py" benches/train_torch.py --cache-dir "$dir" --epochs "$epochs" --batch-size 64 \
    --threads "$threads" --device "$device" --variants original --json "$out/torch.json"
# emolab keeps LibTorch's large buffers on the heap (mallopt in main); give PyTorch the same
# glibc settings so the comparison is of the frameworks, not of malloc policies.
echo "== cnn_v3: PyTorch with emolab's malloc settings (MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647)"
MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647 \
"$py" benches/train_torch.py --cache-dir "$dir" --epochs "$epochs" --batch-size 64 \
    --threads "$threads" --device "$device" --variants original --json "$out/torch_heap.json"
echo "== cnn_v3, $epochs epochs, batch 64: emolab"
"$bin" --quiet bench train --cache-dir "$dir" --preset cnn_v3 --epochs "$epochs" --batch-size 64 \
    --threads "$threads" --device "$device" --originals --json "$out/emolab.json"

"$py" - "$out/torch.json" "$out/torch_heap.json" "$out/emolab.json" <<'PY'
import json, statistics, sys
t, h, e = (json.load(open(p)) for p in sys.argv[1:4])
# The first epoch carries one-off warm-up (allocator, kernels): compare the later ones.
med = lambda r: statistics.median(r["epoch_s"][1:] or r["epoch_s"])
mt, mh, me = med(t), med(h), med(e)
print(f"cnn_v3 per epoch ({t['n_train']} clips, median of epochs 2..):")
print(f"  pytorch (default malloc)        {mt:7.2f} s   epochs {t['epoch_s']}")
print(f"  pytorch (emolab's malloc)       {mh:7.2f} s   epochs {h['epoch_s']}")
print(f"  emolab                          {me:7.2f} s   epochs {[round(s, 3) for s in e['epoch_s']]}")
print(f"  ratio emolab / pytorch, same malloc settings: {me / mh:.3f}   "
      f"(emolab / pytorch as shipped: {me / mt:.3f})")
PY

echo "== every family in emolab, $fam_epochs epoch(s), batch 64"
for preset in cnn_v1 cnn_v3 lstm bilstm cnn_lstm transformer; do
    "$bin" --quiet bench train --cache-dir "$dir" --preset "$preset" --epochs "$fam_epochs" \
        --batch-size 64 --threads "$threads" --device "$device" --originals --json "$out/$preset.json" \
        | sed 's/^/  /'
done
