//! The MusiCNN embedding against the Python reference in `models/fixture/` (see
//! `models/MODEL.md`): 9 s of real music (`excerpt.flac`, 22.05 kHz mono), musicnn's own mel
//! patches for it and the TensorFlow graph's outputs for those patches.
//!
//! The audio goes through the real decoder, the Rust front end and tract, so these check the
//! whole chain a track takes in full mode.
//!
//! The shipped network, `models/msd_musicnn_int8.nnef.tgz`, is made here:
//! `PLAYLISTA_UPDATE_MODEL=1 cargo test --release --test embedding shipped_model` converts
//! `models/msd_musicnn_int8.onnx` and writes it; without the variable the test checks the
//! shipped file is exactly that conversion.

use std::path::{Path, PathBuf};

use playlista::audio::{ChunkSink, Decoder, StreamInfo};
use playlista::embedding::mel::{FrameSink, MelFrontEnd, N_MELS, PATCH_FRAMES, PATCH_LEN};
use playlista::embedding::{Coverage, EMBEDDING_DIM, Embedder, Model, N_TAGS, OUTPUTS, TAG_NAMES};
use tract_onnx::prelude::*;

const PATCHES: usize = 3;

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
}

fn read_f32(name: &str) -> Vec<f32> {
    let bytes = std::fs::read(models().join("fixture").join(name)).expect("fixture file");
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The fixture excerpt as the decoder hands it to the analysis.
fn excerpt() -> Vec<f32> {
    struct Mono(Vec<f32>);
    impl ChunkSink for Mono {
        fn begin(&mut self, info: &StreamInfo) {
            assert_eq!((info.sample_rate, info.channels), (22_050, 1));
        }
        fn chunk(&mut self, _planes: &[&[f32]], mono: &[f32]) {
            self.0.extend_from_slice(mono);
        }
    }
    let mut sink = Mono(Vec::new());
    Decoder::new()
        .decode(&models().join("fixture/excerpt.flac"), &mut sink)
        .expect("decode the fixture");
    assert_eq!(sink.0.len(), 9 * 22_050);
    sink.0
}

fn mean_rows(values: &[f32], width: usize) -> Vec<f64> {
    let rows = values.len() / width;
    let mut mean = vec![0.0; width];
    for row in values.chunks_exact(width) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += v as f64 / rows as f64;
        }
    }
    mean
}

fn cosine(a: &[f64], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, &y)| x * y as f64).sum();
    let na: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|&y| (y as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// An ONNX export of the network, typed and decluttered by tract: one patch in, [`OUTPUTS`].
fn typed_onnx(name: &str) -> TypedModel {
    let bytes = std::fs::read(models().join(name)).expect("ONNX model");
    let mut model = tract_onnx::onnx()
        .model_for_read(&mut std::io::Cursor::new(bytes))
        .expect("parse the ONNX model");
    model
        .set_input_fact(0, f32::fact([1, PATCH_FRAMES, N_MELS]).into())
        .expect("input fact");
    model.select_outputs_by_name(OUTPUTS).expect("outputs");
    model
        .into_typed()
        .and_then(|m| m.into_decluttered())
        .expect("type the ONNX model")
}

fn float_model() -> Model {
    Model::from_typed(typed_onnx("msd_musicnn_f32.onnx")).expect("load the float model")
}

/// The shipped NNEF: the int8 ONNX graph typed and decluttered (tract folds its
/// DequantizeLinear nodes into float constants), as a deterministic tar, gzipped: the folded
/// float weights take 3.2 MB as a tar, 1.3 MB gzipped (the ONNX file's int8 weights: 0.8 MB).
fn convert_to_nnef() -> Vec<u8> {
    let model = typed_onnx("msd_musicnn_int8.onnx");
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    tract_nnef::nnef()
        .write_to_tar_with_config(&model, gz, false, true)
        .and_then(|gz| Ok(gz.finish()?))
        .expect("write NNEF")
}

#[test]
fn shipped_model_is_the_int8_onnx_converted_to_nnef() {
    let tar = convert_to_nnef();
    let path = models().join("msd_musicnn_int8.nnef.tgz");
    if std::env::var_os("PLAYLISTA_UPDATE_MODEL").is_some() {
        std::fs::write(&path, &tar).expect("write the model");
    }
    let shipped = std::fs::read(&path).expect("shipped model");
    assert!(
        shipped == tar,
        "{} is not the conversion of msd_musicnn_int8.onnx ({} bytes against {}): \
         PLAYLISTA_UPDATE_MODEL=1 cargo test --release --test embedding shipped_model",
        path.display(),
        shipped.len(),
        tar.len()
    );
    // The conversion computes what the ONNX graph computes, to the bit.
    let mut onnx = Model::from_typed(typed_onnx("msd_musicnn_int8.onnx")).expect("ONNX model");
    let mut nnef = Model::embedded().expect("embedded model");
    let patches = read_f32("mel_patches.bin");
    for p in patches.chunks_exact(PATCH_LEN) {
        let mut a = ([0.0; EMBEDDING_DIM], [0.0; N_TAGS]);
        let mut b = ([0.0; EMBEDDING_DIM], [0.0; N_TAGS]);
        onnx.run(p, &mut a.0, &mut a.1).expect("run ONNX");
        nnef.run(p, &mut b.0, &mut b.1).expect("run NNEF");
        assert_eq!(a, b);
    }
}

#[test]
fn front_end_reproduces_musicnns_mel_patches() {
    struct All(Vec<f32>);
    impl FrameSink for All {
        fn wants(&self, _frame: u64) -> bool {
            true
        }
        fn frame(&mut self, frame: u64, mel: &[f32; N_MELS]) {
            assert_eq!(frame as usize, self.0.len() / N_MELS);
            self.0.extend_from_slice(mel);
        }
    }
    let reference = read_f32("mel_patches.bin");
    assert_eq!(reference.len(), PATCHES * PATCH_LEN);
    let mut front = MelFrontEnd::new();
    let mut frames = All(Vec::new());
    for block in excerpt().chunks(1152) {
        front.push(block, &mut frames);
    }
    front.finish(&mut frames);
    // 9 s at 16 kHz: 144 000 samples, 1 + 144000 / 256 centred frames.
    assert_eq!(frames.0.len(), 563 * N_MELS);
    let ours = &frames.0[..PATCHES * PATCH_LEN];
    let max = max_diff(ours, &reference);
    let mean = ours
        .iter()
        .zip(&reference)
        .map(|(a, b)| (a - b).abs())
        .sum::<f32>()
        / ours.len() as f32;
    let range = reference.iter().copied().fold(0.0, f32::max);
    println!("mel vs musicnn: max |diff| {max:.5}, mean {mean:.6} (values up to {range:.2})");
    // The resamplers differ (ours vs soxr) at the top of the band, and musicnn rounds the
    // power to float16: thousandths of a log unit.
    assert!(max < 0.02, "max |diff| {max}");
    assert!(mean < 5e-4, "mean |diff| {mean}");
    assert!(range > 3.0, "the fixture is not silence");
}

#[test]
fn tract_runs_both_models_like_the_python_runtimes() {
    // The float model against TensorFlow itself, the int8 one against onnxruntime on the same
    // file: the same numbers from the same weights, so tract reads both graphs right.
    let patches = read_f32("mel_patches.bin");
    for (label, mut model, outputs, tolerance) in [
        ("float", float_model(), "tf", 1e-3),
        (
            "int8",
            Model::embedded().expect("embedded model"),
            "int8",
            1e-3,
        ),
    ] {
        let want_embedding = read_f32(&format!("outputs_{outputs}_embedding.bin"));
        let want_tags = read_f32(&format!("outputs_{outputs}_tags.bin"));
        let (mut embedding, mut tags) = ([0.0; EMBEDDING_DIM], [0.0; N_TAGS]);
        for p in 0..PATCHES {
            model
                .run(
                    &patches[p * PATCH_LEN..(p + 1) * PATCH_LEN],
                    &mut embedding,
                    &mut tags,
                )
                .expect("run");
            let want = &want_embedding[p * EMBEDDING_DIM..(p + 1) * EMBEDDING_DIM];
            let err = max_diff(&embedding, want);
            assert!(
                err < tolerance,
                "{label} patch {p}: embedding max |diff| {err}"
            );
            let err = max_diff(&tags, &want_tags[p * N_TAGS..(p + 1) * N_TAGS]);
            assert!(
                err < tolerance / 10.0,
                "{label} patch {p}: tags max |diff| {err}"
            );
        }
    }
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn pipeline_embedding_matches_the_float_reference() {
    let audio = excerpt();
    let reference = mean_rows(&read_f32("outputs_tf_embedding.bin"), EMBEDDING_DIM);
    let reference_tags = mean_rows(&read_f32("outputs_tf_tags.bin"), N_TAGS);
    for (label, model, min_cosine) in [
        ("float", float_model(), 0.995),
        (
            "int8 (compiled in)",
            Model::embedded().expect("embedded model"),
            0.99,
        ),
    ] {
        let mut embedder = Embedder::with_model(model, Coverage::Full);
        embedder.begin();
        for block in audio.chunks(2048) {
            embedder.push(block);
        }
        let e = embedder.finish().expect("runs").expect("long enough");
        assert_eq!(e.patches as usize, PATCHES, "{label}");
        let cos = cosine(&reference, &e.mean);
        let tag_err = reference_tags
            .iter()
            .zip(&e.tags)
            .map(|(a, &b)| (a - b as f64).abs())
            .fold(0.0, f64::max);
        println!(
            "{label}: cosine {cos:.5} with TensorFlow's mean embedding, tags max |diff| {tag_err:.4}"
        );
        assert!(cos >= min_cosine, "{label}: cosine {cos}");
        assert!(tag_err < 0.02, "{label}: tags max |diff| {tag_err}");
    }
}

#[test]
fn sampling_every_patch_equals_full_coverage() {
    // The fixture has 3 patches: a budget of 3 or more runs them all, through the schedule's
    // slots instead of the one-slot full path; a budget of 1 runs one of them.
    let audio = excerpt();
    let model = Model::embedded().expect("embedded model");
    let mut full = Embedder::with_model(model, Coverage::Full);
    let run = |e: &mut Embedder| {
        e.begin();
        for block in audio.chunks(4096) {
            e.push(block);
        }
        e.finish().expect("runs").expect("long enough")
    };
    let all = run(&mut full);
    let mut sampled = Embedder::with_model(Model::embedded().expect("model"), Coverage::Sampled(4));
    assert_eq!(run(&mut sampled), all);
    // Reused for a second track: same answer.
    assert_eq!(run(&mut sampled), all);
    let mut one = Embedder::with_model(Model::embedded().expect("model"), Coverage::Sampled(1));
    let e = run(&mut one);
    assert_eq!(e.patches, 1);
    assert_ne!(e.mean, all.mean);
}

#[test]
fn short_and_empty_tracks() {
    let audio = excerpt();
    let mut embedder = Embedder::new(Coverage::default()).expect("embedded model");
    embedder.begin();
    assert_eq!(
        embedder.finish().expect("runs"),
        None,
        "no samples, no embedding"
    );
    // One second: a third of a patch, repeated to fill one.
    embedder.begin();
    embedder.push(&audio[..22_050]);
    let e = embedder.finish().expect("runs").expect("repeat-padded");
    assert_eq!(e.patches, 1);
    assert!(e.mean.iter().all(|v| v.is_finite()) && e.tags.iter().all(|t| (0.0..=1.0).contains(t)));
}

#[test]
fn tag_names_are_the_models_fifty_in_order() {
    assert_eq!(TAG_NAMES.len(), 50);
    let mut unique = TAG_NAMES.to_vec();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 50);
    // MODEL.md lists them, numbered, as made from musicnn's MSD_LABELS.
    let card = std::fs::read_to_string(models().join("MODEL.md")).expect("MODEL.md");
    let section = card
        .split("\n## ")
        .find(|s| s.starts_with("The 50 tags"))
        .expect("a tags section in MODEL.md");
    let listed: Vec<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| ")?.split_once(" | "))
        .filter(|(n, _)| n.trim().parse::<usize>().is_ok())
        .map(|(_, rest)| rest.trim_end_matches(" |").trim().trim_matches('`'))
        .collect();
    assert_eq!(listed, TAG_NAMES);
}
