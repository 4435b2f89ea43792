#!/usr/bin/env bash
# make bench-features: the seed's librosa path vs `emolab featurize`, side by side, one machine.
# Usage: benches/features.sh BIN PYTHON CORPUS_DIR
set -euo pipefail
bin=$1 py=$2 corpus=$3
cache=$(mktemp -d "${TMPDIR:-/tmp}/emolab-bench-cache.XXXXXX")
trap 'rm -rf "$cache"' EXIT
clips=$(ls "$corpus"/*.wav | wc -l)
echo "corpus: $corpus ($clips clips), $(nproc) cores, $(date -u +%F)"

echo "== librosa (seed path, joblib over all cores)"
lib=$("$py" benches/librosa_seed.py "$corpus")
echo "$lib"

echo "== emolab featurize --pipeline pipelines/logmel128.yaml (cold cache)"
manifest="$cache/manifest.parquet"
"$bin" --quiet corpus scan "$corpus" --out "$manifest" > /dev/null
start=$(date +%s.%N)
"$bin" --quiet featurize --pipeline pipelines/logmel128.yaml --cache "$cache" "$manifest"
end=$(date +%s.%N)

echo "== emolab cache read (all rows, f32 decoded)"
"$bin" --quiet cache info --pipeline pipelines/logmel128.yaml --cache "$cache" --read-bench

"$py" - "$lib" "$start" "$end" "$clips" <<'PY'
import json, sys
lib = json.loads(sys.argv[1]); start, end, clips = float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
ours = clips / (end - start)
print(f"librosa: {lib['clips_per_s']:.1f} clips/s   emolab: {ours:.1f} clips/s   ratio: {ours / lib['clips_per_s']:.1f}x")
PY
