//! Measures the MusiCNN embedding: model load time, CPU per patch, CPU per track under patch
//! sampling, peak memory, and how faithful sampling is (cosine between the sampled mean and
//! the all-patches mean) for fixed budgets and for the early-stopping rules of the grid below
//! (the patches each runs, and its fidelity), over a folder of real tracks. Run by hand,
//! single-threaded:
//!
//! ```text
//! cargo run --release --example embedding_bench -- [DIR (/work/corpus/real)] [BUDGET...]
//! cargo run --release --example embedding_bench -- --rss FILE   # peak RSS of one embedder
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use playlista::audio::{ChunkSink, Decoder, StreamInfo};
use playlista::embedding::mel::{FrameSink, MelFrontEnd, N_MELS, PATCH_FRAMES, PATCH_LEN};
use playlista::embedding::{
    Coverage, DEFAULT_PATCHES, EMBEDDING_DIM, Embedder, Model, N_TAGS, STOP, Stop, Stopper,
    sampled_patches, spread_order,
};
use playlista::usage::{Clock, cpu_s, peak_rss_kb, reset_peak_rss};

/// Runs the network on every patch and keeps each patch's embedding.
struct EveryPatch<'m> {
    model: &'m mut Model,
    patch: Vec<f32>,
    embeddings: Vec<[f32; EMBEDDING_DIM]>,
}

impl FrameSink for EveryPatch<'_> {
    fn wants(&self, _frame: u64) -> bool {
        true
    }
    fn frame(&mut self, frame: u64, mel: &[f32; N_MELS]) {
        let row = (frame % PATCH_FRAMES as u64) as usize;
        self.patch[row * N_MELS..(row + 1) * N_MELS].copy_from_slice(mel);
        if row + 1 == PATCH_FRAMES {
            let (mut e, mut t) = ([0.0; EMBEDDING_DIM], [0.0; N_TAGS]);
            self.model
                .run(&self.patch, &mut e, &mut t)
                .expect("model run");
            self.embeddings.push(e);
        }
    }
}

/// Feeds the decoder's mono stream to a closure.
struct Forward<F: FnMut(&[f32])>(F);

impl<F: FnMut(&[f32])> ChunkSink for Forward<F> {
    fn begin(&mut self, _info: &StreamInfo) {}
    fn chunk(&mut self, _planes: &[&[f32]], mono: &[f32]) {
        (self.0)(mono)
    }
}

fn mean_of<'a>(rows: impl Iterator<Item = &'a [f32; EMBEDDING_DIM]>) -> [f64; EMBEDDING_DIM] {
    let mut sum = [0.0; EMBEDDING_DIM];
    let mut n = 0;
    for r in rows {
        for (s, &v) in sum.iter_mut().zip(r) {
            *s += v as f64;
        }
        n += 1;
    }
    sum.map(|s| s / n.max(1) as f64)
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (n(a) * n(b))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The patches a budget with early stopping runs on a track of `total` patches: the chosen
/// ones in spread order until `rule` says the mean is known well enough.
fn run_with_stop(
    chosen: &[u64],
    total: usize,
    rule: Stop,
    embeddings: &[[f32; EMBEDDING_DIM]],
    order: &mut Vec<usize>,
) -> Vec<u64> {
    spread_order(chosen.len(), order);
    let mut stopper = Stopper::new(rule);
    stopper.reset(total);
    let mut ran = Vec::new();
    for &k in order.iter() {
        ran.push(chosen[k]);
        if stopper.add(&embeddings[chosen[k] as usize]) {
            break;
        }
    }
    ran
}

/// The early-stopping rules compared, each within a budget (the default, [`STOP`] within
/// [`DEFAULT_PATCHES`], first).
fn rules() -> Vec<(usize, Stop)> {
    let mut out = vec![(DEFAULT_PATCHES, STOP)];
    for budget in [12, 16] {
        for min in [4, 6] {
            for error in [2e-3, 5e-3, 1e-2, 2e-2] {
                let rule = (budget, Stop { min, error });
                if rule != out[0] {
                    out.push(rule);
                }
            }
        }
    }
    out
}

fn main() {
    // The allocator settings of the analysing processes (workers, inspect, bench).
    playlista::os::keep_freed_memory();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--rss") {
        return rss(Path::new(args.get(1).expect("--rss FILE")));
    }
    let dir = PathBuf::from(args.first().map_or("/work/corpus/real", String::as_str));
    let mut budgets: Vec<usize> = args.iter().skip(1).filter_map(|a| a.parse().ok()).collect();
    if budgets.is_empty() {
        budgets = vec![4, 8, 12, 16, 24, 32];
    }

    let (wall, cpu) = (Instant::now(), cpu_s(Clock::Thread));
    let mut model = Model::embedded().expect("embedded model");
    println!(
        "model load (NNEF of the int8 model, read + optimise): {:.0} ms wall, {:.0} ms CPU",
        wall.elapsed().as_secs_f64() * 1e3,
        (cpu_s(Clock::Thread) - cpu) * 1e3
    );

    // CPU per patch, batch 1, this thread: on a real patch from the fixture.
    let fixture =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/fixture/mel_patches.bin"))
            .expect("fixture");
    let patch: Vec<f32> = fixture[..PATCH_LEN * 4]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let (mut e, mut t) = ([0.0; EMBEDDING_DIM], [0.0; N_TAGS]);
    model.run(&patch, &mut e, &mut t).expect("warm-up");
    let runs = 20;
    let cpu = cpu_s(Clock::Thread);
    for _ in 0..runs {
        model.run(&patch, &mut e, &mut t).expect("run");
    }
    println!(
        "network: {:.1} ms CPU per patch (batch 1, one thread)",
        (cpu_s(Clock::Thread) - cpu) * 1e3 / runs as f64
    );

    // The front end alone (resample, STFT, mel), every frame wanted, on the fixture's audio.
    let mut decoder = Decoder::new();
    let mut audio = Vec::new();
    decoder
        .decode(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("models/fixture/excerpt.flac"),
            &mut Forward(|mono: &[f32]| audio.extend_from_slice(mono)),
        )
        .expect("fixture audio");
    struct Count(u64);
    impl FrameSink for Count {
        fn wants(&self, _frame: u64) -> bool {
            true
        }
        fn frame(&mut self, _frame: u64, _mel: &[f32; N_MELS]) {
            self.0 += 1;
        }
    }
    let mut front = MelFrontEnd::new();
    let mut frames = Count(0);
    let cpu = cpu_s(Clock::Thread);
    for _ in 0..20 {
        front.reset();
        for block in audio.chunks(2048) {
            front.push(block, &mut frames);
        }
        front.finish(&mut frames);
    }
    println!(
        "front end: {:.2} ms CPU per patch (22.05 kHz in, resampling, STFT, mel, log)",
        (cpu_s(Clock::Thread) - cpu) * 1e3 / (frames.0 as f64 / PATCH_FRAMES as f64)
    );

    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut embedder = Embedder::with_model(
        Model::embedded().expect("embedded model"),
        Coverage::Sampled(DEFAULT_PATCHES),
    );
    let mut cosines: Vec<Vec<f64>> = vec![Vec::new(); budgets.len()];
    let rules = rules();
    // Per rule: (cosine, patches run) per track.
    let mut stopped: Vec<Vec<(f64, usize)>> = vec![Vec::new(); rules.len()];
    let mut order = Vec::new();
    let (mut audio_s, mut sampled_cpu, mut sampled_runs) = (0.0, 0.0, 0u64);
    println!(
        "\n{:<44} {:>6} {:>7}  cosine(sampled mean, all-patches mean) for budgets {:?}",
        "track", "secs", "patches", budgets
    );
    for path in &files {
        // Every patch, through the front end and the network one by one.
        let mut all = EveryPatch {
            model: &mut model,
            patch: vec![0.0; PATCH_LEN],
            embeddings: Vec::new(),
        };
        front.reset();
        let summary = match decoder.decode(
            path,
            &mut Forward(|mono: &[f32]| front.push(mono, &mut all)),
        ) {
            Ok(s) => s,
            Err(e) => {
                println!("{}: {e}", path.display());
                continue;
            }
        };
        front.finish(&mut all);
        let total = all.embeddings.len() as u64;
        if total == 0 {
            continue;
        }
        let full_mean = mean_of(all.embeddings.iter());
        let mut line = String::new();
        for (k, &budget) in budgets.iter().enumerate() {
            let chosen = sampled_patches(total, budget);
            let c = cosine(
                &full_mean,
                &mean_of(chosen.iter().map(|&p| &all.embeddings[p as usize])),
            );
            cosines[k].push(c);
            line += &format!(" {c:.4}");
        }
        for (r, &(budget, rule)) in rules.iter().enumerate() {
            let chosen = sampled_patches(total, budget);
            let ran = run_with_stop(&chosen, total as usize, rule, &all.embeddings, &mut order);
            let c = cosine(
                &full_mean,
                &mean_of(ran.iter().map(|&p| &all.embeddings[p as usize])),
            );
            stopped[r].push((c, ran.len()));
        }
        // The streaming embedder with the default budget and rule: its CPU, and the same
        // answer as the direct computation above.
        let mut cpu = 0.0;
        embedder.begin();
        decoder
            .decode(
                path,
                &mut Forward(|mono: &[f32]| {
                    let t = cpu_s(Clock::Thread);
                    embedder.push(mono);
                    cpu += cpu_s(Clock::Thread) - t;
                }),
            )
            .expect("decoded once already");
        let t = cpu_s(Clock::Thread);
        let e = embedder.finish().expect("run").expect("long enough");
        cpu += cpu_s(Clock::Thread) - t;
        let direct = mean_of(
            run_with_stop(
                &sampled_patches(total, DEFAULT_PATCHES),
                total as usize,
                STOP,
                &all.embeddings,
                &mut order,
            )
            .iter()
            .map(|&p| &all.embeddings[p as usize]),
        );
        let agree = cosine(&direct, &e.mean.map(|v| v as f64));
        assert!(
            agree > 0.99999,
            "{}: streaming and direct sampling differ ({agree})",
            path.display()
        );
        audio_s += summary.duration_s();
        sampled_cpu += cpu;
        sampled_runs += e.patches as u64;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        println!(
            "{name:<44} {:>6.1} {total:>7} {line}   ({:.2} s CPU sampled)",
            summary.duration_s(),
            cpu
        );
    }
    println!();
    for (k, &budget) in budgets.iter().enumerate() {
        let v = &mut cosines[k];
        if v.is_empty() {
            continue;
        }
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "budget {budget:>2}: cosine median {:.4}, min {min:.4}, tracks below 0.98: {}",
            median(v),
            v.iter().filter(|&&c| c < 0.98).count()
        );
    }
    println!("\nearly stopping (the default rule first):");
    for ((budget, rule), v) in rules.iter().zip(&mut stopped) {
        if v.is_empty() {
            continue;
        }
        let mut c: Vec<f64> = v.iter().map(|x| x.0).collect();
        let min = c.iter().copied().fold(f64::INFINITY, f64::min);
        let runs: Vec<usize> = v.iter().map(|x| x.1).collect();
        println!(
            "budget {budget:>2}, min {}, error {:.0e}: patches mean {:.1} (min {}, max {}), \
             cosine median {:.4}, min {min:.4}, tracks below 0.98: {}",
            rule.min,
            rule.error,
            runs.iter().sum::<usize>() as f64 / runs.len() as f64,
            runs.iter().min().unwrap_or(&0),
            runs.iter().max().unwrap_or(&0),
            median(&mut c),
            c.iter().filter(|&&x| x < 0.98).count()
        );
    }
    let four_min = 240.0 * 16_000.0 / (256.0 * PATCH_FRAMES as f64);
    println!(
        "\nsampled embedding (at most {DEFAULT_PATCHES} patches, stopping early): {sampled_runs} patches over {:.0} s of audio, \
         {:.1} s CPU = {:.0}x realtime per core (embedding alone: resampling, mel, network)",
        audio_s,
        sampled_cpu,
        audio_s / sampled_cpu
    );
    println!(
        "a 4-minute track has {:.0} patches; sampled, the network runs at most {} of them",
        four_min.floor(),
        sampled_patches(four_min as u64, DEFAULT_PATCHES).len()
    );
}

/// Peak RSS of a process holding one embedder that has embedded one track.
fn rss(path: &Path) {
    let base = peak_rss_kb();
    reset_peak_rss();
    let mut embedder = Embedder::new(Coverage::default()).expect("embedded model");
    let loaded = peak_rss_kb();
    let mut decoder = Decoder::new();
    embedder.begin();
    let summary = decoder
        .decode(path, &mut Forward(|mono: &[f32]| embedder.push(mono)))
        .expect("decode");
    let e = embedder.finish().expect("run").expect("long enough");
    println!(
        "{}: {:.0} s, {} patches; peak RSS {} MB before the model, {} MB after loading it, \
         {} MB after the track (decoder included)",
        path.display(),
        summary.duration_s(),
        e.patches,
        base / 1024,
        loaded / 1024,
        peak_rss_kb() / 1024
    );
}
