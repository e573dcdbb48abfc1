//! The MusiCNN embedding of full mode: a track's 200-d timbre/genre vector and 50 tag
//! probabilities, from the pre-trained MSD_musicnn network (musicnn 0.1.0, ISC, MTG-UPF 2019).
//!
//! In: the track's mono analysis stream at [`crate::audio::ANALYSIS_RATE`], block by block, as the
//! decoder produces it. Out: an [`Embedding`]: the mean over 3-second patches of the network's
//! penultimate layer (before its ReLU, as Essentia exports it) and of its sigmoid tag outputs.
//!
//! - [`mel`]: 22.05 kHz → 16 kHz → log-mel frames, exactly as the network was trained.
//! - [`model`]: the quantised network (compiled into the binary), run by tract, batch 1.
//! - here: [`Embedder`], one per worker, assembling patches from the frames and choosing which
//!   ones to run.
//!
//! # Patch sampling
//! Every patch costs ~100 ms of CPU, ~30× realtime per core, too slow for full coverage on a
//! Pi. [`Coverage::Sampled`]`(n)` runs at most `n` patches spread evenly over the whole track,
//! without knowing its length in advance (containers do not always tell it, and sometimes
//! lie): a [`Schedule`] keeps every `stride`-th patch; when it holds `2n + 1`, it drops every
//! other one (keeping the first and the last) and doubles the stride. At the end it holds up to
//! `2n` patches evenly spaced over the track and runs `n` of them, evenly picked. Kept patches
//! are mel spectra (72 KB each, `2n + 1` slots allocated once), the network runs in
//! [`Embedder::finish`], and the audio under patches already out of the schedule is neither
//! resampled nor transformed.
//! [`DEFAULT_PATCHES`] was chosen on the real corpus tracks: the sampled mean keeps a cosine of
//! at least 0.98 with the all-patches mean (`examples/embedding_bench.rs` measures it).
//! [`Coverage::Full`] runs every patch as it completes.
//!
//! Patches are consecutive and do not overlap (musicnn's default); the incomplete patch at the
//! end is dropped, except that a track shorter than one patch repeats its frames to fill one
//! (the training's "repeat-pad").

pub mod mel;
pub mod model;

use mel::{FrameSink, MelFrontEnd, N_MELS, PATCH_FRAMES, PATCH_LEN};
pub use model::{EMBEDDING_DIM, Model, ModelError, N_TAGS};

/// The tags of [`Embedding::tags`], in the network's output order (musicnn's `MSD_LABELS`:
/// the 50 most frequent Last.fm tags of the Million Song Dataset).
pub const TAG_NAMES: [&str; N_TAGS] = [
    "rock",
    "pop",
    "alternative",
    "indie",
    "electronic",
    "female vocalists",
    "dance",
    "00s",
    "alternative rock",
    "jazz",
    "beautiful",
    "metal",
    "chillout",
    "male vocalists",
    "classic rock",
    "soul",
    "indie rock",
    "Mellow",
    "electronica",
    "80s",
    "folk",
    "90s",
    "chill",
    "instrumental",
    "punk",
    "oldies",
    "blues",
    "hard rock",
    "ambient",
    "acoustic",
    "experimental",
    "female vocalist",
    "guitar",
    "Hip-Hop",
    "70s",
    "party",
    "country",
    "easy listening",
    "sexy",
    "catchy",
    "funk",
    "electro",
    "heavy metal",
    "Progressive rock",
    "60s",
    "rnb",
    "indie pop",
    "sad",
    "House",
    "happy",
];

/// Patches per track under [`Coverage::Sampled`] unless configured otherwise.
pub const DEFAULT_PATCHES: usize = 16;

/// How many of a track's patches the network sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// At most this many, spread evenly over the track.
    Sampled(usize),
    /// Every patch (`--embedding_coverage full`).
    Full,
}

impl Default for Coverage {
    fn default() -> Self {
        Coverage::Sampled(DEFAULT_PATCHES)
    }
}

/// One track's embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    /// Mean of the patches' 200-d embeddings.
    pub mean: [f32; EMBEDDING_DIM],
    /// Mean of the patches' tag probabilities, in [`TAG_NAMES`] order.
    pub tags: [f32; N_TAGS],
    /// Patches the network ran on.
    pub patches: u32,
}

/// Which patches a sampled embedding keeps, decided while streaming; see the module doc.
#[derive(Debug, Clone)]
pub struct Schedule {
    budget: usize,
    stride: u64,
    /// Indices of the kept patches, ascending, all multiples of `stride`.
    kept: Vec<u64>,
}

impl Schedule {
    pub fn new(budget: usize) -> Self {
        let budget = budget.max(1);
        Schedule {
            budget,
            stride: 1,
            kept: Vec::with_capacity(2 * budget + 1),
        }
    }

    pub fn reset(&mut self) {
        self.stride = 1;
        self.kept.clear();
    }

    /// Whether patch `patch` is still in the running. Once false, false for good.
    pub fn wants(&self, patch: u64) -> bool {
        patch % self.stride == 0
    }

    /// Records a completed patch that was wanted. Returns true when the kept set was halved:
    /// the caller then keeps its positions 0, 2, 4, … in its own storage, as here.
    pub fn complete(&mut self, patch: u64) -> bool {
        debug_assert!(self.wants(patch));
        self.kept.push(patch);
        if self.kept.len() <= 2 * self.budget {
            return false;
        }
        let mut j = 0;
        self.kept.retain(|_| {
            j += 1;
            j % 2 == 1
        });
        self.stride *= 2;
        true
    }

    /// How many patches to run: at most `budget`.
    pub fn chosen_len(&self) -> usize {
        self.kept.len().min(self.budget)
    }

    /// Position in the kept list of the `i`-th patch to run: evenly spread over the kept ones.
    pub fn chosen(&self, i: usize) -> usize {
        let (m, n) = (self.kept.len(), self.budget);
        if m <= n { i } else { (2 * i + 1) * m / (2 * n) }
    }

    /// The indices of the patches to run.
    pub fn chosen_patches(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.chosen_len()).map(|i| self.kept[self.chosen(i)])
    }
}

/// The patches a [`Coverage::Sampled`]`(budget)` embedding runs on a track of `total`
/// complete patches: what the streaming [`Embedder`] does, computed directly.
pub fn sampled_patches(total: u64, budget: usize) -> Vec<u64> {
    let mut schedule = Schedule::new(budget);
    for p in 0..total {
        if schedule.wants(p) {
            schedule.complete(p);
        }
    }
    schedule.chosen_patches().collect()
}

/// Computes track embeddings; one per worker, reused for every track.
pub struct Embedder {
    front: MelFrontEnd,
    patches: Patches,
}

impl Embedder {
    /// With the model compiled into the binary (loading and optimising it takes a moment: do it
    /// once per worker).
    pub fn new(coverage: Coverage) -> Result<Self, ModelError> {
        Ok(Self::with_model(Model::embedded()?, coverage))
    }

    pub fn with_model(model: Model, coverage: Coverage) -> Self {
        let (budget, slots) = match coverage {
            Coverage::Sampled(n) => (n.max(1), 2 * n.max(1) + 1),
            Coverage::Full => (1, 1),
        };
        Embedder {
            front: MelFrontEnd::new(),
            patches: Patches {
                model,
                coverage,
                schedule: Schedule::new(budget),
                slots: vec![0.0; slots * PATCH_LEN],
                rows: 0,
                completed: 0,
                sum_embedding: [0.0; EMBEDDING_DIM],
                sum_tags: [0.0; N_TAGS],
                runs: 0,
                embedding: [0.0; EMBEDDING_DIM],
                tags: [0.0; N_TAGS],
                error: None,
            },
        }
    }

    pub fn coverage(&self) -> Coverage {
        self.patches.coverage
    }

    /// Starts a track.
    pub fn begin(&mut self) {
        self.front.reset();
        self.patches.reset();
    }

    /// The next samples of the mono analysis stream (22.05 kHz).
    pub fn push(&mut self, mono: &[f32]) {
        self.front.push(mono, &mut self.patches);
    }

    /// Ends the track. `Ok(None)` for a track too short to give a single frame.
    pub fn finish(&mut self) -> Result<Option<Embedding>, ModelError> {
        self.front.finish(&mut self.patches);
        self.patches.finish()
    }
}

/// The frame sink: patch assembly, the schedule, the network runs and their sums.
struct Patches {
    model: Model,
    coverage: Coverage,
    schedule: Schedule,
    /// `PATCH_LEN` values per slot. Sampled: slot i holds kept patch i, and the patch being
    /// filled goes in the slot after the last kept one. Full: one slot.
    slots: Vec<f32>,
    /// Frames in of the patch being filled.
    rows: usize,
    /// Complete patches received (all of them in full coverage, the wanted ones otherwise).
    completed: u64,
    sum_embedding: [f64; EMBEDDING_DIM],
    sum_tags: [f64; N_TAGS],
    runs: u32,
    embedding: [f32; EMBEDDING_DIM],
    tags: [f32; N_TAGS],
    /// The first failure of a network run during the track, reported by `finish`.
    error: Option<ModelError>,
}

impl Patches {
    fn reset(&mut self) {
        self.schedule.reset();
        self.rows = 0;
        self.completed = 0;
        self.sum_embedding = [0.0; EMBEDDING_DIM];
        self.sum_tags = [0.0; N_TAGS];
        self.runs = 0;
        self.error = None;
    }

    fn filling_slot(&self) -> usize {
        match self.coverage {
            Coverage::Sampled(_) => self.schedule.kept.len(),
            Coverage::Full => 0,
        }
    }

    /// Runs the network on slot `i` and adds its outputs to the sums.
    fn run(&mut self, i: usize) {
        if self.error.is_some() {
            return;
        }
        let patch = &self.slots[i * PATCH_LEN..(i + 1) * PATCH_LEN];
        match self.model.run(patch, &mut self.embedding, &mut self.tags) {
            Ok(()) => {
                for (s, &v) in self.sum_embedding.iter_mut().zip(&self.embedding) {
                    *s += v as f64;
                }
                for (s, &v) in self.sum_tags.iter_mut().zip(&self.tags) {
                    *s += v as f64;
                }
                self.runs += 1;
            }
            Err(e) => self.error = Some(e),
        }
    }

    fn finish(&mut self) -> Result<Option<Embedding>, ModelError> {
        if self.completed == 0 {
            // Shorter than one patch: repeat what there is.
            if self.rows == 0 {
                return Ok(None);
            }
            let slot = self.filling_slot();
            let have = self.rows * N_MELS;
            let data = &mut self.slots[slot * PATCH_LEN..(slot + 1) * PATCH_LEN];
            for k in have..PATCH_LEN {
                data[k] = data[k % have];
            }
            self.run(slot);
        } else if let Coverage::Sampled(_) = self.coverage {
            for i in 0..self.schedule.chosen_len() {
                self.run(self.schedule.chosen(i));
            }
        }
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let n = self.runs.max(1) as f64;
        Ok(Some(Embedding {
            mean: self.sum_embedding.map(|s| (s / n) as f32),
            tags: self.sum_tags.map(|s| (s / n) as f32),
            patches: self.runs,
        }))
    }
}

impl FrameSink for Patches {
    fn wants(&self, frame: u64) -> bool {
        self.schedule.wants(frame / PATCH_FRAMES as u64)
    }

    fn frame(&mut self, frame: u64, mel: &[f32; N_MELS]) {
        let (patch, row) = (
            frame / PATCH_FRAMES as u64,
            (frame % PATCH_FRAMES as u64) as usize,
        );
        debug_assert!(
            row == 0 || row == self.rows,
            "frames of a patch arrive in order"
        );
        self.rows = row + 1;
        let slot = self.filling_slot();
        let at = slot * PATCH_LEN + row * N_MELS;
        self.slots[at..at + N_MELS].copy_from_slice(mel);
        if self.rows < PATCH_FRAMES {
            return;
        }
        self.completed += 1;
        match self.coverage {
            Coverage::Full => self.run(0),
            Coverage::Sampled(_) => {
                if self.schedule.complete(patch) {
                    // Keep slots 0, 2, 4, … as the schedule kept positions 0, 2, 4, …
                    for j in 1..self.schedule.kept.len() {
                        self.slots
                            .copy_within(2 * j * PATCH_LEN..(2 * j + 1) * PATCH_LEN, j * PATCH_LEN);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_spreads_its_budget_over_tracks_of_any_length() {
        for budget in [1usize, 2, 5, 16, 24] {
            for total in 0..700u64 {
                let chosen = sampled_patches(total, budget);
                assert_eq!(
                    chosen.len() as u64,
                    total.min(budget as u64),
                    "{total}/{budget}"
                );
                assert!(chosen.windows(2).all(|w| w[0] < w[1]));
                assert!(chosen.iter().all(|&p| p < total));
                if total <= budget as u64 {
                    continue;
                }
                // No stretch of the track, ends included, is left out for much longer than an
                // even spacing would leave.
                let even = total as f64 / budget as f64;
                let gaps = chosen
                    .windows(2)
                    .map(|w| w[1] - w[0])
                    .chain([chosen[0] + 1, total - chosen[chosen.len() - 1]]);
                for gap in gaps {
                    assert!(
                        gap as f64 <= 2.0 * even + 1.0,
                        "{total}/{budget}: gap {gap}"
                    );
                }
            }
        }
    }

    #[test]
    fn kept_slots_follow_the_schedule() {
        // Frames tagged with their patch index: the slots the network would read hold the
        // patches the schedule chose.
        let mut embedder = Embedder::new(Coverage::Sampled(3)).expect("embedded model");
        for total in [1u64, 4, 7, 8, 13, 29, 64] {
            embedder.begin();
            let patches = &mut embedder.patches;
            for frame in 0..total * PATCH_FRAMES as u64 + 50 {
                if patches.wants(frame) {
                    patches.frame(frame, &[(frame / PATCH_FRAMES as u64) as f32; N_MELS]);
                }
            }
            let expect = sampled_patches(total, 3);
            let chosen: Vec<u64> = patches.schedule.chosen_patches().collect();
            assert_eq!(chosen, expect, "{total} patches");
            for (i, &patch) in expect.iter().enumerate() {
                let slot = patches.schedule.chosen(i);
                let data = &patches.slots[slot * PATCH_LEN..(slot + 1) * PATCH_LEN];
                assert!(
                    data.iter().all(|&v| v == patch as f32),
                    "{total}: slot {slot}"
                );
            }
        }
    }
}
