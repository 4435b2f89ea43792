#!/usr/bin/env bash
# Benchmark, not a test: the emotion timeline of a long recording (`emolab predict --window`)
# with the recommended CNN (experiments/emodb_rec_cnn.yaml, fold 0, trained briefly: speed does
# not depend on accuracy), on a recording made of real EmoDB speech repeated to MINUTES minutes
# (22 050 Hz, resampled to 16 kHz as it streams). Side by side: `emolab predict` of the same
# clips as separate files (whole-file reads, one batch). Prints the realtime factors and peak
# memory of both.
#   benches/timeline.sh BIN PYTHON EMODB [MINUTES] [THREADS]
set -euo pipefail
bin=$1 py=$2 emodb=$3 minutes=${4:-60} threads=${5:-2}
out=data/bench-timeline
mkdir -p "$out"
EMODB=$emodb "$bin" --quiet run experiments/emodb_rec_cnn.yaml --set name=bench_timeline_rec_cnn \
    --set 'folds=[0]' --set train.epochs=2 >/dev/null
run=$(ls -d results/bench_timeline_rec_cnn/fold0-seed0)
"$py" - "$emodb" "$out/recording.wav" "$minutes" <<'PY'
import glob, sys, wave
src, dst, minutes = sys.argv[1], sys.argv[2], float(sys.argv[3])
clips = sorted(glob.glob(src + "/*.wav"))
w = None
total = 0
want = None
while want is None or total < want:
    for c in clips:
        r = wave.open(c)
        if w is None:
            w = wave.open(dst, "wb")
            w.setnchannels(r.getnchannels()); w.setsampwidth(r.getsampwidth()); w.setframerate(r.getframerate())
            want = int(minutes * 60 * r.getframerate())
        frames = r.readframes(r.getnframes())
        w.writeframes(frames)
        total += r.getnframes()
        if total >= want:
            break
w.close()
print(f"recording: {total / w.getframerate() / 60:.1f} min of {len(clips)} EmoDB clips repeated")
PY
export RAYON_NUM_THREADS=$threads OMP_NUM_THREADS=$threads
echo "== timeline (streamed): $minutes min, window 2.0 s, hop 0.5 s, $threads threads"
/usr/bin/time -f "   wall %e s, peak RSS %M KB" "$bin" predict "$run" "$out/recording.wav" --window 2.0 --hop 0.5 \
    --out "$out/timeline" 2>&1
echo "== predict of the $(ls "$emodb"/*.wav | wc -l) clips as files (one batch, whole-file reads)"
start=$(date +%s.%N)
/usr/bin/time -f "   wall %e s, peak RSS %M KB" "$bin" predict "$run" "$emodb"/*.wav --json 2>&1 >/dev/null | tail -1
end=$(date +%s.%N)
"$py" - "$emodb" "$start" "$end" "$out/timeline/summary.json" <<'PY'
import glob, json, sys, wave
clips = glob.glob(sys.argv[1] + "/*.wav")
secs = sum(wave.open(c).getnframes() / wave.open(c).getframerate() for c in clips)
wall = float(sys.argv[3]) - float(sys.argv[2])
s = json.load(open(sys.argv[4]))
print(f"   clips: {secs:.0f} s of audio in {wall:.2f} s = {secs / wall:.0f}x realtime (process wall time, model load included)")
print(f"timeline: {s['duration_s']:.0f} s of audio in {s['seconds']:.2f} s = {s['realtime']:.0f}x realtime, peak {s['peak_rss_mb']:.0f} MB")
print(f"ratio timeline / clip-files realtime factor: {s['realtime'] / (secs / wall):.2f}")
PY
