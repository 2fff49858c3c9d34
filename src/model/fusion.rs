//! The fusion modules of Sec. 3.1 and 3.3: alignment MLP, cross-attention,
//! the QFormer branch and the Geometry-Guided gate.

use burn::module::{Initializer, Param};
use burn::nn::attention::{MhaInput, MultiHeadAttention, MultiHeadAttentionConfig};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{gelu, sigmoid};
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

/// Token layout of a stream: T frames of an H x W grid, tokens ordered (t, h, w).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    pub frames: usize,
    pub h: usize,
    pub w: usize,
}

impl Grid {
    pub fn tokens(&self) -> usize {
        self.frames * self.h * self.w
    }
}

/// Eq. 11's Interp: resizes geometry tokens from the geometry grid to the vision
/// grid per frame with bilinear interpolation. Applied to the frozen encoder's
/// output, which carries no gradient, so no backward through the resize is needed.
pub fn resize_tokens<B: Backend>(tokens: Tensor<B, 3>, from: Grid, to: Grid) -> Tensor<B, 3> {
    if from.h == to.h && from.w == to.w {
        return tokens;
    }
    let [b, _, c] = tokens.dims();
    let maps = tokens
        .reshape([b * from.frames, from.h, from.w, c])
        .permute([0, 3, 1, 2]);
    let opts = InterpolateOptions::new(InterpolateMode::Bilinear).with_align_corners(false);
    interpolate(maps, [to.h, to.w], opts)
        .permute([0, 2, 3, 1])
        .reshape([b, to.frames * to.h * to.w, c])
}

/// MLP(Reshape(F_G)) of Eqs. 1, 11 and 13: resize geometry tokens to the vision
/// grid, then project C_G channels to the model width C.
#[derive(Module, Debug)]
pub struct AlignMlp<B: Backend> {
    fc1: Linear<B>,
    fc2: Linear<B>,
}

impl<B: Backend> AlignMlp<B> {
    pub fn new(c_in: usize, hidden: usize, c_out: usize, device: &B::Device) -> Self {
        AlignMlp {
            fc1: LinearConfig::new(c_in, hidden).init(device),
            fc2: LinearConfig::new(hidden, c_out).init(device),
        }
    }

    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.fc2.forward(gelu(self.fc1.forward(x)))
    }
}

/// CrossAttn(Q, KV) = LN(Q + MHA(Q, KV, KV)), returning the attention
/// probabilities `[B, h, L_q, L_kv]` too (Eq. 8 needs them).
#[derive(Module, Debug)]
pub struct CrossAttention<B: Backend> {
    mha: MultiHeadAttention<B>,
    norm: LayerNorm<B>,
}

impl<B: Backend> CrossAttention<B> {
    pub fn new(width: usize, heads: usize, device: &B::Device) -> Self {
        CrossAttention {
            mha: MultiHeadAttentionConfig::new(width, heads).with_dropout(0.0).init(device),
            norm: LayerNormConfig::new(width).init(device),
        }
    }

    /// `kv_pad` marks padded key positions (true = ignore).
    pub fn forward(
        &self,
        query: Tensor<B, 3>,
        kv: Tensor<B, 3>,
        kv_pad: Option<Tensor<B, 2, Bool>>,
    ) -> (Tensor<B, 3>, Tensor<B, 4>) {
        let mut input = MhaInput::new(query.clone(), kv.clone(), kv);
        if let Some(pad) = kv_pad {
            input = input.mask_pad(pad);
        }
        let out = self.mha.forward(input);
        (self.norm.forward(query + out.context), out.weights)
    }
}

/// The QFormer branch, Eqs. 2-3 / 8: learnable bottleneck tokens B (L_B x C)
/// read the prompt (F_B = CrossAttn1(B, F_P)), then query the aligned geometry
/// tokens (Z_G, A = CrossAttn2(F_B, F^_G)).
#[derive(Module, Debug)]
pub struct QFormer<B: Backend> {
    pub bottleneck: Param<Tensor<B, 2>>,
    cross1: CrossAttention<B>,
    cross2: CrossAttention<B>,
}

/// What the QFormer branch produces.
pub struct QFormerOutput<B: Backend> {
    /// Z_G, `[B, L_B, C]`.
    pub z: Tensor<B, 3>,
    /// A, CrossAttn2's attention probabilities `[B, h, L_B, N]`.
    pub attention: Tensor<B, 4>,
}

impl<B: Backend> QFormer<B> {
    pub fn new(len: usize, width: usize, heads: usize, device: &B::Device) -> Self {
        QFormer {
            bottleneck: Initializer::Normal { mean: 0.0, std: 0.02 }.init([len, width], device),
            cross1: CrossAttention::new(width, heads, device),
            cross2: CrossAttention::new(width, heads, device),
        }
    }

    /// `prompt` F_P `[B, L_P, C]` with its padding mask, `geometry` F^_G `[B, N, C]`.
    pub fn forward(
        &self,
        prompt: Tensor<B, 3>,
        prompt_pad: Tensor<B, 2, Bool>,
        geometry: Tensor<B, 3>,
    ) -> QFormerOutput<B> {
        let [batch, _, _] = prompt.dims();
        let [len, width] = self.bottleneck.dims();
        let queries = self.bottleneck.val().unsqueeze_dim::<3>(0).expand([batch, len, width]);
        let (f_b, _) = self.cross1.forward(queries, prompt, Some(prompt_pad));
        let (z, attention) = self.cross2.forward(f_b, geometry, None);
        QFormerOutput { z, attention }
    }
}

/// Geometry-Guided Fusion's gate, Eqs. 12 and 15:
/// alpha = sigmoid(W_g [LN_v(F~_V) || LN_g(F~_G)] + b_g), F = alpha * V + (1 - alpha) * G,
/// token- and channel-wise.
#[derive(Module, Debug)]
pub struct GatedFusion<B: Backend> {
    pub norm_v: LayerNorm<B>,
    pub norm_g: LayerNorm<B>,
    /// W_g and b_g.
    pub gate: Linear<B>,
}

impl<B: Backend> GatedFusion<B> {
    pub fn new(width: usize, device: &B::Device) -> Self {
        GatedFusion {
            norm_v: LayerNormConfig::new(width).init(device),
            norm_g: LayerNormConfig::new(width).init(device),
            gate: LinearConfig::new(2 * width, width).init(device),
        }
    }

    /// Returns (F, alpha), both `[B, N, C]`.
    pub fn forward(&self, vision: Tensor<B, 3>, geometry: Tensor<B, 3>) -> (Tensor<B, 3>, Tensor<B, 3>) {
        let v = self.norm_v.forward(vision);
        let g = self.norm_g.forward(geometry);
        let alpha = sigmoid(self.gate.forward(Tensor::cat(vec![v.clone(), g.clone()], 2)));
        let fused = alpha.clone() * v + (Tensor::ones_like(&alpha) - alpha.clone()) * g;
        (fused, alpha)
    }
}
