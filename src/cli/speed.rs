//! `speed`: training and inference speed of an experiment's runs on every compiled
//! backend, with throughput from an analytic FLOP count.

use std::process::ExitCode;

use anyhow::Result;
use burn::backend::Flex;
use burn::tensor::backend::AutodiffBackend;
use clap::ValueEnum;
use geosr::config::layers::cli_layers;
use geosr::config::{Config, Experiment};
use geosr::data::Dataset;
use geosr::train::StepRow;
use tabled::{builder::Builder, settings::Style};

use super::args::{self, parse_device, Device, Overrides};
use super::backend::{self, CpuBackend, Job};
use super::exit::Usage;

/// Untimed optimizer steps before the timed ones.
const WARM_UP: usize = 3;

#[derive(clap::Args)]
pub struct SpeedArgs {
    /// Experiment name (experiments/NAME.toml) or path.
    experiment: String,
    /// Time only this variant (default: every variant of the experiment, one after another).
    #[arg(long)]
    variant: Option<String>,
    /// Timed optimizer steps (after 3 warm-up steps).
    #[arg(long, default_value_t = 30)]
    steps: usize,
    /// Where to time: `cpu` (every CPU backend), `cuda:N`, or both as `cpu,cuda:0`.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Only this CPU backend (default: each of them).
    #[arg(long, value_enum)]
    backend: Option<CpuBackend>,
    #[command(flatten)]
    overrides: Overrides,
}

pub fn speed(args: SpeedArgs) -> Result<ExitCode> {
    let steps = args.steps;
    if steps == 0 {
        return Err(Usage("--steps 0: expected at least 1 timed step".into()).into());
    }
    let exp = Experiment::load(&args.experiment)?;
    let devices = where_to_time(&args.device)?;
    let (env, mut sets) = args.overrides.layers()?;
    sets.extend(cli_layers(&[format!("train.steps={}", steps + WARM_UP), "train.log_every=1".into()])?);
    let chosen: Vec<_> = match &args.variant {
        Some(label) => vec![args::variant(&exp, label)?],
        None => exp.file.variants.iter().collect(),
    };
    let cpus: Vec<CpuBackend> =
        CpuBackend::value_variants().iter().copied().filter(|b| args.backend.is_none_or(|only| only == *b)).collect();
    let mut b = Builder::default();
    b.push_record(["variant", "backend", "params", "train ms/step", "train samples/s", "train GFLOP/s", "infer ms/sample", "infer GFLOP/s"]);
    for v in chosen {
        let spec = exp.run_spec(v, &exp.sweep_points()[0], exp.file.seeds[0], &env, &sets)?;
        let config = &spec.resolved.config;
        let train = geosr::data::load(&config.data, geosr::data::Split::Train)?;
        let eval = geosr::data::load(&config.data, geosr::data::Split::Eval)?;
        let params = param_count(config, &train).to_string();
        let dims = geosr::model::ModelDims::of(&train);
        let forward = geosr::model::flops::forward_flops(&config.model, &dims) as f64;
        let step_flops = geosr::model::flops::train_step_flops(&config.model, &dims, config.train.batch_size) as f64;
        let mut record = |name: &str, Timed { rows, infer }: Timed| {
            let (first, last) = (&rows[WARM_UP - 1], &rows[rows.len() - 1]);
            let per_step = (last.elapsed_s - first.elapsed_s) / (last.step - first.step) as f64;
            b.push_record([
                spec.label.clone(),
                name.to_string(),
                params.clone(),
                format!("{:.1}", 1000.0 * per_step),
                format!("{:.0}", config.train.batch_size as f64 / per_step),
                format!("{:.2}", step_flops / per_step / 1e9),
                format!("{:.3}", 1000.0 * infer),
                format!("{:.2}", forward / infer / 1e9),
            ]);
        };
        let timing = Timing { config, train: &train, eval: &eval };
        for d in &devices {
            match *d {
                None => {
                    for &cpu in &cpus {
                        record(cpu.name(), backend::on_cpu(cpu, timing)?);
                    }
                }
                Some(index) => record(&format!("cuda:{index}"), backend::on_cuda(&[index], timing)?),
            }
        }
    }
    println!(
        "# {}: {} timed training steps after 3 warm-up steps; inference over the evaluation split; \
         GFLOP/s from an analytic count of matrix products (a training step = 3 x forward)",
        exp.name, steps
    );
    println!("{}", b.build().with(Style::psql()));
    Ok(ExitCode::SUCCESS)
}

/// `--device` as a list of places to time: `None` for every CPU backend, `Some(n)` for GPU n.
fn where_to_time(device: &str) -> Result<Vec<Option<usize>>> {
    device
        .split(',')
        .map(|d| match d.trim() {
            "cpu" => Ok(None),
            d => match parse_device(d)? {
                Device::Cuda(ids) if ids.len() == 1 => Ok(Some(ids[0])),
                _ => Err(Usage(format!("--device {device}: expected cpu, cuda:N or a comma-separated list of them")).into()),
            },
        })
        .collect()
}

/// Training step rows, and inference seconds per sample.
struct Timed {
    rows: Vec<StepRow>,
    infer: f64,
}

/// Trains on `train` for the configured few steps, then times inference over `eval`
/// (the split a run's Table 6 figure is timed on).
#[derive(Clone, Copy)]
struct Timing<'a> {
    config: &'a Config,
    train: &'a Dataset,
    eval: &'a Dataset,
}

impl Job for Timing<'_> {
    type Output = Timed;

    fn run<B: AutodiffBackend>(self, devices: &[B::Device]) -> Result<Timed> {
        let Timing { config, train, eval } = self;
        let device = &devices[0];
        let mut rows = Vec::new();
        let model = geosr::train::train::<B>(config, train, std::slice::from_ref(device), None, |r| rows.push(r.clone()))?;
        let batcher = geosr::train::batcher_for(config, eval);
        // Untimed warm-up pass (kernel compilation and tuning on a GPU).
        geosr::eval::time_inference(&model, eval, &batcher, config.eval.batch_size, device);
        let start = std::time::Instant::now();
        let n = geosr::eval::time_inference(&model, eval, &batcher, config.eval.batch_size, device);
        Ok(Timed { rows, infer: start.elapsed().as_secs_f64() / n.max(1) as f64 })
    }
}

fn param_count(config: &Config, data: &Dataset) -> usize {
    let model: geosr::model::GeoSr<Flex> =
        geosr::model::GeoSr::new(&config.model, geosr::model::ModelDims::of(data), &Default::default());
    model.answering_params()
}
