//! Framing and spectra: the shared front end of the spectral descriptors.
//!
//! In: a stream of samples in blocks of any length. Out: for every full frame, a callback with
//! the frame's power spectrum (`N/2 + 1` bins, DC to Nyquist). The frame buffer, the window and
//! the FFT scratch are allocated once; nothing allocates per frame. FFTs are microfft's
//! fixed-size real transforms, which pack the Nyquist bin into the imaginary part of bin 0:
//! it is unpacked here so no caller can mistake it for DC phase.

use microfft::Complex32;

/// Collects samples into overlapping frames of `size`, advancing by `hop`.
pub struct Framer {
    frame: Vec<f32>,
    fill: usize,
    hop: usize,
}

impl Framer {
    pub fn new(size: usize, hop: usize) -> Self {
        assert!(hop > 0 && hop <= size, "hop must be in 1..=size");
        Framer {
            frame: vec![0.0; size],
            fill: 0,
            hop,
        }
    }

    pub fn reset(&mut self) {
        self.fill = 0;
    }

    pub fn push(&mut self, mut input: &[f32], mut on_frame: impl FnMut(&[f32])) {
        let size = self.frame.len();
        while !input.is_empty() {
            let take = (size - self.fill).min(input.len());
            self.frame[self.fill..self.fill + take].copy_from_slice(&input[..take]);
            self.fill += take;
            input = &input[take..];
            if self.fill == size {
                on_frame(&self.frame);
                self.frame.copy_within(self.hop.., 0);
                self.fill = size - self.hop;
            }
        }
    }
}

/// A windowed real FFT of one fixed size, producing power spectra.
pub struct PowerSpectrum {
    window: Vec<f32>,
    scratch: Vec<f32>,
    power: Vec<f32>,
}

impl PowerSpectrum {
    /// `size` must be one of the microfft sizes compiled in (512, 1024, 2048, 4096).
    pub fn new(size: usize) -> Self {
        assert!(
            matches!(size, 512 | 1024 | 2048 | 4096),
            "unsupported FFT size {size}"
        );
        // Periodic Hann: the window whose overlapped copies sum to a constant.
        let window = (0..size)
            .map(|i| {
                let x = std::f32::consts::PI * i as f32 / size as f32;
                x.sin() * x.sin()
            })
            .collect();
        PowerSpectrum {
            window,
            scratch: vec![0.0; size],
            power: vec![0.0; size / 2 + 1],
        }
    }

    pub fn size(&self) -> usize {
        self.window.len()
    }

    /// |X[k]|² for k in 0..=N/2 of the windowed frame.
    pub fn compute(&mut self, frame: &[f32]) -> &[f32] {
        for ((s, &x), &w) in self.scratch.iter_mut().zip(frame).zip(&self.window) {
            *s = x * w;
        }
        let half = self.window.len() / 2;
        let spectrum = rfft(&mut self.scratch);
        let nyquist = spectrum[0].im;
        spectrum[0].im = 0.0;
        for (p, c) in self.power.iter_mut().zip(spectrum.iter()) {
            *p = c.re * c.re + c.im * c.im;
        }
        self.power[half] = nyquist * nyquist;
        &self.power
    }
}

fn rfft(buf: &mut [f32]) -> &mut [Complex32] {
    // The conversions cannot fail: the length was checked in `PowerSpectrum::new`.
    match buf.len() {
        512 => microfft::real::rfft_512(buf.try_into().expect("len 512")),
        1024 => microfft::real::rfft_1024(buf.try_into().expect("len 1024")),
        2048 => microfft::real::rfft_2048(buf.try_into().expect("len 2048")),
        4096 => microfft::real::rfft_4096(buf.try_into().expect("len 4096")),
        n => unreachable!("FFT size {n} rejected at construction"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framer_overlaps_and_carries_across_pushes() {
        let mut f = Framer::new(4, 2);
        let mut frames = Vec::new();
        let data: Vec<f32> = (0..10).map(|i| i as f32).collect();
        f.push(&data[..3], |fr| frames.push(fr.to_vec()));
        f.push(&data[3..], |fr| frames.push(fr.to_vec()));
        assert_eq!(frames.len(), 4);
        assert_eq!(frames[0], vec![0.0, 1.0, 2.0, 3.0]);
        assert_eq!(frames[1], vec![2.0, 3.0, 4.0, 5.0]);
        assert_eq!(frames[3], vec![6.0, 7.0, 8.0, 9.0]);
    }

    #[test]
    fn sine_lands_in_its_bin_and_nyquist_is_unpacked() {
        let n = 1024;
        let mut ps = PowerSpectrum::new(n);
        let bin = 37;
        let frame: Vec<f32> = (0..n)
            .map(|i| (2.0 * std::f32::consts::PI * bin as f32 * i as f32 / n as f32).cos())
            .collect();
        let p = ps.compute(&frame).to_vec();
        let peak = (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
        assert_eq!(peak, bin);
        assert!(p[0] < 1e-6 * p[bin], "DC must not hold the Nyquist term");
        let alt: Vec<f32> = (0..n)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let p = ps.compute(&alt).to_vec();
        assert!(p[n / 2] > 1000.0 && p[0] < 1e-3);
    }
}
