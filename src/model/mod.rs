//! The geometry-aware framework of Sec. 3 (Fig. 2) and GeoSR's two strategies:
//! Geometry-Unleashing Masking (Sec. 3.2) and Geometry-Guided Fusion (Sec. 3.3).
//! A [`GeoSr`] built from a [`ModelConfig`] is any row of the paper's ablations.
//!
//! Where each equation of Sec. 3 is computed (lines tagged `// Eq. N`):
//!
//! | Eq. | What | Where |
//! |---|---|---|
//! | 1 | F = F_V + MLP(Reshape(F_G)) | [`fusion::Fusion::forward`], `Additive` |
//! | 2 | F_B = CrossAttn1(B, F_P) | [`fusion::QFormer::forward`] |
//! | 3 | Z_G = CrossAttn2(F_B, MLP(F_G)) | [`fusion::QFormer::forward`], its MLP in `QformerBranch::forward` |
//! | 4 | F = [F_V, MLP(Z_G)] | [`fusion::Fusion::forward`], `Qformer` |
//! | 5 | F~_V = m * F_V | [`masking::apply`] |
//! | 6 | m_j, delta ~ Bernoulli(beta) | [`masking::apply`], [`masking::sample_delta`] |
//! | 7 | M = Rand(N, K), K = ceil(gamma N) | [`masking::sample_random_set`], [`masking::mask_size`] |
//! | 8 | Z_G, A = CrossAttn2(F_B, F^_G) | [`fusion::QFormer::forward`] (same call as Eq. 3) |
//! | 9 | relevance s from A | [`masking::relevance`] |
//! | 10 | M = TopK(s, K) | [`masking::topk_set`] |
//! | 11 | F^'_G = Interp(F^_G, (H_V, W_V)) | [`fusion::resize_tokens`], then [`fusion::AlignMlp`] |
//! | 12 | alpha = sigmoid(W_g [LN_v(F~_V) \|\| LN_g(F~_G)] + b_g) | [`fusion::GatedFusion::forward`] |
//! | 13 | F~_G = MLP(Reshape(F_G)) (static) | [`fusion::Fusion::forward`], `Gated` |
//! | 14 | F~_G = CrossAttn3(F^'_G, Z_G) (dynamic) | [`fusion::Fusion::forward`], `GatedQformer` |
//! | 15 | F = alpha * V + (1 - alpha) * G | [`fusion::GatedFusion::forward`] |
//!
//! Eqs. 6 and 7 are drawn when a batch is made, from a seed per sample, so a resumed
//! run masks the tokens an uninterrupted one would; [`GeoSr::forward_ablated`] applies
//! them and Eq. 10.

pub mod backbone;
pub mod flops;
pub mod fusion;
pub mod masking;
pub mod tokenizers;

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

use crate::config::{FusionKind, GeometryCues, GeometryKind, MaskKind, ModelConfig};
use crate::data::batcher::QuestionCounts;
use crate::data::{vocab, GeoBatch};
use backbone::{no_padding, Backbone};
use fusion::{Fusion, Grid};
use tokenizers::{GeometryEncoder, Tokenizers};

/// Shapes the data fixes: token layouts and raw channel counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelDims {
    pub vision_channels: usize,
    pub geometry_channels: usize,
    pub vocab: usize,
    pub prompt_len: usize,
    /// Leading vision channels that one-hot encode a category word (see
    /// [`crate::data::Dataset::category_channels`]).
    pub category_channels: usize,
    pub vision: Grid,
    pub geometry: Grid,
}

impl ModelDims {
    fn new(
        (vision_channels, geometry_channels, category_channels): (usize, usize, usize),
        frames: usize,
        vision: [usize; 2],
        geometry: [usize; 2],
    ) -> Self {
        ModelDims {
            vision_channels,
            geometry_channels,
            vocab: vocab::vocab_size(),
            prompt_len: vocab::PROMPT_LEN,
            category_channels,
            vision: Grid { frames, h: vision[0], w: vision[1] },
            geometry: Grid { frames, h: geometry[0], w: geometry[1] },
        }
    }

    pub fn of(data: &crate::data::Dataset) -> ModelDims {
        let channels = (data.vision_channels, data.geometry_channels, data.category_channels);
        ModelDims::new(channels, data.frames, data.vision_grid, data.geometry_grid)
    }
}

/// Whether masking may fire. Masking is a training-time device only: inference
/// always sees every vision token (Sec. 3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Train,
    Infer,
}

/// A stream removed at inference, to measure how much a trained model relies on
/// it (the geometry-reliance probes): the tokens are zeroed after their frozen
/// tokenizer, so the rest of the model sees "no evidence" from that stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ablation {
    None,
    Geometry,
    Vision,
}

/// The non-learned facts a forward pass needs.
#[derive(Debug, Clone)]
pub struct Layout {
    pub fusion: FusionKind,
    pub mask: MaskKind,
    pub gamma: f64,
    pub grounding: f64,
    /// Coordinates each grounding head gives per object: (x, z), or (x, z, dx, dz) with
    /// `model.grounding_motion`.
    pub grounding_coords: usize,
    pub geometry_cues: GeometryCues,
    pub dims: ModelDims,
}

/// Channels of each token the frozen geometry encoder gives (C_G).
pub fn encoded_geometry_channels(config: &ModelConfig, dims: &ModelDims) -> usize {
    match config.geometry {
        GeometryKind::Features => dims.geometry_channels,
        _ => config.geometry_channels,
    }
}

/// Channels of each geometry token the alignment MLP reads: C_G plus `model.geometry_cues`.
pub fn aligned_geometry_channels(config: &ModelConfig, dims: &ModelDims) -> usize {
    encoded_geometry_channels(config, dims) + config.geometry_cues.channels(dims.category_channels)
}

/// `geometry` (resized to the vision grid, `[B, N_V, C_G]`) with the cues of
/// `model.geometry_cues` appended as channels.
fn with_cues<B: Backend>(geometry: Tensor<B, 3>, cues: GeometryCues, raw_vision: &Tensor<B, 3>, dims: &ModelDims) -> Tensor<B, 3> {
    let [b, n_v, _] = geometry.dims();
    let extra = match cues {
        GeometryCues::None => return geometry,
        GeometryCues::Appearance => raw_vision.clone().narrow(2, 0, dims.category_channels),
        GeometryCues::Position => {
            let g = dims.vision;
            // Cell centres of each axis in [-1, 1]; an axis of one cell sits at 0.
            let at = |i: usize, n: usize| if n > 1 { 2.0 * i as f32 / (n - 1) as f32 - 1.0 } else { 0.0 };
            let mut code = Vec::with_capacity(n_v * 3);
            for t in 0..g.frames {
                for r in 0..g.h {
                    for c in 0..g.w {
                        code.extend([at(t, g.frames), at(r, g.h), at(c, g.w)]);
                    }
                }
            }
            Tensor::<B, 2>::from_data(TensorData::new(code, [n_v, 3]), &geometry.device()).unsqueeze::<3>().expand([b, n_v, 3])
        }
    };
    Tensor::cat(vec![geometry, extra], 2)
}

#[derive(Module, Debug)]
pub struct GeoSr<B: Backend> {
    pub tokenizers: Tokenizers<B>,
    pub geometry_encoder: GeometryEncoder<B>,
    /// F(.) and the QFormer branch top-k masking reads (Eqs. 1-4, 8-9, 11-15).
    pub fusion: Fusion<B>,
    pub backbone: Backbone<B>,
    /// The auxiliary grounding head (`model.grounding`): word state -> (x, z), and
    /// (dx, dz) with `model.grounding_motion`.
    pub grounding: Option<burn::nn::Linear<B>>,
    /// The auxiliary role head: pooled state -> the same targets of each object the question names.
    pub roles: Option<burn::nn::Linear<B>>,
    #[module(skip)]
    pub layout: Layout,
}

/// A forward pass's answers and diagnostics.
pub struct ForwardOutput<B: Backend> {
    pub choice_logits: Tensor<B, 2>,
    /// Predicted ln(1 + answer) `[B]`.
    pub number: Tensor<B, 1>,
    /// Mean gate alpha per vision token `[B, N_V]` (gated fusions).
    pub alpha: Option<Tensor<B, 2>>,
    /// Relevance scores s of Eq. 9 `[B, N_V]` (QFormer branch present).
    pub relevance: Option<Tensor<B, 2>>,
    /// The mask m of Eq. 5 actually applied `[B, N_V]` (training with masking).
    pub mask: Option<Tensor<B, 2>>,
    /// Each prompt word's predicted floor position (and displacement) `[B, L_P, coords]`
    /// (grounding head present; see [`Layout::grounding_coords`]).
    pub grounding: Option<Tensor<B, 3>>,
    /// The named objects' predicted targets `[B, ROLES, coords]` (role head present).
    pub roles: Option<Tensor<B, 3>>,
}

impl<B: Backend> GeoSr<B> {
    pub fn new(config: &ModelConfig, dims: ModelDims, device: &B::Device) -> Self {
        let (depth, width, heads) = config.backbone.resolved();
        let c_g = encoded_geometry_channels(config, &dims);
        let appended = match config.fusion {
            FusionKind::Qformer | FusionKind::GatedQformer => config.bottleneck_len,
            _ => 0,
        };
        let seq_len = dims.vision.tokens() + appended + dims.prompt_len;
        let coords = if config.grounding_motion { 4 } else { 2 };
        GeoSr {
            tokenizers: Tokenizers::new(&dims, width, config.align_tokenizers, device),
            geometry_encoder: GeometryEncoder::new(config.geometry, dims.geometry_channels, c_g, device),
            fusion: Fusion::new(config, aligned_geometry_channels(config, &dims), width, device),
            backbone: Backbone::new(depth, width, heads, seq_len, config.backbone.freeze, device),
            grounding: (config.grounding > 0.0).then(|| burn::nn::LinearConfig::new(width, coords).init(device)),
            roles: (config.grounding > 0.0)
                .then(|| burn::nn::LinearConfig::new(width, coords * crate::data::batcher::ROLES).init(device)),
            layout: Layout {
                fusion: config.fusion,
                mask: config.mask.kind,
                gamma: config.mask.gamma,
                grounding: config.grounding,
                grounding_coords: coords,
                geometry_cues: config.geometry_cues,
                dims,
            },
        }
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Parameters that answer questions: all but the training-only grounding heads,
    /// so that `model.grounding` does not change Table 6's counts.
    pub fn answering_params(&self) -> usize {
        let heads = [&self.grounding, &self.roles];
        self.num_params() - heads.iter().filter_map(|h| h.as_ref()).map(|h| h.num_params()).sum::<usize>()
    }

    pub fn forward(&self, batch: &GeoBatch<B>, mode: Mode) -> ForwardOutput<B> {
        self.forward_ablated(batch, mode, Ablation::None)
    }

    /// [`Self::forward`] with one stream removed (see [`Ablation`]).
    pub fn forward_ablated(&self, batch: &GeoBatch<B>, mode: Mode, ablation: Ablation) -> ForwardOutput<B> {
        let dims = self.layout.dims;
        let mut f_v = self.tokenizers.vision(batch.vision.clone());
        if ablation == Ablation::Vision {
            f_v = f_v.zeros_like();
        }
        let f_p = self.tokenizers.prompt(batch.prompt.clone());
        let prompt_pad = batch.prompt.clone().equal_elem(vocab::PAD as i64);
        let [b, n_v, _] = f_v.dims();

        let geometry = || {
            let f_g = self.geometry_encoder.forward(batch.geometry.clone());
            let f_g = with_cues(fusion::resize_tokens(f_g, dims.geometry, dims.vision), self.layout.geometry_cues, &batch.vision, &dims);
            // The cues go with the stream they ride on.
            if ablation == Ablation::Geometry {
                f_g.zeros_like()
            } else {
                f_g
            }
        };
        let mut mask = None;
        let fused = self.fusion.forward(f_v, f_p.clone(), prompt_pad.clone(), geometry, |f_v, relevance| {
            let set = match (mode, self.layout.mask) {
                (Mode::Train, MaskKind::Random) => batch.random_set.clone(),
                (Mode::Train, MaskKind::Topk) => {
                    let scores = relevance.expect("top-k masking is built with a QFormer branch");
                    masking::topk_set(scores, self.layout.gamma) // Eq. 10
                }
                _ => return f_v,
            };
            let (v, m) = masking::apply(f_v, set, batch.delta.clone()); // Eqs. 5, 6
            mask = Some(m);
            v
        });

        let mut tokens = vec![fused.tokens];
        let mut prefix = n_v;
        if let Some(z) = fused.appended {
            prefix += z.dims()[1];
            tokens.push(z);
        }
        tokens.push(f_p);
        let pad = Tensor::cat(vec![no_padding::<B>(b, prefix, &prompt_pad.device()), prompt_pad], 1);
        let keep_states = self.grounding.is_some();
        let answers = self.backbone.forward(Tensor::cat(tokens, 1), pad, batch.option_spans.clone(), batch.invalid_options.clone(), keep_states);
        ForwardOutput {
            choice_logits: answers.choice_logits,
            number: answers.number,
            alpha: fused.alpha.map(|a| a.mean_dim(2).reshape([b, n_v])),
            relevance: fused.relevance,
            mask,
            grounding: self.grounding.as_ref().zip(answers.words).map(|(head, words)| head.forward(words)),
            roles: self.roles.as_ref().zip(answers.pooled).map(|(head, pooled)| {
                head.forward(pooled).reshape([b, crate::data::batcher::ROLES, self.layout.grounding_coords])
            }),
        }
    }

    /// Cross-entropy over the options of multiple-choice questions plus
    /// `number_weight` times the squared error in ln(1 + x) for numerical ones,
    /// each averaged over its own questions.
    pub fn loss(&self, out: &ForwardOutput<B>, batch: &GeoBatch<B>, number_weight: f64) -> Tensor<B, 1> {
        self.shard_loss(out, batch, number_weight, batch.counts)
    }

    /// [`Self::loss`] of one shard of a larger batch whose questions `counts` counts:
    /// each term is divided by the whole batch's number of its questions, so the
    /// shards' losses (and gradients) add up to the whole batch's.
    pub fn shard_loss(&self, out: &ForwardOutput<B>, batch: &GeoBatch<B>, number_weight: f64, counts: QuestionCounts) -> Tensor<B, 1> {
        let is_number = batch.is_number.clone();
        let is_choice = Tensor::ones_like(&is_number) - is_number.clone();
        let nll = log_softmax(out.choice_logits.clone(), 1)
            .gather(1, batch.choice_target.clone().unsqueeze_dim::<2>(1))
            .reshape([is_number.dims()[0]])
            .neg();
        let choice = (nll * is_choice).sum() / counts.choice.max(1) as f64;
        let err = out.number.clone() - batch.number_target.clone();
        let number = (err.clone() * err * is_number).sum() / counts.number.max(1) as f64;
        let mut loss = choice + number * number_weight;
        let w = self.layout.grounding;
        if let Some(pred) = &out.grounding {
            loss = loss + position_error(pred.clone(), batch.grounding.clone(), counts.grounded) * w;
        }
        if let Some(pred) = &out.roles {
            loss = loss + position_error(pred.clone(), batch.roles.clone(), counts.roles) * w;
        }
        loss
    }
}

/// Squared error of predictions `[B, K, c]` against the first `c` values of targets
/// `[B, K, GROUNDING_WIDTH]` (x, z, dx, dz, has-target), summed where a target exists
/// and divided by `c * count` (the number of coordinates with a target in the whole
/// batch, see [`GeoSr::shard_loss`]).
fn position_error<B: Backend>(pred: Tensor<B, 3>, target: Tensor<B, 3>, count: usize) -> Tensor<B, 1> {
    let coords = pred.dims()[2];
    let has = target.clone().narrow(2, crate::data::batcher::HAS_TARGET, 1);
    let err = (pred - target.narrow(2, 0, coords)) * has;
    (err.clone() * err).sum() / (coords * count.max(1)) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    #[test]
    fn position_cues_give_each_token_its_cell_on_the_vision_grid() {
        let device = Default::default();
        let mut dims = ModelDims::new((4, 7, 2), 2, [2, 3], [1, 1]);
        dims.vision = Grid { frames: 2, h: 2, w: 3 };
        let geometry = Tensor::<Flex, 3>::ones([1, 12, 5], &device);
        let vision = Tensor::<Flex, 3>::zeros([1, 12, 4], &device);
        let out = with_cues(geometry, GeometryCues::Position, &vision, &dims);
        assert_eq!(out.dims(), [1, 12, 8]);
        let code: Vec<f32> = out.narrow(2, 5, 3).into_data().to_vec().unwrap();
        // Tokens are ordered (frame, row, column).
        assert_eq!(&code[0..3], &[-1.0, -1.0, -1.0]);
        assert_eq!(&code[3 * 4..3 * 5], &[-1.0, 1.0, 0.0], "frame 0, row 1, column 1");
        assert_eq!(&code[3 * 11..], &[1.0, 1.0, 1.0]);
    }
}
