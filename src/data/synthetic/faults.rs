//! Reconstruction faults on geometry tokens (`data.geometry_dropout`,
//! `data.geometry_outliers`): what a real 3D model gets wrong beyond the per-point
//! noise `data.geometry_noise` already adds, so that geometry can mislead.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::Enclosure;
use crate::config::DataConfig;

/// How far an outlier's extra channels (the dynamic tokens' displacement since the last
/// frame) may stray, in metres: about a fast object's motion between two of four frames.
const OUTLIER_EXTRA: f64 = 0.6;

/// Applies the faults to finished geometry tokens laid out as `[x, y, z, flag, extra..]`
/// per token. Each token is, independently, dropped with probability `geometry_dropout`
/// (every channel 0: no point, as where a reconstruction has none) or else made an
/// outlier with probability `geometry_outliers` (its point uniform in `bounds`, its extra
/// channels uniform in +-0.6 m; the object flag kept, as a reconstruction does not know
/// its point is wrong). Draws nothing when both are 0, so such a config generates what
/// it did before these keys existed.
pub fn corrupt_geometry(tokens: &mut [f32], channels: usize, cfg: &DataConfig, bounds: &Enclosure, rng: &mut ChaCha8Rng) {
    let (dropout, outliers) = (cfg.geometry_dropout, cfg.geometry_outliers);
    if dropout <= 0.0 && outliers <= 0.0 {
        return;
    }
    for token in tokens.chunks_exact_mut(channels) {
        if rng.random::<f64>() < dropout {
            token.fill(0.0);
        } else if rng.random::<f64>() < outliers {
            token[0] = rng.random_range(bounds.min.x..=bounds.max.x) as f32;
            token[1] = rng.random_range(bounds.min.y..=bounds.max.y) as f32;
            token[2] = rng.random_range(bounds.min.z..=bounds.max.z) as f32;
            for extra in &mut token[4..] {
                *extra = rng.random_range(-OUTLIER_EXTRA..=OUTLIER_EXTRA) as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Bench, DataConfig};
    use crate::data::{generate, Dataset, Split};

    fn split(bench: Bench, dropout: f64, outliers: f64) -> Dataset {
        let frames = if bench == Bench::Dynamic { 3 } else { 1 };
        let cfg = DataConfig {
            bench,
            frames,
            eval_size: 300,
            geometry_dropout: dropout,
            geometry_outliers: outliers,
            ..Default::default()
        };
        generate(&cfg, Split::Eval)
    }

    /// Per benchmark: (tokens dropped, tokens changed) over the split, and whether
    /// everything but the geometry is what the fault-free split holds.
    fn faults(bench: Bench, dropout: f64, outliers: f64) -> (f64, f64, bool) {
        let (clean, faulty) = (split(bench, 0.0, 0.0), split(bench, dropout, outliers));
        let c = clean.geometry_channels;
        let (mut total, mut dropped, mut changed) = (0usize, 0usize, 0usize);
        let mut rest_same = true;
        for (a, b) in clean.samples.iter().zip(&faulty.samples) {
            rest_same &= a.vision == b.vision && a.prompt == b.prompt && a.answer == b.answer && a.grounding == b.grounding;
            for (ta, tb) in a.geometry.chunks(c).zip(b.geometry.chunks(c)) {
                total += 1;
                dropped += (tb.iter().all(|&x| x == 0.0) && ta.iter().any(|&x| x != 0.0)) as usize;
                changed += (ta != tb) as usize;
            }
        }
        (dropped as f64 / total as f64, changed as f64 / total as f64, rest_same)
    }

    #[test]
    fn faults_hit_the_share_of_tokens_asked_and_nothing_else() {
        for bench in [Bench::Static, Bench::Dynamic] {
            let (dropped, changed, rest_same) = faults(bench, 0.0, 0.0);
            assert_eq!((dropped, changed, rest_same), (0.0, 0.0, true), "{bench:?}: no faults asked");
            let (dropped, changed, rest_same) = faults(bench, 0.3, 0.0);
            assert!((dropped - 0.3).abs() < 0.03 && (changed - dropped).abs() < 1e-9, "{bench:?}: {dropped} {changed}");
            assert!(rest_same, "{bench:?}");
            // Outliers hit the tokens not dropped: 0.5 of 0.8 here.
            let (dropped, changed, rest_same) = faults(bench, 0.2, 0.5);
            assert!((dropped - 0.2).abs() < 0.03 && (changed - 0.6).abs() < 0.03, "{bench:?}: {dropped} {changed}");
            assert!(rest_same, "{bench:?}");
        }
    }

    #[test]
    fn outliers_stay_in_the_scene_and_keep_the_object_flag() {
        let clean = split(Bench::Dynamic, 0.0, 0.0);
        let wrong = split(Bench::Dynamic, 0.0, 1.0);
        for (a, b) in clean.samples.iter().zip(&wrong.samples) {
            let c = wrong.geometry_channels;
            for (ta, tb) in a.geometry.chunks(c).zip(b.geometry.chunks(c)) {
                assert_eq!(ta[3], tb[3]);
                let hall = &crate::data::dynamic_scenes::HALL;
                assert!((hall.min.x as f32..=hall.max.x as f32).contains(&tb[0]), "{tb:?}");
                assert!((hall.min.y as f32..=hall.max.y as f32).contains(&tb[1]), "{tb:?}");
                assert!(tb[4..].iter().all(|&d| f64::from(d.abs()) <= super::OUTLIER_EXTRA + 1e-6), "{tb:?}");
            }
        }
    }
}
