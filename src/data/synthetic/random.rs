//! The random streams and the distributions the scenes draw from.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Vec3;
use crate::data::Split;

/// One independent stream per sample, so that sample `i` does not depend on how many
/// random numbers earlier samples consumed (re-draws included).
pub fn sample_rng(seed: u64, split: Split, bench_salt: u64, index: usize) -> ChaCha8Rng {
    let split_salt = match split {
        Split::Train => 0x7472_6169_6e00_0000, // "train"
        Split::Eval => 0x6576_616c_0000_0000,  // "eval"
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ split_salt ^ bench_salt);
    rng.set_stream(index as u64);
    rng
}

pub fn uniform_deg(rng: &mut impl Rng, range_deg: (f64, f64)) -> f64 {
    rng.random_range(range_deg.0..range_deg.1).to_radians()
}

/// Standard normal draw (Box-Muller); avoids a dependency for the one distribution we need.
pub fn gaussian(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

pub fn gaussian3(rng: &mut impl Rng) -> Vec3 {
    Vec3::new(gaussian(rng), gaussian(rng), gaussian(rng))
}
