//! Danceability by detrended fluctuation analysis (Streich & Herrera 2005, as in Essentia).
//!
//! In: mono samples at the analysis rate. Kept: the standard deviation of every 10 ms block
//! (100 floats a second). Out: danceability, the inverse of the mean DFA exponent over time
//! scales from 310 ms to 8.8 s. Range: 0 to about 3; steady, strongly periodic music
//! (four-on-the-floor) scores high (~1.5-3), rubato and ambient music low (< 1). Same
//! definition and parameters as Essentia's `Danceability`, so values are comparable.
//!
//! Residuals of the linear fit in each window are computed from sliding sums, so a time scale
//! costs O(n) whatever its width, instead of O(n·tau).

const MIN_TAU_MS: f64 = 310.0;
const MAX_TAU_MS: f64 = 8800.0;
const TAU_MULTIPLIER: f64 = 1.1;

pub struct Danceability {
    block: usize,
    fill: usize,
    sum: f64,
    sum_sq: f64,
    /// Per-10 ms block standard deviations; integrated in place at the end. f32 halves the
    /// memory of long tracks; sums over it are taken in f64.
    series: Vec<f32>,
    taus: heapless::Vec<usize, 64>,
}

impl Danceability {
    pub fn new(rate: u32) -> Self {
        let mut taus = heapless::Vec::new();
        let mut tau = MIN_TAU_MS;
        while tau <= MAX_TAU_MS {
            let _ = taus.push((tau / 10.0) as usize);
            tau *= TAU_MULTIPLIER;
        }
        Danceability {
            block: (0.01 * rate as f64) as usize,
            fill: 0,
            sum: 0.0,
            sum_sq: 0.0,
            series: Vec::with_capacity(120_000),
            taus,
        }
    }

    pub fn reset(&mut self) {
        self.fill = 0;
        self.sum = 0.0;
        self.sum_sq = 0.0;
        self.series.clear();
    }

    pub fn push(&mut self, samples: &[f32]) {
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (self.block - self.fill).min(rest.len());
            // Eight partial sums, so that the loop vectorises.
            let (mut s, mut q) = ([0.0f32; 8], [0.0f32; 8]);
            let chunk = &rest[..take];
            for c in chunk.chunks_exact(8) {
                for j in 0..8 {
                    s[j] += c[j];
                    q[j] += c[j] * c[j];
                }
            }
            for &v in chunk.chunks_exact(8).remainder() {
                s[0] += v;
                q[0] += v * v;
            }
            self.sum += s.iter().sum::<f32>() as f64;
            self.sum_sq += q.iter().sum::<f32>() as f64;
            self.fill += take;
            rest = &rest[take..];
            if self.fill == self.block {
                let n = self.block as f64;
                let var = ((self.sum_sq - self.sum * self.sum / n) / (n - 1.0)).max(0.0);
                self.series.push(var.sqrt() as f32);
                self.fill = 0;
                self.sum = 0.0;
                self.sum_sq = 0.0;
            }
        }
    }

    /// `None` when the track is too short for two time scales or has no fluctuation at all.
    pub fn finish(&mut self) -> Option<f64> {
        let n = self.series.len();
        if n < 2 {
            return None;
        }
        let mean = self.series.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        let mut acc = 0.0f64;
        for v in self.series.iter_mut() {
            acc += *v as f64 - mean;
            *v = acc as f32;
        }
        let mut prev: Option<(usize, f64)> = None;
        let (mut total, mut count) = (0.0, 0usize);
        for &tau in &self.taus {
            if tau < 3 || n <= tau {
                break;
            }
            let f = fluctuation(&self.series, tau);
            if let Some((prev_tau, prev_f)) = prev {
                if f <= 0.0 || prev_f <= 0.0 {
                    return None;
                }
                total +=
                    (f / prev_f).log10() / ((tau as f64 + 3.0) / (prev_tau as f64 + 3.0)).log10();
                count += 1;
            }
            prev = Some((tau, f));
        }
        if count == 0 {
            return None;
        }
        let alpha = total / count as f64;
        Some(if alpha > 0.0 { 1.0 / alpha } else { 0.0 })
    }
}

/// Root mean residual of a least-squares line over windows of `tau` values starting every
/// `max(tau/50, 1)` values (Essentia's stride).
fn fluctuation(y: &[f32], tau: usize) -> f64 {
    let n = y.len();
    let jump = (tau / 50).max(1);
    let t = tau as f64;
    // x = 0..tau-1 within each window: its sums are fixed.
    let sx = t * (t - 1.0) / 2.0;
    let sxx = t * (t - 1.0) * (2.0 * t - 1.0) / 6.0;
    let denom = sxx - sx * sx / t;
    // Sliding sums over the window [start, start + tau): Σy, Σy², Σ j·y (j = absolute index).
    let (mut sy, mut syy, mut sjy) = (0.0, 0.0, 0.0);
    for (j, &v) in y[..tau].iter().enumerate() {
        let v = v as f64;
        sy += v;
        syy += v * v;
        sjy += j as f64 * v;
    }
    let mut start = 0usize;
    let mut total = 0.0;
    let mut windows = 0usize;
    while start < n - tau {
        let sxy = sjy - start as f64 * sy; // Σ (j - start)·y
        let cov = sxy - sx * sy / t;
        let residual = (syy - sy * sy / t - cov * cov / denom).max(0.0);
        total += residual;
        windows += 1;
        // Slide by `jump`.
        for _ in 0..jump {
            if start + tau >= n {
                break;
            }
            let out = y[start] as f64;
            let inn = y[start + tau] as f64;
            sy += inn - out;
            syy += inn * inn - out * out;
            sjy += (start + tau) as f64 * inn - start as f64 * out;
            start += 1;
        }
    }
    let _ = windows;
    (total / ((n - tau) as f64 / jump as f64)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(samples: &[f32]) -> Option<f64> {
        let mut d = Danceability::new(22_050);
        for b in samples.chunks(1000) {
            d.push(b);
        }
        d.finish()
    }

    #[test]
    fn steady_beat_outdances_noise_bursts() {
        let rate = 22_050usize;
        let secs = 30;
        // A click track at 120 BPM...
        let mut beat = vec![0.0f32; rate * secs];
        for b in 0..secs * 2 {
            let at = b * rate / 2;
            for i in 0..400 {
                beat[at + i] =
                    0.8 * (-(i as f32) / 80.0).exp() * if i % 2 == 0 { 1.0 } else { -1.0 };
            }
        }
        // ... against bursts at random times (a fixed LCG, no flakiness).
        let mut rand = vec![0.0f32; rate * secs];
        let mut state = 12345u64;
        for _ in 0..secs * 2 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let at = (state >> 33) as usize % (rate * secs - 500);
            for i in 0..400 {
                rand[at + i] +=
                    0.8 * (-(i as f32) / 80.0).exp() * if i % 2 == 0 { 1.0 } else { -1.0 };
            }
        }
        let d_beat = run(&beat).unwrap();
        let d_rand = run(&rand).unwrap();
        assert!(d_beat > d_rand, "beat {d_beat} vs random {d_rand}");
        assert!((0.0..4.0).contains(&d_beat));
    }

    #[test]
    fn too_short_is_none() {
        assert_eq!(run(&vec![0.1f32; 100]), None);
    }
}
