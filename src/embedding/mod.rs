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
//! [`DEFAULT_PATCHES`] and [`STOP`] were chosen on the real corpus tracks: the sampled mean
//! keeps a cosine of at least 0.98 with the all-patches mean on every track, median 0.995
//! (`examples/embedding_bench.rs` measures it).
//! [`Coverage::Full`] runs every patch as it completes.
//!
//! # Stopping early
//! Most tracks do not need their whole budget: the chosen patches run in [`spread_order`]
//! (halves, then quarters, ... of the track, so every prefix covers all of it), and a
//! [`Stopper`] ends the runs once the running mean is close enough to the mean over every
//! patch of the track, as far as the patches seen can tell: after at least [`STOP`]`.min`
//! patches, when the predicted 1 − cosine between the two means is below [`STOP`]`.error`.
//! The prediction is the sampling error of a mean of k patches out of the track's n
//! (the patches' variance / k, times the finite-population factor 1 − k/n), relative to the
//! mean's squared length: 1 − cos ≈ ‖error‖² / (2 ‖mean‖²). A track whose sections sound
//! alike stops after a few patches; one whose sections differ runs its whole budget.
//!
//! Patches are consecutive and do not overlap (musicnn's default); the incomplete patch at the
//! end is dropped, except that a track shorter than one patch repeats its frames to fill one
//! (the training's "repeat-pad").

pub mod mel;
pub mod model;

use mel::{FrameSink, MelFrontEnd, N_MELS, PATCH_FRAMES, PATCH_LEN};
pub use model::{EMBEDDING_DIM, Model, ModelError, N_TAGS, OUTPUTS};

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

/// Patches per track, at most, under [`Coverage::Sampled`] unless configured otherwise.
pub const DEFAULT_PATCHES: usize = 12;

/// When a sampled embedding stops before its budget (module doc).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stop {
    /// Patches always run (fewer only when the track has fewer).
    pub min: usize,
    /// The predicted 1 − cosine(running mean, all-patches mean) at which the runs stop.
    pub error: f64,
}

/// The rule sampled embeddings use, chosen on the corpus's real tracks
/// (`examples/embedding_bench.rs` prints the fidelity and patches of each candidate).
/// On the 48 real tracks: 9.5 patches a track on average (6 to 12), cosine to the all-patch
/// mean 0.983–1.0, median 0.995 (12 patches without stopping: median 0.997; 16: 0.998).
pub const STOP: Stop = Stop {
    min: 6,
    error: 1e-2,
};

/// Decides, patch by patch, when a running mean embedding is close enough to the track's.
#[derive(Debug, Clone)]
pub struct Stopper {
    rule: Stop,
    sum: [f64; EMBEDDING_DIM],
    sum_sq: [f64; EMBEDDING_DIM],
    runs: usize,
    /// The track's patches, all of them: the population the runs sample.
    population: usize,
}

impl Stopper {
    pub fn new(rule: Stop) -> Self {
        Stopper {
            rule,
            sum: [0.0; EMBEDDING_DIM],
            sum_sq: [0.0; EMBEDDING_DIM],
            runs: 0,
            population: 0,
        }
    }

    /// Starts a track of `population` patches.
    pub fn reset(&mut self, population: usize) {
        self.sum = [0.0; EMBEDDING_DIM];
        self.sum_sq = [0.0; EMBEDDING_DIM];
        self.runs = 0;
        self.population = population;
    }

    /// Adds one patch's embedding; true once no more are needed.
    pub fn add(&mut self, embedding: &[f32; EMBEDDING_DIM]) -> bool {
        for ((s, q), &v) in self.sum.iter_mut().zip(&mut self.sum_sq).zip(embedding) {
            *s += v as f64;
            *q += v as f64 * v as f64;
        }
        self.runs += 1;
        if self.runs < self.rule.min.max(2) {
            return false;
        }
        self.predicted_error() < self.rule.error
    }

    /// The expected 1 − cosine between the running mean and the all-patches mean.
    pub fn predicted_error(&self) -> f64 {
        let k = self.runs as f64;
        let (mut variance, mut length) = (0.0, 0.0);
        for (&s, &q) in self.sum.iter().zip(&self.sum_sq) {
            let mean = s / k;
            variance += (q / k - mean * mean).max(0.0) * k / (k - 1.0);
            length += mean * mean;
        }
        let finite = (1.0 - k / self.population.max(self.runs) as f64).max(0.0);
        if length <= 0.0 {
            return f64::INFINITY;
        }
        variance / k * finite / (2.0 * length)
    }
}

/// The order in which `n` chosen patches (evenly spread, in track order) run: bit-reversed
/// (0, n/2, n/4, 3n/4, ...), so that the first k of them are spread over the whole track.
pub fn spread_order(n: usize, out: &mut Vec<usize>) {
    out.clear();
    let bits = n.next_power_of_two().trailing_zeros();
    for i in 0..n.next_power_of_two() {
        let r = if bits == 0 {
            0
        } else {
            i.reverse_bits() >> (usize::BITS - bits)
        };
        if r < n {
            out.push(r);
        }
    }
}

/// How many of a track's patches the network sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// At most this many, spread evenly over the track, fewer once the mean is stable.
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

    /// The track's complete patches, wanted or not, to within the stride.
    pub fn population(&self) -> usize {
        self.kept.last().map_or(0, |&p| (p + self.stride) as usize)
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
                stopper: Stopper::new(STOP),
                order: Vec::with_capacity(budget),
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
    stopper: Stopper,
    /// The order the chosen patches run in ([`spread_order`]), reused track after track.
    order: Vec<usize>,
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
            spread_order(self.schedule.chosen_len(), &mut self.order);
            self.stopper.reset(self.schedule.population());
            for k in 0..self.order.len() {
                self.run(self.schedule.chosen(self.order[k]));
                if self.error.is_some() || self.stopper.add(&self.embedding) {
                    break;
                }
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
    fn spread_order_covers_the_track_from_the_start() {
        let mut order = Vec::new();
        spread_order(16, &mut order);
        assert_eq!(
            order,
            [0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15]
        );
        for n in 0..40 {
            spread_order(n, &mut order);
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "{n}");
        }
    }

    #[test]
    fn the_stopper_stops_once_the_mean_is_known_well_enough() {
        let rule = Stop {
            min: 3,
            error: 1e-3,
        };
        // The same patch again and again: no spread, done at the minimum.
        let mut s = Stopper::new(rule);
        s.reset(100);
        let same = [1.0f32; EMBEDDING_DIM];
        assert_eq!((0..5).position(|_| s.add(&same)), Some(2));
        // Alternating opposite halves: the mean of a few is far from certain; done only when
        // the patches seen are (nearly) the whole track.
        let mut a = [0.0f32; EMBEDDING_DIM];
        let mut b = [0.0f32; EMBEDDING_DIM];
        a[..100].fill(1.0);
        b[100..].fill(1.0);
        s.reset(100);
        assert!((0..16).all(|k| !s.add(if k % 2 == 0 { &a } else { &b })));
        s.reset(8);
        assert_eq!(
            (0..8).position(|k| s.add(if k % 2 == 0 { &a } else { &b })),
            Some(7)
        );
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
