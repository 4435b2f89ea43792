#!/usr/bin/env python3
"""Benchmark (not a test): emolab's encoders against `transformers`, side by side.

For each configuration (a tiny one and base-sized wav2vec 2.0, WavLM and Whisper encoders, all
randomly initialised: no weights are downloaded) the model is built and saved once with
`transformers` under OUT/, then both frameworks embed the same number of clips of the same length
(a synthetic tone), with the same threads and batch, all hidden states requested, after one
warm-up batch. emolab runs through `emolab bench encoder`. Printed: clips/s of each and the time
ratio emolab / transformers (below 1: emolab is faster).

    python benches/encoders.py --bin target/release/emolab [--device cpu|cuda] [--clips 16]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import transformers as tf

W2V_BASE = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                feat_extract_norm="group", do_stable_layer_norm=False, conv_bias=False)
CONFIGS = {
    "wav2vec2-tiny": (tf.Wav2Vec2Config, tf.Wav2Vec2Model, dict(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)),
    "wav2vec2-base-size": (tf.Wav2Vec2Config, tf.Wav2Vec2Model, W2V_BASE),
    "wavlm-base-size": (tf.WavLMConfig, tf.WavLMModel, W2V_BASE),
    "whisper-base-size": (tf.WhisperConfig, tf.WhisperModel, dict(
        d_model=512, encoder_layers=6, encoder_attention_heads=8, encoder_ffn_dim=2048,
        decoder_layers=1, decoder_attention_heads=8, decoder_ffn_dim=256, vocab_size=64,
        max_target_positions=32, pad_token_id=1, bos_token_id=2, eos_token_id=3,
        decoder_start_token_id=2, num_mel_bins=80)),
}


def tone(n: int) -> np.ndarray:
    t = np.arange(n) / 16000.0
    phase = np.cumsum(2 * np.pi * (140.0 + 60.0 * t) / 16000.0)
    return (0.2 * sum(np.sin(k * phase) / k for k in range(1, 6))).astype(np.float32)


def build(out: Path, name: str) -> Path:
    d = out / name
    if (d / "model.safetensors").exists():
        return d
    cfg_cls, model_cls, kw = CONFIGS[name]
    torch.manual_seed(0)
    model_cls(cfg_cls(**kw)).save_pretrained(d)
    if "whisper" in name:
        tf.WhisperFeatureExtractor(feature_size=80).save_pretrained(d)
    else:
        tf.Wav2Vec2FeatureExtractor(do_normalize=True).save_pretrained(d)
    return d


def time_transformers(d: Path, name: str, clip_s: float, clips: int, batch: int, device: str) -> float:
    _, model_cls, _ = CONFIGS.get(name, (None, tf.WhisperModel, None))
    model = model_cls.from_pretrained(d).eval().to(device)
    y = tone(int(clip_s * 16000))
    if "whisper" in name:
        fe = tf.WhisperFeatureExtractor.from_pretrained(d)
        enc = model.encoder

        def run(n):
            x = fe([y] * n, sampling_rate=16000, return_tensors="pt").input_features.to(device)
            return enc(x, output_hidden_states=True).last_hidden_state
    else:
        fe = tf.Wav2Vec2FeatureExtractor.from_pretrained(d)

        def run(n):
            x = fe([y] * n, sampling_rate=16000, return_tensors="pt").input_values.to(device)
            return model(x, output_hidden_states=True).last_hidden_state

    with torch.no_grad():
        run(batch).sum().item()
        start = time.perf_counter()
        done = 0
        while done < clips:
            n = min(batch, clips - done)
            run(n).sum().item()
            done += n
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start


def time_emolab(bin_: str, d: Path, clip_s: float, clips: int, batch: int, threads: int, device: str,
                whisper_input: str = "padded") -> float:
    """emolab on the same input; Whisper padded to 30 s unless `whisper_input` says otherwise."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        subprocess.run([bin_, "--quiet", "bench", "encoder", "--model", str(d), "--clip-s", str(clip_s),
                        "--clips", str(clips), "--batch", str(batch), "--threads", str(threads),
                        "--device", device, "--whisper-input", whisper_input, "--json", str(out)],
                       check=True)
        return json.loads(out.read_text())["seconds"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--out", default="data/bench-encoders")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--clip-s", type=float, default=4.0)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--only", nargs="*", default=list(CONFIGS))
    ap.add_argument("--real", help="a real Whisper folder (config.json + model.safetensors) to time too")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    print(f"transformers {tf.__version__}, torch {torch.__version__}, {a.threads} threads, "
          f"{a.device}, batch {a.batch}, {a.clips} clips of {a.clip_s} s")
    print(f"{'model':<20} {'transformers clips/s':>21} {'emolab clips/s':>15} {'time ratio':>11}")
    for name in a.only:
        d = build(out, name)
        t_hf = time_transformers(d, name, a.clip_s, a.clips, a.batch, a.device)
        t_em = time_emolab(a.bin, d, a.clip_s, a.clips, a.batch, a.threads, a.device)
        print(f"{name:<20} {a.clips / t_hf:>21.2f} {a.clips / t_em:>15.2f} {t_em / t_hf:>11.2f}", flush=True)
    if a.real and (Path(a.real) / "config.json").exists():
        d = Path(a.real)
        t_hf = time_transformers(d, "whisper-real", a.clip_s, a.clips, a.batch, a.device)
        t_em = time_emolab(a.bin, d, a.clip_s, a.clips, a.batch, a.threads, a.device)
        print(f"{d.name + ' (padded)':<20} {a.clips / t_hf:>21.2f} {a.clips / t_em:>15.2f} {t_em / t_hf:>11.2f}",
              flush=True)
        # emolab's default input (the clip's own frames) against transformers' only one (30 s).
        t_cr = time_emolab(a.bin, d, a.clip_s, a.clips, a.batch, a.threads, a.device, "cropped")
        print(f"{d.name + ' (cropped)':<20} {'':>21} {a.clips / t_cr:>15.2f} {t_cr / t_hf:>11.2f}", flush=True)
    elif a.real:
        print(f"note: no config.json in {a.real}: the real encoder is left out")


if __name__ == "__main__":
    main()
