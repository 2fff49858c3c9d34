//! Learning-rate schedules of the paper's recipes: linear warmup, then cosine
//! decay to 0 (static) or constant (dynamic).

use crate::config::Schedule as Kind;

#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    kind: Kind,
    peak: f64,
    warmup: usize,
    total: usize,
}

impl Schedule {
    pub fn new(kind: Kind, peak: f64, warmup: usize, total: usize) -> Schedule {
        Schedule { kind, peak, warmup, total }
    }

    /// Learning rate for 0-based `step`.
    pub fn lr(&self, step: usize) -> f64 {
        if step < self.warmup {
            return self.peak * (step + 1) as f64 / self.warmup as f64;
        }
        match self.kind {
            Kind::Constant => self.peak,
            Kind::Cosine => {
                let span = self.total.saturating_sub(self.warmup).max(1) as f64;
                let progress = ((step - self.warmup) as f64 / span).min(1.0);
                0.5 * self.peak * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_is_linear_then_cosine_reaches_zero() {
        let s = Schedule::new(Kind::Cosine, 1.0, 4, 14);
        assert!((s.lr(0) - 0.25).abs() < 1e-12);
        assert!((s.lr(3) - 1.0).abs() < 1e-12);
        assert!((s.lr(4) - 1.0).abs() < 1e-12);
        assert!((s.lr(9) - 0.5).abs() < 1e-12);
        assert!(s.lr(14).abs() < 1e-12);
        assert!(s.lr(8) > s.lr(9) && s.lr(9) > s.lr(10));
    }

    #[test]
    fn constant_holds_peak_after_warmup() {
        let s = Schedule::new(Kind::Constant, 2e-7, 50, 1000);
        assert!((s.lr(24) - 1e-7).abs() < 1e-20);
        assert_eq!(s.lr(50), 2e-7);
        assert_eq!(s.lr(999), 2e-7);
    }
}
