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
    /// Multiple choice as a pointer: the pooled state, projected, is matched against
    /// each option's words as the model read them (see [`Backbone::forward`]).
    pub option_query: Linear<B>,
    pub option_key: Linear<B>,
    pub number_head: Linear<B>,
}

/// The heads' raw outputs.
pub struct Answers<B: Backend> {
    /// Option scores `[B, MAX_OPTIONS]` (options beyond a question's count are masked).
    pub choice_logits: Tensor<B, 2>,
    /// Predicted `ln(1 + answer)` for numerical questions, `[B]`.
    pub number: Tensor<B, 1>,
    /// The prompt words' states after the first layer `[B, L_P, C]` (`keep_states`).
    pub words: Option<Tensor<B, 3>>,
    /// The normalized CLS state the heads read `[B, C]` (`keep_states`).
    pub pooled: Option<Tensor<B, 2>>,
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
            option_query: LinearConfig::new(width, width).init(device),
            option_key: LinearConfig::new(width, width).init(device),
            number_head: LinearConfig::new(width, 1).init(device),
        }
    }

    /// `tokens` `[B, L, C]` ending with the `L_P` prompt tokens, `pad` `[B, L]` (true =
    /// padding), `option_spans` `[B, MAX_OPTIONS, L_P]` (the weights that average each
    /// option's words), `invalid_options` `[B, MAX_OPTIONS]`.
    ///
    /// An option's score compares the pooled answer state with that option's own
    /// words rather than with a fixed "option A/B/C/D" direction: options are shuffled
    /// per question, so a fixed head would first have to learn which object hides
    /// behind each letter. A language model answers the same way, by reading the options.
    ///
    /// With `keep_states`, [`Answers`] also carries the prompt words' states after the
    /// first layer and the pooled state, for the grounding heads.
    pub fn forward(
        &self,
        tokens: Tensor<B, 3>,
        pad: Tensor<B, 2, Bool>,
        option_spans: Tensor<B, 3>,
        invalid_options: Tensor<B, 2, Bool>,
        keep_states: bool,
    ) -> Answers<B> {
        let [b, l, c] = tokens.dims();
        let l_p = option_spans.dims()[2];
        let cls = self.cls.val().expand([b, 1, c]);
        let x = Tensor::cat(vec![cls, tokens], 1) + self.positions.val().expand([b, l + 1, c]);
        let pad = Tensor::cat(vec![no_padding::<B>(b, 1, &pad.device()), pad], 1);
        let (x, words) = if keep_states {
            // Layer by layer, to keep the words' states where the grounding head reads
            // them: after the first layer, so that later layers can use what it found.
            let mut x = x;
            let mut early = None;
            for layer in &self.encoder.layers {
                x = layer.forward(x, Some(pad.clone()), None);
                early.get_or_insert_with(|| x.clone().narrow(1, l + 1 - l_p, l_p));
            }
            (x, early)
        } else {
            (self.encoder.forward(TransformerEncoderInput::new(x).mask_pad(pad)), None)
        };
        let h = self.norm.forward(x);
        let pooled = h.clone().narrow(1, 0, 1).reshape([b, c]);
        let options = option_spans.matmul(h.narrow(1, l + 1 - l_p, l_p)); // [B, O, C]
        let query = self.option_query.forward(pooled.clone()).reshape([b, 1, c]);
        let keys = self.option_key.forward(options);
        let choice_logits = (keys * query).sum_dim(2).reshape([b, MAX_OPTIONS]) / (c as f64).sqrt();
        let choice_logits = choice_logits.mask_fill(invalid_options, -1e4);
        let kept = keep_states.then(|| pooled.clone());
        let number = self.number_head.forward(pooled).reshape([b]);
        Answers { choice_logits, number, words, pooled: kept }
    }
}

/// An all-false padding mask `[b, n]`.
pub fn no_padding<B: Backend>(b: usize, n: usize, device: &B::Device) -> Tensor<B, 2, Bool> {
    Tensor::<B, 2, Int>::zeros([b, n], device).equal_elem(1)
}
