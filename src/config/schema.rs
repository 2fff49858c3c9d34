//! The typed configuration schema. Every key a user can set lives here; serde's
//! `deny_unknown_fields` plus [`super::layers`]' own key check make typos loud.

use serde::{Deserialize, Serialize};

/// The fully resolved configuration of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub data: DataConfig,
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub eval: EvalConfig,
    pub output: OutputConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bench {
    /// Synthetic static rooms, the VSI-Bench analogue (Table 3).
    Static,
    /// Synthetic dynamic scenes, the DSR-Bench analogue (Table 4).
    Dynamic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataSource {
    /// Procedurally generated scenes (see `data::static_scenes`, `data::dynamic_scenes`).
    Synthetic,
    /// Precomputed token features of a real benchmark (see `data::features`).
    Features,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    pub source: DataSource,
    pub bench: Bench,
    /// Folders of precomputed features per split (used when `source = "features"`).
    pub features: FeaturePaths,
    /// Questions in the training split.
    pub train_size: usize,
    /// Questions in the evaluation split.
    pub eval_size: usize,
    /// Seed of the scene generator; independent of the training seed so that
    /// seeds of a sweep differ in initialisation and order, not in data.
    pub seed: u64,
    /// Frames per scene (T).
    pub frames: usize,
    /// Vision token grid per frame, [H_V, W_V].
    pub vision_grid: [usize; 2],
    /// Geometry token grid per frame, [H_G, W_G]; may differ from the vision grid.
    pub geometry_grid: [usize; 2],
    /// Objects per scene.
    pub objects: usize,
    /// Standard deviation of the noise on the geometry encoder's 3D points (metres).
    pub geometry_noise: f64,
    /// Probability that a geometry token is missing (all zeros), as where a real
    /// reconstruction has no point. Not in the paper; 0 = off.
    pub geometry_dropout: f64,
    /// Probability that a geometry token's point is wrong (uniform in the scene's box).
    /// Not in the paper; 0 = off.
    pub geometry_outliers: f64,
    /// How well 2D appearance predicts the answer, per split (0 = not at all, 1 = perfectly).
    pub shortcut: ShortcutConfig,
    /// Only these subtasks (keys such as "abs_distance"), in both splits, to train or
    /// probe one skill at a time; empty means all of the benchmark's.
    pub subtasks: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FeaturePaths {
    pub train: String,
    pub eval: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShortcutConfig {
    pub train: f64,
    pub eval: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackbonePreset {
    Tiny,
    Small,
    Base,
}

impl BackbonePreset {
    /// (depth, width, heads) of each preset.
    pub fn dims(self) -> (usize, usize, usize) {
        match self {
            BackbonePreset::Tiny => (2, 32, 2),
            BackbonePreset::Small => (4, 64, 4),
            BackbonePreset::Base => (6, 128, 8),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackboneConfig {
    pub preset: BackbonePreset,
    /// Transformer layers; 0 takes the preset's value.
    pub depth: usize,
    /// Token width C; 0 takes the preset's value.
    pub width: usize,
    /// Attention heads; 0 takes the preset's value.
    pub heads: usize,
    /// Keep the backbone's weights fixed during training.
    pub freeze: bool,
}

impl BackboneConfig {
    /// (depth, width, heads) after applying explicit overrides to the preset.
    pub fn resolved(&self) -> (usize, usize, usize) {
        let (d, w, h) = self.preset.dims();
        let pick = |v: usize, p: usize| if v == 0 { p } else { v };
        (pick(self.depth, d), pick(self.width, w), pick(self.heads, h))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GeometryKind {
    None,
    /// Static per-frame point maps (the paper's VGGT).
    Vggt,
    /// Dynamic per-frame point maps over time (the paper's pi3).
    Pi3,
    /// Precomputed geometry tokens read from disk.
    Features,
}

/// What each geometry token carries beside its geometry (`model.geometry_cues`). Not in
/// the paper: the synthetic tokens hold a point, an object flag and a displacement and
/// nothing else, where a real encoder's features (computed from the same images) also
/// know where in the frame they sit and something of what is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GeometryCues {
    /// Geometry only (the benchmark's tokens as they are).
    None,
    /// Each token's (frame, row, column) on the vision grid, scaled to [-1, 1].
    Position,
    /// The category channels of the vision token at the same position.
    Appearance,
}

impl GeometryCues {
    /// Channels added to each geometry token.
    pub fn channels(self, category_channels: usize) -> usize {
        match self {
            GeometryCues::None => 0,
            GeometryCues::Position => 3,
            GeometryCues::Appearance => category_channels,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskKind {
    None,
    /// Eq. 7: uniformly random positions.
    Random,
    /// Eq. 10: the most relevant positions by the relevance score of Eq. 9.
    Topk,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskConfig {
    pub kind: MaskKind,
    /// Masking ratio gamma of Eqs. 7 and 10.
    pub gamma: f64,
    /// Probability beta that masking is enabled for a sample, Eq. 6.
    pub beta: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FusionKind {
    None,
    /// Eq. 1, the static Ori. Fus.
    Additive,
    /// Eqs. 2-4, the dynamic Ori. Fus.
    Qformer,
    /// Eqs. 12, 13, 15, the static Geo. Fus.
    Gated,
    /// Eqs. 8, 11, 14, 12, 15, the dynamic Geo. Fus.
    GatedQformer,
    /// Not in the paper, a control for Eq. 12 (docs/results.md, control 4): the gated
    /// fusion's two LayerNorms without its gate, F = LN_v(F~_V) + LN_g(MLP(Reshape(F_G))).
    AdditiveLn,
    /// Not in the paper, a control for Eq. 12: the gated fusion with a constant gate,
    /// F = a LN_v(F~_V) + (1 - a) LN_g(MLP(Reshape(F_G))), a = `model.gate_alpha`.
    GatedFixed,
}

impl FusionKind {
    /// Whether the fusion carries the bottleneck-token branch of Eqs. 2-3.
    pub fn has_qformer(self) -> bool {
        matches!(self, FusionKind::Qformer | FusionKind::GatedQformer)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub backbone: BackboneConfig,
    pub geometry: GeometryKind,
    /// Geometry token channels C_G (may differ from C).
    pub geometry_channels: usize,
    pub mask: MaskConfig,
    pub fusion: FusionKind,
    /// Number of bottleneck tokens L_B, Eq. 2.
    pub bottleneck_len: usize,
    /// Heads of the fusion module's cross-attentions.
    pub fusion_heads: usize,
    /// Hidden width of the alignment MLPs, as a multiple of C.
    pub mlp_ratio: usize,
    /// Synthetic data: the frozen vision tokenizer maps each category channel to
    /// the prompt embedding of that category's word, as a pretrained VLM's vision
    /// tower and text embedding already agree on what a chair is. Off: both are
    /// independent random maps, and the backbone must learn the pairing itself.
    pub align_tokenizers: bool,
    /// Weight of two auxiliary training targets that stand in for what a pretrained
    /// VLM already knows (synthetic data only; 0 = off, the paper's model): a linear
    /// head reads each object word's state after the first backbone layer and gives the
    /// floor position (x, z) of the object it names, and a second reads the pooled
    /// state and gives the positions of the question's named objects in the order the
    /// question names them. Both are squared errors in metres, averaged per coordinate,
    /// and leave inference unchanged. Trained on Rel. Dir. alone, the tiny backbone
    /// learns it with them and stays at the blind guess without (README, Known limits).
    pub grounding: f64,
    /// Both grounding heads also give each named object's floor displacement (dx, dz)
    /// over the clip, beside its starting position: the dynamic benchmark's questions
    /// are about motion, which a pretrained video VLM tracks. Needs `grounding > 0` and
    /// `data.bench = "dynamic"` (a static scene has no motion to ground).
    pub grounding_motion: bool,
    /// The constant gate a of `fusion = "gated_fixed"` (read by no other fusion).
    pub gate_alpha: f64,
    /// Cues added to each geometry token after Eq. 11's resize, before the alignment
    /// MLP, so every fusion and the Q-Former's keys see them (see [`GeometryCues`]).
    /// A control for the Q-Former rows, whose appended tokens can otherwise tie no
    /// geometry to an object the question names (docs/results.md, Table 4).
    pub geometry_cues: GeometryCues,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Optimizer {
    Adam,
    Adamw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// Linear warmup, then cosine decay to 0 (the paper's static recipe).
    Cosine,
    /// Linear warmup, then constant.
    Constant,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub optimizer: Optimizer,
    pub lr: f64,
    pub weight_decay: f64,
    pub warmup_steps: usize,
    pub schedule: Schedule,
    pub batch_size: usize,
    pub epochs: usize,
    /// Optimizer steps; 0 derives them from `epochs`.
    pub steps: usize,
    pub seed: u64,
    /// Write a row to train.csv every this many steps.
    pub log_every: usize,
    /// Save model and optimizer state every this many steps, so an interrupted run resumes.
    pub checkpoint_every: usize,
    /// Weight of the numerical answers' squared error (in ln(1 + x)) against the
    /// choice cross-entropy. Log answers spread little (sd about 0.2), so at
    /// weight 1 their error is a small part of the loss and learns last.
    pub number_weight: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Average {
    /// Mean over subtasks (VSI-Bench, Table 3).
    Macro,
    /// Mean over questions (DSR-Bench, Table 4).
    Micro,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    pub batch_size: usize,
    /// The average a table reports as Avg.
    pub average: Average,
    /// Score a held-out slice of the evaluation split every this many training steps
    /// (and after the last), into `curve.csv`, for learning curves; 0 = never (256 by
    /// default). Not part of a run's identity: it watches training without changing it.
    pub every: usize,
    /// Questions in that slice: every k-th of the evaluation split, so each subtask
    /// keeps its share.
    pub curve_size: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Root of the run store.
    pub results_dir: String,
    /// Refuse to run from a repository with uncommitted changes.
    pub require_clean: bool,
    /// Keep a finished run's final weights (`model/model.mpk`), so it can be evaluated
    /// again or probed later without training it again.
    pub keep_weights: bool,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            source: DataSource::Synthetic,
            bench: Bench::Static,
            features: FeaturePaths::default(),
            train_size: 2048,
            eval_size: 512,
            seed: 0,
            frames: 2,
            vision_grid: [4, 4],
            geometry_grid: [4, 4],
            objects: 4,
            geometry_noise: 0.05,
            geometry_dropout: 0.0,
            geometry_outliers: 0.0,
            shortcut: ShortcutConfig { train: 0.9, eval: 0.1 },
            subtasks: Vec::new(),
        }
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            backbone: BackboneConfig {
                preset: BackbonePreset::Tiny,
                depth: 0,
                width: 0,
                heads: 0,
                freeze: false,
            },
            geometry: GeometryKind::Vggt,
            geometry_channels: 16,
            mask: MaskConfig { kind: MaskKind::Random, gamma: 0.8, beta: 0.5 },
            fusion: FusionKind::Gated,
            bottleneck_len: 8,
            fusion_heads: 2,
            mlp_ratio: 2,
            align_tokenizers: false,
            grounding: 0.0,
            grounding_motion: false,
            gate_alpha: 0.5,
            geometry_cues: GeometryCues::None,
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            optimizer: Optimizer::Adam,
            lr: 1e-3,
            weight_decay: 0.0,
            warmup_steps: 20,
            schedule: Schedule::Cosine,
            batch_size: 32,
            epochs: 1,
            steps: 0,
            seed: 0,
            log_every: 1,
            checkpoint_every: 200,
            number_weight: 1.0,
        }
    }
}

impl Default for EvalConfig {
    fn default() -> Self {
        // Learning curves are on: 12 points over quick's 3,072 steps, each three passes
        // over 256 questions, cost about 3% of a run on Flex (docs/performance.md).
        EvalConfig { batch_size: 64, average: Average::Macro, every: 256, curve_size: 256 }
    }
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig { results_dir: "results".into(), require_clean: false, keep_weights: true }
    }
}
