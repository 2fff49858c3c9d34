//! The optional LibTorch backend computes the same model as the embedded one: given the
//! same weights and batch, every variant's outputs and loss agree with Flex's. (Under the
//! same seed the two draw different initial weights: LibTorch uses PyTorch's generator.)
//! Built only with `--features tch`, which needs a PyTorch install (docs/performance.md).
#![cfg(feature = "tch")]

use burn::backend::libtorch::LibTorchDevice;
use burn::backend::{Flex, LibTorch};
use burn::data::dataloader::batcher::Batcher;
use burn::module::Module;
use burn::prelude::*;
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};

use geosr::config::{Bench, Config, FusionKind, GeometryKind, MaskKind};
use geosr::data::{self, Split};
use geosr::model::{GeoSr, ModelDims, Mode};
use geosr::train::{batcher_for, BatchItem};

fn close(what: &str, a: Vec<f32>, b: Vec<f32>) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!((x - y).abs() <= 1e-4 * (1.0 + x.abs()), "{what}[{i}]: flex {x} vs libtorch {y}");
    }
}

#[test]
fn a_record_written_on_flex_reads_back_on_libtorch() {
    let (fd, td) = (Default::default(), LibTorchDevice::Cpu);
    let linear = burn::nn::LinearConfig::new(8, 8).init::<Flex>(&fd);
    linear.weight.val(); // initialise before the clone below, or the clone draws its own
    let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
    let bytes = recorder.record(linear.clone().into_record(), ()).unwrap();
    let record: burn::nn::LinearRecord<LibTorch> = recorder.load(bytes, &td).unwrap();
    close("weight", linear.weight.val().to_data().to_vec().unwrap(), record.weight.val().to_data().to_vec().unwrap());
}

#[test]
fn libtorch_and_flex_agree_on_every_variant_with_the_same_weights() {
    use FusionKind::*;
    let cases = [
        (Bench::Static, MaskKind::Random, Gated, GeometryKind::Vggt),
        (Bench::Static, MaskKind::None, Additive, GeometryKind::Vggt),
        (Bench::Static, MaskKind::None, FusionKind::None, GeometryKind::None),
        (Bench::Dynamic, MaskKind::Topk, GatedQformer, GeometryKind::Pi3),
        (Bench::Dynamic, MaskKind::None, Qformer, GeometryKind::Pi3),
    ];
    let (fd, td) = (Default::default(), LibTorchDevice::Cpu);
    for (bench, mask, fusion, geometry) in cases {
        let mut c = Config::default();
        c.data.bench = bench;
        c.data.train_size = 16;
        c.data.eval_size = 16;
        c.model.mask.kind = mask;
        c.model.mask.beta = 1.0;
        c.model.fusion = fusion;
        c.model.geometry = geometry;
        let data = data::generate(&c.data, Split::Train);
        let dims = ModelDims::of(&data);
        let items: Vec<BatchItem> =
            data.samples.iter().enumerate().map(|(i, s)| BatchItem { sample: s.clone(), mask_seed: Some(i as u64) }).collect();
        // Both models load one record: a module's lazily initialised parameters would
        // otherwise draw their values separately in each clone.
        let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
        let bytes = recorder.record(GeoSr::<Flex>::new(&c.model, dims, &fd).into_record(), ()).unwrap();
        let flex = GeoSr::<Flex>::new(&c.model, dims, &fd).load_record(recorder.load(bytes.clone(), &fd).unwrap());
        let torch = GeoSr::<LibTorch>::new(&c.model, dims, &td).load_record(recorder.load(bytes, &td).unwrap());
        let batcher = batcher_for(&c, &data);
        let (fb, tb) = (batcher.batch(items.clone(), &fd), batcher.batch(items, &td));
        for mode in [Mode::Infer, Mode::Train] {
            let what = format!("{fusion:?}/{mask:?} {mode:?}");
            let (fo, to) = (flex.forward(&fb, mode), torch.forward(&tb, mode));
            close(&format!("{what} logits"), fo.choice_logits.to_data().to_vec().unwrap(), to.choice_logits.to_data().to_vec().unwrap());
            close(&format!("{what} number"), fo.number.to_data().to_vec().unwrap(), to.number.to_data().to_vec().unwrap());
            let fl: f32 = flex.loss(&fo, &fb, 1.0).into_scalar();
            let tl: f32 = torch.loss(&to, &tb, 1.0).into_scalar().elem();
            close(&format!("{what} loss"), vec![fl], vec![tl]);
        }
    }
}



/// Same seed, other generator: the initial weights differ between the backends, but each
/// larger tensor is drawn from the same distribution (mean and spread within 10%).
#[test]
fn libtorch_draws_initial_weights_from_the_same_distributions() {
    use burn::module::{ModuleVisitor, Param};
    struct Moments(Vec<(usize, f64, f64)>);
    impl<BB: Backend> ModuleVisitor<BB> for Moments {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<BB, D>>) {
            let v: Vec<f32> = p.val().to_data().convert::<f32>().to_vec().unwrap();
            let n = v.len() as f64;
            let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
            let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
            self.0.push((v.len(), mean, var.sqrt()));
        }
    }
    let c = Config::default();
    let dims = ModelDims::of(&data::generate(&c.data, Split::Train));
    let (mut flex, mut torch) = (Moments(vec![]), Moments(vec![]));
    GeoSr::<Flex>::new(&c.model, dims, &Default::default()).visit(&mut flex);
    GeoSr::<LibTorch>::new(&c.model, dims, &LibTorchDevice::Cpu).visit(&mut torch);
    assert_eq!(flex.0.len(), torch.0.len());
    let large: Vec<_> = flex.0.iter().zip(&torch.0).filter(|(f, _)| f.0 >= 1000).collect();
    assert!(large.len() >= 10, "{} large tensors", large.len());
    for (i, (f, t)) in large.iter().enumerate() {
        assert!((f.2 / t.2 - 1.0).abs() < 0.1, "tensor {i} ({} values): spread {} vs {}", f.0, f.2, t.2);
        assert!((f.1 - t.1).abs() < 0.1 * f.2, "tensor {i} ({} values): mean {} vs {}", f.0, f.1, t.1);
    }
}
