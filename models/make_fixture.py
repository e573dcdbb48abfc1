#!/usr/bin/env python3
"""Writes models/fixture/: a real-music excerpt and musicnn's own mel patches for it.

Run by hand in the conversion venv (see convert.py), before convert.py, from the repository root:

    /work/venv-musicnn/bin/python models/make_fixture.py [/work/corpus/real]

- `excerpt.flac`: SOURCE from OFFSET_S seconds on, EXCERPT_S seconds, down-mixed to mono (mean
  of the channels) and resampled to 22 050 Hz: what playlista's decoder hands the analysis (its
  `audio::ANALYSIS_RATE` stream), stored losslessly as 16-bit FLAC so that Rust and Python read
  the same samples.
- `mel_patches.bin`: little-endian f32 [3, 187, 96], computed from `excerpt.flac` by musicnn's
  own front end, `musicnn.extractor.batch_data` (librosa: load at 16 kHz, mel spectrogram, float16,
  log10(10000 x + 1), non-overlapping 187-frame patches).
It also prints what musicnn's float16 cast changes (the Rust front end stays in f32).
"""

import json
import os
import sys

import numpy as np
import librosa
import soundfile as sf

from musicnn import configuration as config
from musicnn.extractor import batch_data

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixture")
SOURCE = "lincity_02_robert_van_herk_city_blues.ogg"
OFFSET_S = 60.0
EXCERPT_S = 9.0
RATE = 22050
N_FRAMES = 187


def main():
    corpus = sys.argv[1] if len(sys.argv) > 1 else "/work/corpus/real"
    os.makedirs(FIXTURE, exist_ok=True)
    audio, sr = sf.read(os.path.join(corpus, SOURCE), dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    start = int(OFFSET_S * sr)
    mono = mono[start : start + int((EXCERPT_S + 1.0) * sr)]
    mono = librosa.resample(mono, orig_sr=sr, target_sr=RATE, res_type="soxr_hq")
    mono = mono[: int(EXCERPT_S * RATE)]
    flac = os.path.join(FIXTURE, "excerpt.flac")
    sf.write(flac, mono, RATE, subtype="PCM_16")

    batch, _ = batch_data(flac, N_FRAMES, N_FRAMES)
    batch = batch.astype("<f4")
    batch.tofile(os.path.join(FIXTURE, "mel_patches.bin"))

    # The same front end in float32 throughout: how much the float16 cast matters.
    y, _ = librosa.load(flac, sr=config.SR)
    mel = librosa.feature.melspectrogram(
        y=y, sr=config.SR, hop_length=config.FFT_HOP, n_fft=config.FFT_SIZE, n_mels=config.N_MELS
    ).T
    mel = np.log10(10000 * mel + 1)
    f32 = np.stack([mel[i * N_FRAMES : (i + 1) * N_FRAMES] for i in range(batch.shape[0])])

    info = {
        "source": SOURCE,
        "offset_s": OFFSET_S,
        "excerpt_s": EXCERPT_S,
        "patches": list(batch.shape),
        "librosa": librosa.__version__,
        "float16_cast_max_abs_diff": float(np.max(np.abs(f32 - batch))),
    }
    print(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
