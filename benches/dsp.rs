//! Per-stage cost of the analysis front end, in CPU time per second of audio.
//!
//! `cargo bench --bench dsp` runs each stage alone on a minute of generated audio and prints
//! microseconds per audio second and the stage's own × realtime, so a change to one stage can
//! be judged without the noise of decoding. The whole pipeline is measured by
//! `playlista bench CORPUS`.

use std::hint::black_box;

use playlista::audio::resample::Resampler;
use playlista::audio::{ANALYSIS_RATE, Speaker};
use playlista::features::danceability::Danceability;
use playlista::features::key::KeyDetector;
use playlista::features::loudness::LoudnessMeter;
use playlista::features::stft::{Framer, PowerSpectrum};
use playlista::features::timbre::TimbreMeter;
use playlista::features::{FeatureExtractor, rhythm};
use playlista::synth::{SongSpec, song};
use playlista::usage::{Clock, cpu_s};

const SECONDS: f64 = 60.0;
const PACKET: usize = 1152;

fn report(name: &str, mut f: impl FnMut()) {
    f(); // warm caches and allocations
    // The fastest of seven runs, in this thread's CPU time: on a shared machine,
    // interference only ever adds time, and waiting for a core is not counted at all.
    let best = (0..7)
        .map(|_| {
            let t = cpu_s(Clock::Thread);
            f();
            cpu_s(Clock::Thread) - t
        })
        .fold(f64::INFINITY, f64::min);
    println!(
        "{name:<40} {:>8.1} µs per audio second {:>9.0} × realtime",
        best * 1e6 / SECONDS,
        SECONDS / best
    );
}

fn main() {
    let spec = SongSpec {
        bpm: 123.0,
        tonic: 4,
        minor: true,
        seconds: SECONDS,
    };
    let at_44k = song(&spec, 44_100);
    let at_48k = song(&spec, 48_000);
    let at_22k = song(&spec, ANALYSIS_RATE);

    for (label, input, rate) in [
        ("resample 44.1 -> 22.05 kHz (half-band)", &at_44k, 44_100u32),
        ("resample 48 -> 22.05 kHz (polyphase)", &at_48k, 48_000),
    ] {
        report(label, || {
            let mut r = Resampler::new(rate, ANALYSIS_RATE, 4);
            let mut out = Vec::with_capacity(PACKET);
            for block in input.chunks(PACKET) {
                out.clear();
                r.process(block, &mut out);
                black_box(&out);
            }
        });
    }

    report("loudness, stereo 44.1 kHz", || {
        let mut m = LoudnessMeter::new();
        m.begin(44_100, &[Speaker::Front, Speaker::Front]);
        for block in at_44k.chunks(PACKET) {
            m.push(&[block, block]);
        }
        black_box(m.integrated_lufs());
    });

    report("STFT 1024 / hop 512 power spectra", || {
        let mut framer = Framer::new(1024, 512);
        let mut ps = PowerSpectrum::new(1024);
        for block in at_22k.chunks(PACKET) {
            framer.push(block, |frame| {
                black_box(ps.compute(frame));
            });
        }
    });

    // The onset STFT's spectra, computed once: the timbre stage's own cost is what it adds.
    let mut spectra = Vec::new();
    let mut framer = Framer::new(rhythm::FRAME, rhythm::HOP);
    let mut ps = PowerSpectrum::new(rhythm::FRAME);
    for block in at_22k.chunks(PACKET) {
        framer.push(block, |frame| spectra.push(ps.compute(frame).to_vec()));
    }
    report("timbre on 512-point spectra (full mode)", || {
        let mut t = TimbreMeter::new(ANALYSIS_RATE, rhythm::FRAME);
        for power in &spectra {
            t.push_spectrum(power);
        }
        black_box(t.finish(&[1.0; 12]));
    });

    report("key detector (2 half-bands, 2048 FFT)", || {
        let mut k = KeyDetector::new();
        for block in at_22k.chunks(PACKET) {
            k.push(block);
        }
        black_box(k.finish(SECONDS));
    });

    report("danceability (10 ms blocks + DFA)", || {
        let mut d = Danceability::new(ANALYSIS_RATE);
        for block in at_22k.chunks(PACKET) {
            d.push(block);
        }
        black_box(d.finish());
    });

    let mut fx = FeatureExtractor::new();
    report("all features at 22.05 kHz, push only", || {
        fx.begin(ANALYSIS_RATE, &[Speaker::Front]);
        for block in at_22k.chunks(PACKET) {
            fx.push(&[], block);
        }
    });
    for (label, full) in [
        ("all features at 22.05 kHz, push + finish", false),
        ("the same in full mode (+ timbre)", true),
    ] {
        report(label, || {
            let mut fx = FeatureExtractor::with_mode(full);
            fx.begin(ANALYSIS_RATE, &[Speaker::Front]);
            for block in at_22k.chunks(PACKET) {
                fx.push(&[], block);
            }
            black_box(fx.finish(SECONDS));
        });
    }
}
