//! An analytic count of the floating-point operations of one forward pass, so
//! benchmarks can report achieved GFLOP/s. Counts multiply-adds as two FLOPs and
//! covers matrix products only (norms, activations and softmax are a few percent).

use crate::config::{FusionKind, GeometryKind, MaskKind, ModelConfig};

use super::ModelDims;

/// FLOPs of `tokens` rows through a linear layer `d_in -> d_out`.
fn linear(tokens: usize, d_in: usize, d_out: usize) -> u64 {
    2 * (tokens * d_in * d_out) as u64
}

/// Cross- or self-attention of `q` queries over `kv` keys at width `c`:
/// the four projections, the scores and the weighted sum.
fn attention(q: usize, kv: usize, c: usize) -> u64 {
    linear(q, c, c) * 2 + linear(kv, c, c) * 2 + 2 * 2 * (q * kv * c) as u64
}

/// Forward FLOPs for one sample of a model built from `config` and `dims`.
pub fn forward_flops(config: &ModelConfig, dims: &ModelDims) -> u64 {
    let (depth, c, _) = config.backbone.resolved();
    let hidden = config.mlp_ratio.max(1) * c;
    let (n_v, n_g, l_p, l_b) = (dims.vision.tokens(), dims.geometry.tokens(), dims.prompt_len, config.bottleneck_len);
    let uses_geometry = config.geometry != GeometryKind::None
        && (config.fusion != FusionKind::None || config.mask.kind == MaskKind::Topk);
    let c_g = super::encoded_geometry_channels(config, dims);
    let c_aligned = super::aligned_geometry_channels(config, dims);
    let mut flops = linear(n_v, dims.vision_channels, c);
    if uses_geometry {
        if matches!(config.geometry, GeometryKind::Vggt | GeometryKind::Pi3) {
            flops += linear(n_g, dims.geometry_channels, c_g) + linear(n_g, c_g, c_g);
        }
        flops += linear(n_v, c_aligned, hidden) + linear(n_v, hidden, c);
        if config.fusion.has_qformer() || config.mask.kind == MaskKind::Topk {
            flops += attention(l_b, l_p, c) + attention(l_b, n_v, c);
        }
    }
    let appended = match config.fusion {
        FusionKind::Qformer => {
            flops += linear(l_b, c, hidden) + linear(l_b, hidden, c);
            l_b
        }
        FusionKind::GatedQformer => {
            flops += attention(n_v, l_b, c) + linear(n_v, 2 * c, c);
            l_b
        }
        FusionKind::Gated => {
            flops += linear(n_v, 2 * c, c);
            0
        }
        // A sum (the controls: two LayerNorms and a weighted sum): no matrix product
        // beyond Eq. 1's MLP.
        FusionKind::None | FusionKind::Additive | FusionKind::AdditiveLn | FusionKind::GatedFixed => 0,
    };
    let seq = 1 + n_v + appended + l_p;
    flops += depth as u64 * (attention(seq, seq, c) + linear(seq, c, 4 * c) + linear(seq, 4 * c, c));
    flops
}

/// FLOPs of one training step on `batch` samples: the backward pass costs about
/// twice the forward pass.
pub fn train_step_flops(config: &ModelConfig, dims: &ModelDims, batch: usize) -> u64 {
    3 * forward_flops(config, dims) * batch as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn counts_grow_with_the_components_and_match_a_hand_count() {
        let mut c = Config::default();
        c.model.geometry = GeometryKind::None;
        c.model.fusion = FusionKind::None;
        c.model.mask.kind = MaskKind::None;
        let dims = crate::data::model_dims(&c.data).unwrap();
        let bare = forward_flops(&c.model, &dims);
        // Hand count: tokenizer + 2 layers of (attention + FFN) over 1 + 32 + 24 tokens at C = 32.
        let (n, w, l) = (32u64, 32u64, 57u64);
        let layer = 4 * 2 * l * w * w + 4 * l * l * w + 2 * 2 * l * w * 4 * w;
        assert_eq!(bare, 2 * n * dims.vision_channels as u64 * w + 2 * layer);
        c.model.geometry = GeometryKind::Vggt;
        c.model.fusion = FusionKind::Additive;
        let additive = forward_flops(&c.model, &dims);
        c.model.fusion = FusionKind::Gated;
        let gated = forward_flops(&c.model, &dims);
        assert!(bare < additive && additive < gated);
        assert_eq!(gated - additive, 2 * n * 2 * w * w);
    }
}
