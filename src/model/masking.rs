//! Geometry-Unleashing Masking (Sec. 3.2, Eqs. 5-10): hide vision tokens during
//! training so the model has to consult the geometry stream.

use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;
use rand::seq::index::sample;
use rand::Rng;

/// K = ceil(gamma * N), the size of the mask set M (Eqs. 7 and 10).
pub fn mask_size(gamma: f64, n: usize) -> usize {
    // The epsilon keeps e.g. 0.6 * 10 = 6.000000000000001 from rounding up to 7.
    ((gamma * n as f64) - 1e-9).ceil().clamp(0.0, n as f64) as usize // Eqs. 7, 10: K
}

/// delta ~ Bernoulli(beta) of Eq. 6: whether masking is enabled for a sample.
pub fn sample_delta(beta: f64, rng: &mut impl Rng) -> bool {
    rng.random_bool(beta.clamp(0.0, 1.0)) // Eq. 6: delta
}

/// Eq. 7: M = Rand(N, K). Returns a 0/1 vector with exactly K ones, uniformly placed.
pub fn sample_random_set(n: usize, gamma: f64, rng: &mut impl Rng) -> Vec<f32> {
    let mut set = vec![0.0; n];
    // Eq. 7
    for i in sample(rng, n, mask_size(gamma, n)) {
        set[i] = 1.0;
    }
    set
}

/// Eq. 9: the relevance score s of each geometry position, from CrossAttn2's attention
/// probabilities `A` of shape `[B, h, L_B, N]`: u_j = mean over heads and bottleneck
/// tokens of A_{k,i,j}, then s = (u - min u) / (max u - min u + eps). Returns `[B, N]` in [0, 1].
pub fn relevance<B: Backend>(attention: Tensor<B, 4>) -> Tensor<B, 2> {
    let [b, h, l, n] = attention.dims();
    let u = attention.swap_dims(1, 3).reshape([b, n, h * l]).mean_dim(2).reshape([b, n]); // Eq. 9: u
    let min = u.clone().min_dim(1);
    let max = u.clone().max_dim(1);
    (u - min.clone()) / (max - min + 1e-6) // Eq. 9: s
}

/// Eq. 10: M = TopK(s, K). Returns `[B, N]` with ones at the K highest-scoring positions.
pub fn topk_set<B: Backend>(scores: Tensor<B, 2>, gamma: f64) -> Tensor<B, 2> {
    let [b, n] = scores.dims();
    let k = mask_size(gamma, n);
    let zeros = Tensor::<B, 2>::zeros([b, n], &scores.device());
    if k == 0 {
        return zeros;
    }
    let (_, idx) = scores.detach().topk_with_indices(k, 1); // Eq. 10
    let ones = Tensor::<B, 2>::ones([b, k], &idx.device());
    zeros.scatter(1, idx, ones, IndexingUpdateOp::Add)
}

/// Eqs. 5-6: m_j = 0 if delta = 1 and j in M, else 1; returns (F~_V = m * F_V, m).
/// `set` is `[B, N]` (1 = in M), `delta` is `[B]` (1 = masking enabled).
pub fn apply<B: Backend>(vision: Tensor<B, 3>, set: Tensor<B, 2>, delta: Tensor<B, 1>) -> (Tensor<B, 3>, Tensor<B, 2>) {
    let m = Tensor::ones_like(&set) - set * delta.unsqueeze_dim::<2>(1); // Eq. 6: m
    let masked = vision * m.clone().unsqueeze_dim::<3>(2); // Eq. 5
    (masked, m)
}
