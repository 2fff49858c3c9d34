//! The fusion module F(.) of Fig. 2 ([`Fusion`], one variant per fusion the paper
//! compares) and its parts from Sec. 3.1 and 3.3: alignment MLP, cross-attention,
//! the QFormer branch and the Geometry-Guided gate.

use std::marker::PhantomData;

use burn::module::{Initializer, Param};
use burn::nn::attention::{MhaInput, MultiHeadAttention, MultiHeadAttentionConfig};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{gelu, sigmoid};
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

use super::masking;
use crate::config::{FusionKind, GeometryKind, MaskKind, ModelConfig};

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
    // Eq. 11
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
        let (f_b, _) = self.cross1.forward(queries, prompt, Some(prompt_pad)); // Eq. 2
        let (z, attention) = self.cross2.forward(f_b, geometry, None); // Eqs. 3, 8
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
        let alpha = sigmoid(self.gate.forward(Tensor::cat(vec![v.clone(), g.clone()], 2))); // Eq. 12
        let fused = alpha.clone() * v + (Tensor::ones_like(&alpha) - alpha.clone()) * g; // Eq. 15
        (fused, alpha)
    }
}

/// The fusion module F(.) of Fig. 2, with the QFormer branch top-k masking reads its
/// relevance from (Eqs. 8-10). One variant per pairing of `model.fusion` and top-k
/// masking that config validation accepts, so no model holds a part it cannot use.
/// Within a variant the parts come in the order the forward pass uses them, which is
/// also the order a seeded run draws their initial weights in.
#[derive(Module, Debug)]
pub enum Fusion<B: Backend> {
    /// `fusion = "none"` without top-k masking: the backbone sees vision tokens alone.
    None(PhantomData<B>),
    /// `fusion = "none"` with top-k masking: the QFormer branch only picks the tokens to mask.
    TopkOnly(QformerBranch<B>),
    /// F = F_V + MLP(Reshape(F_G)), Eq. 1.
    Additive(AlignMlp<B>),
    /// F = [F_V, MLP(Z_G)], Eqs. 2-4.
    Qformer(QformerConcat<B>),
    /// Geometry-Guided Fusion of static reasoning, Eqs. 12, 13, 15.
    Gated(GatedGeometry<B>),
    /// Geometry-Guided Fusion of dynamic reasoning, Eqs. 14, 12, 15, then [F, Z_G].
    GatedQformer(GatedQformer<B>),
    /// Controls for Eq. 12 (not in the paper): its LayerNorms with a constant gate.
    NormedSum(NormedSum<B>),
}

/// MLP(Reshape(F_G)) feeding the QFormer branch: F^'_G and its Z_G, A (Eqs. 2, 8, 11).
#[derive(Module, Debug)]
pub struct QformerBranch<B: Backend> {
    pub align: AlignMlp<B>,
    pub qformer: QFormer<B>,
}

/// QFormer fusion, Eq. 4.
#[derive(Module, Debug)]
pub struct QformerConcat<B: Backend> {
    pub branch: QformerBranch<B>,
    /// MLP(Z_G).
    pub z_mlp: AlignMlp<B>,
}

/// Geometry-Guided Fusion with F~_G = MLP(Reshape(F_G)), Eq. 13.
#[derive(Module, Debug)]
pub struct GatedGeometry<B: Backend> {
    pub align: AlignMlp<B>,
    pub gate: GatedFusion<B>,
}

/// Geometry-Guided Fusion with F~_G = CrossAttn3(F^'_G, Z_G), Eq. 14.
#[derive(Module, Debug)]
pub struct GatedQformer<B: Backend> {
    pub branch: QformerBranch<B>,
    /// CrossAttn3.
    pub retrieve: CrossAttention<B>,
    pub gate: GatedFusion<B>,
}

/// Eq. 12's two LayerNorms without its learnt gate, to tell the gate from the
/// normalisation (`fusion = "additive_ln"`: F = LN_v(F~_V) + LN_g(F~_G); `"gated_fixed"`:
/// F = a LN_v(F~_V) + (1 - a) LN_g(F~_G) with the constant a = `model.gate_alpha`),
/// F~_G = MLP(Reshape(F_G)) as in Eq. 13.
#[derive(Module, Debug)]
pub struct NormedSum<B: Backend> {
    pub align: AlignMlp<B>,
    pub norm_v: LayerNorm<B>,
    pub norm_g: LayerNorm<B>,
    pub weight_v: f64,
    pub weight_g: f64,
}

/// What the fusion module hands the backbone, and what it weighed on the way.
pub struct Fused<B: Backend> {
    /// F `[B, N_V, C]`.
    pub tokens: Tensor<B, 3>,
    /// Tokens appended after F `[B, L_B, C]`: MLP(Z_G) (Eq. 4) or Z_G (Sec. 3.3).
    pub appended: Option<Tensor<B, 3>>,
    /// The gate alpha `[B, N_V, C]` (Eq. 12).
    pub alpha: Option<Tensor<B, 3>>,
    /// The relevance s `[B, N_V]` (Eq. 9).
    pub relevance: Option<Tensor<B, 2>>,
}

impl<B: Backend> Fused<B> {
    fn tokens(tokens: Tensor<B, 3>) -> Self {
        Fused { tokens, appended: None, alpha: None, relevance: None }
    }
}

impl<B: Backend> NormedSum<B> {
    fn new(align: AlignMlp<B>, width: usize, (weight_v, weight_g): (f64, f64), device: &B::Device) -> Self {
        let norm = || LayerNormConfig::new(width).init(device);
        NormedSum { align, norm_v: norm(), norm_g: norm(), weight_v, weight_g }
    }
}

impl<B: Backend> QformerBranch<B> {
    /// `geometry` F_G resized to the vision grid `[B, N_V, C_G]`; returns F^'_G
    /// `[B, N_V, C]`, the QFormer's output and the relevance s `[B, N_V]`.
    fn forward(
        &self,
        prompt: Tensor<B, 3>,
        prompt_pad: Tensor<B, 2, Bool>,
        geometry: Tensor<B, 3>,
    ) -> (Tensor<B, 3>, QFormerOutput<B>, Tensor<B, 2>) {
        let g = self.align.forward(geometry); // Eqs. 3, 11: F^'_G
        let q = self.qformer.forward(prompt, prompt_pad, g.clone());
        let s = masking::relevance(q.attention.clone()); // Eq. 9
        (g, q, s)
    }
}

impl<B: Backend> Fusion<B> {
    /// The variant `config` describes, `c_g` being the width of the geometry tokens the
    /// alignment MLPs read (C_G plus `model.geometry_cues`).
    ///
    /// # Panics
    /// On a pairing config validation rejects (fusion without geometry tokens,
    /// top-k masking without a QFormer branch).
    pub fn new(config: &ModelConfig, c_g: usize, width: usize, device: &B::Device) -> Self {
        let topk = config.mask.kind == MaskKind::Topk;
        if config.geometry == GeometryKind::None {
            assert!(
                config.fusion == FusionKind::None && !topk,
                "model.fusion {:?} with model.mask.kind {:?} needs geometry tokens (config validation rejects model.geometry = none here)",
                config.fusion,
                config.mask.kind,
            );
            return Fusion::None(PhantomData);
        }
        let hidden = config.mlp_ratio.max(1) * width;
        let align = || AlignMlp::new(c_g, hidden, width, device);
        let branch = || QformerBranch {
            align: align(),
            qformer: QFormer::new(config.bottleneck_len, width, config.fusion_heads, device),
        };
        match (config.fusion, topk) {
            (FusionKind::None, false) => Fusion::None(PhantomData),
            (FusionKind::None, true) => Fusion::TopkOnly(branch()),
            (FusionKind::Additive, false) => Fusion::Additive(align()),
            (FusionKind::Qformer, _) => {
                Fusion::Qformer(QformerConcat { branch: branch(), z_mlp: AlignMlp::new(width, hidden, width, device) })
            }
            (FusionKind::Gated, false) => Fusion::Gated(GatedGeometry { align: align(), gate: GatedFusion::new(width, device) }),
            (FusionKind::GatedQformer, _) => Fusion::GatedQformer(GatedQformer {
                branch: branch(),
                retrieve: CrossAttention::new(width, config.fusion_heads, device),
                gate: GatedFusion::new(width, device),
            }),
            (FusionKind::AdditiveLn, false) => Fusion::NormedSum(NormedSum::new(align(), width, (1.0, 1.0), device)),
            (FusionKind::GatedFixed, false) => {
                let a = config.gate_alpha;
                Fusion::NormedSum(NormedSum::new(align(), width, (a, 1.0 - a), device))
            }
            (FusionKind::Additive | FusionKind::Gated | FusionKind::AdditiveLn | FusionKind::GatedFixed, true) => {
                panic!("top-k masking needs a QFormer branch, which model.fusion {:?} lacks (config validation rejects this)", config.fusion)
            }
        }
    }

    /// The Geometry-Guided gate, in the variants that have one.
    pub fn gate(&self) -> Option<&GatedFusion<B>> {
        match self {
            Fusion::Gated(m) => Some(&m.gate),
            Fusion::GatedQformer(m) => Some(&m.gate),
            _ => None,
        }
    }

    /// The QFormer branch, in the variants that have one.
    pub fn qformer(&self) -> Option<&QFormer<B>> {
        match self {
            Fusion::TopkOnly(b) | Fusion::Qformer(QformerConcat { branch: b, .. }) | Fusion::GatedQformer(GatedQformer { branch: b, .. }) => {
                Some(&b.qformer)
            }
            _ => None,
        }
    }

    /// F from the vision tokens F_V `[B, N_V, C]` and the prompt tokens F_P `[B, L_P, C]`.
    /// `geometry` yields F_G resized to the vision grid, `[B, N_V, C_G]`, and is called
    /// only by variants that read geometry. `mask` turns F_V into F~_V (Eq. 5), given
    /// the relevance s where a QFormer branch computes it; it is called once, before the
    /// vision tokens are fused.
    pub fn forward(
        &self,
        vision: Tensor<B, 3>,
        prompt: Tensor<B, 3>,
        prompt_pad: Tensor<B, 2, Bool>,
        geometry: impl FnOnce() -> Tensor<B, 3>,
        mask: impl FnOnce(Tensor<B, 3>, Option<Tensor<B, 2>>) -> Tensor<B, 3>,
    ) -> Fused<B> {
        match self {
            Fusion::None(_) => Fused::tokens(mask(vision, None)),
            Fusion::TopkOnly(branch) => {
                let (_, _, s) = branch.forward(prompt, prompt_pad, geometry());
                Fused { relevance: Some(s.clone()), ..Fused::tokens(mask(vision, Some(s))) }
            }
            Fusion::Additive(align) => {
                let g = align.forward(geometry()); // Eq. 11
                Fused::tokens(mask(vision, None) + g) // Eq. 1
            }
            Fusion::Qformer(m) => {
                let (_, q, s) = m.branch.forward(prompt, prompt_pad, geometry());
                let v = mask(vision, Some(s.clone()));
                let z = m.z_mlp.forward(q.z); // Eq. 4
                Fused { appended: Some(z), relevance: Some(s), ..Fused::tokens(v) }
            }
            Fusion::Gated(m) => {
                let g = m.align.forward(geometry()); // Eqs. 11, 13
                let (f, alpha) = m.gate.forward(mask(vision, None), g);
                Fused { alpha: Some(alpha), ..Fused::tokens(f) }
            }
            Fusion::NormedSum(m) => {
                let g = m.norm_g.forward(m.align.forward(geometry()));
                let v = m.norm_v.forward(mask(vision, None));
                Fused::tokens(v.mul_scalar(m.weight_v) + g.mul_scalar(m.weight_g))
            }
            Fusion::GatedQformer(m) => {
                let (g, q, s) = m.branch.forward(prompt, prompt_pad, geometry());
                let v = mask(vision, Some(s.clone()));
                let (g_tilde, _) = m.retrieve.forward(g, q.z.clone(), None); // Eq. 14
                let (f, alpha) = m.gate.forward(v, g_tilde);
                Fused { tokens: f, appended: Some(q.z), alpha: Some(alpha), relevance: Some(s) }
            }
        }
    }
}
