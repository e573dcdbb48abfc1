//! Numeric kernels shared by the audio front end, the features and the embedding: a leaf
//! module that uses nothing else of playlista.
//!
//! In and out: slices of samples or coefficients; nothing here allocates.

/// A dot product over the common length of `a` and `b`, written with eight independent sums
/// so that it vectorises (the resamplers' FIR taps, the mel resampler's polyphase filters).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    let tail = n / 8 * 8;
    let mut s = acc.iter().sum::<f32>();
    for (x, y) in a[tail..].iter().zip(&b[tail..]) {
        s += x * y;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::dot;

    #[test]
    fn dot_matches_the_plain_sum_at_every_length() {
        for n in 0..40 {
            let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 3.0).collect();
            let b: Vec<f32> = (0..n).map(|i| 1.0 / (i as f32 + 1.0)).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!(
                (dot(&a, &b) - plain).abs() <= 1e-4 * plain.abs().max(1.0),
                "n = {n}"
            );
        }
        assert_eq!(dot(&[1.0, 2.0, 3.0], &[4.0, 5.0]), 14.0);
    }
}
