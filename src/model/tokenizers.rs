//! The frozen tokenizers of Fig. 2: vision, prompt and the geometry encoder.
//! They stand in for the pretrained vision tower, text embedding and 3D model
//! (VGGT, pi3): fixed random maps, never trained, never reached by gradients.

use burn::module::Param;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::gelu;

use super::ModelDims;
use crate::config::GeometryKind;
use crate::data::vocab;

/// Vision tokens F_V (H_V W_V T x C) and prompt tokens F_P (L_P x C).
#[derive(Module, Debug)]
pub struct Tokenizers<B: Backend> {
    pub vision: Linear<B>,
    pub prompt: Embedding<B>,
}

impl<B: Backend> Tokenizers<B> {
    /// With `align`, category channel k of a vision token maps to the prompt
    /// embedding of category word k (see `model.align_tokenizers`).
    pub fn new(dims: &ModelDims, width: usize, align: bool, device: &B::Device) -> Self {
        let mut t = Tokenizers {
            vision: LinearConfig::new(dims.vision_channels, width).init(device),
            prompt: EmbeddingConfig::new(dims.vocab, width).init(device),
        };
        let n = dims.category_channels;
        if align && n > 0 {
            let first_word = vocab::token(vocab::CATEGORIES[0]) as usize;
            let words = t.prompt.weight.val().narrow(0, first_word, n);
            let rest = t.vision.weight.val().narrow(0, n, dims.vision_channels - n);
            // Rebuilt from data: a tensor computed from parameters cannot become one.
            let weight = Tensor::cat(vec![words, rest], 0).into_data();
            t.vision.weight = Param::from_tensor(Tensor::from_data(weight, device));
        }
        t.no_grad()
    }

    /// `[B, N_V, C_in] -> F_V [B, N_V, C]`.
    pub fn vision(&self, raw: Tensor<B, 3>) -> Tensor<B, 3> {
        self.vision.forward(raw).detach()
    }

    /// `[B, L_P] -> F_P [B, L_P, C]`.
    pub fn prompt(&self, ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        self.prompt.forward(ids).detach()
    }
}

/// The frozen geometry encoder producing F_G (H_G W_G T x C_G) from the scene's
/// point maps. `vggt` and `pi3` differ in what they see (static per-frame point
/// maps vs. points over time, which the data provides); `features` passes
/// precomputed tokens through unchanged.
#[derive(Module, Debug)]
pub struct GeometryEncoder<B: Backend> {
    pub layers: Option<(Linear<B>, Linear<B>)>,
}

impl<B: Backend> GeometryEncoder<B> {
    pub fn new(kind: GeometryKind, raw_channels: usize, channels: usize, device: &B::Device) -> Self {
        let layers = match kind {
            GeometryKind::Vggt | GeometryKind::Pi3 => Some((
                LinearConfig::new(raw_channels, channels).init(device),
                LinearConfig::new(channels, channels).init(device),
            )),
            GeometryKind::None | GeometryKind::Features => None,
        };
        GeometryEncoder { layers }.no_grad()
    }

    /// `[B, N_G, C_raw] -> F_G [B, N_G, C_G]`, detached: frozen means no gradient reaches it.
    pub fn forward(&self, raw: Tensor<B, 3>) -> Tensor<B, 3> {
        let out = match &self.layers {
            Some((a, b)) => b.forward(gelu(a.forward(raw))),
            None => raw,
        };
        out.detach()
    }
}
