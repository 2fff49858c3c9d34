//! The reasoning backbone (the paper's VLM, scaled down): a transformer over
//! [CLS, F, (Z_G), F_P] with answer heads for multiple choice and numbers.

use burn::module::{Initializer, Param};
use burn::nn::transformer::{TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;

use crate::data::MAX_OPTIONS;

#[derive(Module, Debug)]
pub struct Backbone<B: Backend> {
    pub cls: Param<Tensor<B, 3>>,
    /// Learned positions for every slot of the fixed-layout input sequence.
    pub positions: Param<Tensor<B, 3>>,
    pub encoder: TransformerEncoder<B>,
    pub norm: LayerNorm<B>,
    pub choice_head: Linear<B>,
    pub number_head: Linear<B>,
}

/// The heads' raw outputs.
pub struct Answers<B: Backend> {
    /// Option scores `[B, MAX_OPTIONS]` (options beyond a question's count are masked).
    pub choice_logits: Tensor<B, 2>,
    /// Predicted `ln(1 + answer)` for numerical questions, `[B]`.
    pub number: Tensor<B, 1>,
}

impl<B: Backend> Backbone<B> {
    /// `seq_len` is the input length without the CLS token.
    pub fn new(depth: usize, width: usize, heads: usize, seq_len: usize, freeze: bool, device: &B::Device) -> Self {
        let init = Initializer::Normal { mean: 0.0, std: 0.02 };
        let mut encoder = TransformerEncoderConfig::new(width, 4 * width, heads, depth)
            .with_dropout(0.0)
            .with_norm_first(true)
            .init(device);
        if freeze {
            encoder = encoder.no_grad();
        }
        Backbone {
            cls: init.init([1, 1, width], device),
            positions: init.init([1, seq_len + 1, width], device),
            encoder,
            norm: LayerNormConfig::new(width).init(device),
            choice_head: LinearConfig::new(width, MAX_OPTIONS).init(device),
            number_head: LinearConfig::new(width, 1).init(device),
        }
    }

    /// `tokens` `[B, L, C]`, `pad` `[B, L]` (true = padding), `invalid_options` `[B, MAX_OPTIONS]`.
    pub fn forward(&self, tokens: Tensor<B, 3>, pad: Tensor<B, 2, Bool>, invalid_options: Tensor<B, 2, Bool>) -> Answers<B> {
        let [b, l, c] = tokens.dims();
        let cls = self.cls.val().expand([b, 1, c]);
        let x = Tensor::cat(vec![cls, tokens], 1) + self.positions.val().expand([b, l + 1, c]);
        let pad = Tensor::cat(vec![no_padding::<B>(b, 1, &pad.device()), pad], 1);
        let h = self.encoder.forward(TransformerEncoderInput::new(x).mask_pad(pad));
        let pooled = self.norm.forward(h.narrow(1, 0, 1)).reshape([b, c]);
        let choice_logits = self.choice_head.forward(pooled.clone()).mask_fill(invalid_options, -1e4);
        let number = self.number_head.forward(pooled).reshape([b]);
        Answers { choice_logits, number }
    }
}

/// An all-false padding mask `[b, n]`.
pub fn no_padding<B: Backend>(b: usize, n: usize, device: &B::Device) -> Tensor<B, 2, Bool> {
    Tensor::<B, 2, Int>::zeros([b, n], device).equal_elem(1)
}
