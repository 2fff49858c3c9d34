use safetensors::tensor::TensorView;
use safetensors::Dtype;
use serde_json::{Map, Value};

use super::*;
use crate::benchmark::{dsr, vsi};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// A copy of a fixture folder that a test may break.
fn copy_fixture(name: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let src = fixture(name);
    std::fs::create_dir(tmp.path().join("features")).unwrap();
    for entry in ["meta.json", "questions.jsonl"] {
        std::fs::copy(src.join(entry), tmp.path().join(entry)).unwrap();
    }
    for entry in std::fs::read_dir(src.join("features")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), tmp.path().join("features").join(entry.file_name())).unwrap();
    }
    tmp
}

/// Replaces line `line` (1-based) of questions.jsonl.
fn replace_line(dir: &Path, line: usize, new: &str) {
    let path = dir.join("questions.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[line - 1] = new;
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
}

/// Rewrites one field of the record on `line` (None removes it).
fn edit_field(dir: &Path, line: usize, field: &str, value: Option<Value>) {
    let text = std::fs::read_to_string(dir.join("questions.jsonl")).unwrap();
    let mut obj: Map<String, Value> = serde_json::from_str(text.lines().nth(line - 1).unwrap()).unwrap();
    match value {
        Some(v) => obj.insert(field.to_string(), v),
        None => obj.remove(field),
    };
    replace_line(dir, line, &serde_json::to_string(&obj).unwrap());
}

fn load_err(dir: &Path) -> (FeatureError, String) {
    let err = load(dir).expect_err("a broken folder must not load");
    let msg = err.to_string();
    (err, msg)
}

fn write_tensors(path: &Path, tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) {
    let views: Vec<(&str, TensorView)> = tensors
        .iter()
        .map(|(name, dtype, shape, data)| (*name, TensorView::new(*dtype, shape.clone(), data).unwrap()))
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

#[test]
fn vsi_fixture_round_trips() {
    let set = load(&fixture("vsi")).unwrap();
    let d = &set.data;
    assert_eq!(d.bench, Bench::Static);
    assert_eq!(d.subtasks, vsi::SUBTASKS);
    assert_eq!((d.frames, d.vision_grid, d.geometry_grid), (1, [2, 2], [2, 2]));
    assert_eq!((d.vision_channels, d.geometry_channels), (3, 4));
    assert_eq!(set.len(), 13);
    assert_eq!(set.ids.len(), 13);
    assert_eq!(set.question_types.len(), 13);

    for s in &d.samples {
        assert_eq!(s.vision.len(), d.n_vision() * d.vision_channels);
        assert_eq!(s.geometry.len(), d.n_geometry() * d.geometry_channels);
        assert_eq!(s.prompt.len(), vocab::PROMPT_LEN);
    }
    // Every official type is present and maps to its subtask.
    for (qt, key) in vsi::QUESTION_TYPES {
        let i = set.question_types.iter().position(|t| t == qt).unwrap_or_else(|| panic!("{qt} missing"));
        assert_eq!(d.subtasks[d.samples[i].subtask].key, *key);
    }
    // The sub-level survives the mapping to rel_direction.
    let rel_dir: Vec<&str> = (0..set.len())
        .filter(|&i| d.subtasks[d.samples[i].subtask].key == "rel_direction")
        .map(|i| set.question_types[i].as_str())
        .collect();
    assert_eq!(
        rel_dir,
        [
            "object_rel_direction_easy",
            "object_rel_direction_medium",
            "object_rel_direction_medium",
            "object_rel_direction_hard"
        ]
    );

    // Record 1: object_counting, ground truth "3"; record 6: rel_distance, 4 options, "B".
    assert_eq!(set.ids[0], "1");
    assert_eq!(d.samples[0].answer, Answer::Number(3.0));
    assert_eq!(d.samples[0].num_options, 0);
    assert!(d.samples[0].options.is_empty());
    let s = &d.samples[5];
    assert_eq!(s.answer, Answer::Choice(1));
    assert_eq!(s.num_options, 4);
    assert_eq!(s.options, ["chair", "table", "sofa", "lamp"]);
    // Prompt: question words, then "A chair B table ...", unknown words as UNK.
    let words: Vec<&str> =
        s.prompt.iter().filter(|&&t| t != vocab::PAD).map(|&t| vocab::word(t)).collect();
    assert!(words.ends_with(&["A", "chair", "B", "table", "C", "sofa", "D", "lamp"]), "{words:?}");
    assert!(words.contains(&"<unk>"));

    // The fixture's values: element k of record r's tensor is (r * 100 + k) / 1000,
    // geometry negated (see examples/make_fixture.rs).
    assert_eq!(d.samples[0].vision[..3], [0.1, 0.101, 0.102]);
    assert_eq!(d.samples[1].geometry[1], -0.201);
}

#[test]
fn dsr_fixture_round_trips() {
    let set = load(&fixture("dsr")).unwrap();
    let d = &set.data;
    assert_eq!(d.bench, Bench::Dynamic);
    assert_eq!(d.subtasks, dsr::SUBTASKS);
    assert_eq!(d.frames, 2);
    assert_eq!(set.len(), 15);
    for (k, sub) in dsr::SUBTASKS.iter().enumerate() {
        assert!(d.samples.iter().any(|s| s.subtask == k), "{} missing", sub.key);
    }
    for (i, s) in d.samples.iter().enumerate() {
        assert_eq!(set.question_types[i], d.subtasks[s.subtask].key);
        assert!(matches!(s.answer, Answer::Choice(c) if c < s.num_options));
        assert_eq!(s.vision.len(), d.n_vision() * d.vision_channels);
        assert_eq!(s.geometry.len(), d.n_geometry() * d.geometry_channels);
    }
    assert_eq!(set.ids[0], "dsr-001");
}

#[test]
fn meta_errors_name_the_file_and_the_key() {
    let tmp = copy_fixture("vsi");
    let meta = tmp.path().join("meta.json");
    let cases = [
        (r#"{"bench": "vsi"}"#, "frames", "is missing"),
        (r#"{"bench": "kitti", "frames": 1}"#, "bench", "\"kitti\""),
        (
            r#"{"bench": "vsi", "frames": 1, "vision_grid": [2], "geometry_grid": [2, 2], "vision_channels": 3, "geometry_channels": 4}"#,
            "vision_grid",
            "[height, width]",
        ),
        (
            r#"{"bench": "vsi", "frames": 0, "vision_grid": [2, 2], "geometry_grid": [2, 2], "vision_channels": 3, "geometry_channels": 4}"#,
            "frames",
            "positive integer",
        ),
    ];
    for (text, key, problem) in cases {
        std::fs::write(&meta, text).unwrap();
        let (err, msg) = load_err(tmp.path());
        assert!(matches!(err, FeatureError::Meta { key: k, .. } if k == key), "{msg}");
        assert!(msg.contains("meta.json") && msg.contains(key) && msg.contains(problem), "{msg}");
    }
    std::fs::write(&meta, "{not json").unwrap();
    let (err, msg) = load_err(tmp.path());
    assert!(matches!(err, FeatureError::MetaJson { .. }) && msg.contains("meta.json"), "{msg}");
}

/// Asserts a record error on `line`, with `needle` in the message.
fn assert_record_err(dir: &Path, line: usize, needle: &str, check: impl Fn(&RecordError) -> bool) {
    let (err, msg) = load_err(dir);
    assert!(msg.contains(&format!("questions.jsonl:{line}: ")), "{msg}");
    assert!(msg.contains(needle), "{msg}");
    match err {
        FeatureError::Record { line: l, source, .. } => {
            assert_eq!(l, line);
            assert!(check(&source), "{source:?}");
        }
        other => panic!("expected a record error, got {other:?}"),
    }
}

#[test]
fn record_errors_carry_the_line_number() {
    let fresh = || copy_fixture("vsi");

    let t = fresh();
    replace_line(t.path(), 4, "{\"id\": 4, \"question_type\": ");
    assert_record_err(t.path(), 4, "invalid JSON", |e| matches!(e, RecordError::Json(_)));

    let t = fresh();
    edit_field(t.path(), 2, "question", None);
    assert_record_err(t.path(), 2, "missing field `question`", |e| {
        matches!(e, RecordError::MissingField("question"))
    });

    let t = fresh();
    edit_field(t.path(), 3, "question_type", Some("object_distance".into()));
    assert_record_err(
        t.path(),
        3,
        "object_counting, object_abs_distance",
        |e| matches!(e, RecordError::UnknownQuestionType { found, .. } if found == "object_distance"),
    );

    // Line 6 is object_rel_distance with four options and answer B.
    let t = fresh();
    edit_field(t.path(), 6, "options", None);
    assert_record_err(t.path(), 6, "`options` is missing", |e| {
        matches!(e, RecordError::MissingOptions { .. })
    });

    let t = fresh();
    edit_field(t.path(), 6, "ground_truth", Some("E".into()));
    assert_record_err(t.path(), 6, "A, B, C, D", |e| matches!(e, RecordError::AnswerNotAnOption { .. }));

    let t = fresh();
    edit_field(t.path(), 6, "options", Some(serde_json::json!(["A. x", "B. y", "C. z", "D. w", "E. v"])));
    assert_record_err(t.path(), 6, "5 options", |e| {
        matches!(e, RecordError::TooManyOptions { found: 5, max: 4 })
    });

    // Line 1 is object_counting.
    let t = fresh();
    edit_field(t.path(), 1, "ground_truth", Some("three".into()));
    assert_record_err(t.path(), 1, "\"three\" is not a number", |e| {
        matches!(e, RecordError::NotANumber { .. })
    });

    let t = fresh();
    edit_field(t.path(), 9, "id", Some(2.into()));
    assert_record_err(t.path(), 9, "first on line 2", |e| matches!(e, RecordError::DuplicateId { .. }));

    let t = fresh();
    edit_field(t.path(), 5, "id", Some("../meta".into()));
    assert_record_err(t.path(), 5, "cannot name a features file", |e| {
        matches!(e, RecordError::InvalidField { field: "id", .. })
    });
}

#[test]
fn dsr_records_need_their_own_fields() {
    let t = copy_fixture("dsr");
    edit_field(t.path(), 7, "answer", None);
    assert_record_err(t.path(), 7, "missing field `answer`", |e| {
        matches!(e, RecordError::MissingField("answer"))
    });

    let t = copy_fixture("dsr");
    edit_field(t.path(), 2, "question_type", Some("object_rel_direction_easy".into()));
    assert_record_err(t.path(), 2, "abs_distance, abs_direction", |e| {
        matches!(e, RecordError::UnknownQuestionType { .. })
    });
}

/// `data.subtasks` keeps only the chosen questions of real data, and each kept
/// question keeps its own question type (the fold of rel. direction's levels reads them).
#[test]
fn a_subtask_selection_filters_questions_and_their_types_together() {
    let path = fixture("vsi").display().to_string();
    let mut cfg = crate::config::DataConfig {
        source: crate::config::DataSource::Features,
        bench: Bench::Static,
        ..Default::default()
    };
    cfg.features.train = path.clone();
    cfg.features.eval = path;
    let all = crate::data::load(&cfg, crate::data::Split::Train).unwrap();
    cfg.subtasks = vec!["rel_direction".into(), "obj_count".into()];
    let some = crate::data::load(&cfg, crate::data::Split::Eval).unwrap();
    let types = some.question_types.as_ref().unwrap();
    assert_eq!((all.samples.len(), some.samples.len(), types.len()), (13, 6, 6));
    for (sample, kind) in some.samples.iter().zip(types) {
        let key = some.subtasks[sample.subtask].key;
        let expected = if key == "obj_count" { "object_counting" } else { "object_rel_direction_" };
        assert!(kind.starts_with(expected), "{key} kept with question type {kind}");
    }
    let kept = |key: &str| some.samples.iter().filter(|s| some.subtasks[s.subtask].key == key).count();
    assert_eq!((kept("rel_direction"), kept("obj_count")), (4, 2));
}

#[test]
fn features_errors_name_the_record_line_and_the_file() {
    // Line 3 of the VSI fixture has id 3.
    let t = copy_fixture("vsi");
    let file = t.path().join("features/3.safetensors");
    std::fs::remove_file(&file).unwrap();
    let (err, msg) = load_err(t.path());
    assert!(matches!(err, FeatureError::MissingFeatures { line: 3, .. }), "{msg}");
    assert!(msg.contains("questions.jsonl:3:") && msg.contains("3.safetensors"), "{msg}");

    let vision = vec![0u8; 4 * 3 * 4];
    let geometry = vec![0u8; 4 * 4 * 4];
    write_tensors(&file, &[("vision", Dtype::F32, vec![4, 3], vision.clone())]);
    let (err, msg) = load_err(t.path());
    assert!(matches!(err, FeatureError::MissingTensor { line: 3, tensor: "geometry", .. }), "{msg}");

    write_tensors(
        &file,
        &[
            ("vision", Dtype::F32, vec![4, 3], vision.clone()),
            ("geometry", Dtype::F32, vec![2, 8], geometry.clone()),
        ],
    );
    let (err, msg) = load_err(t.path());
    assert!(matches!(err, FeatureError::ShapeMismatch { line: 3, tensor: "geometry", .. }), "{msg}");
    assert!(msg.contains("shape [2, 8], expected [4, 4]"), "{msg}");

    write_tensors(
        &file,
        &[
            ("vision", Dtype::F64, vec![4, 3], vec![0u8; 4 * 3 * 8]),
            ("geometry", Dtype::F32, vec![4, 4], geometry),
        ],
    );
    let (err, msg) = load_err(t.path());
    assert!(matches!(err, FeatureError::WrongDtype { line: 3, tensor: "vision", .. }), "{msg}");
    assert!(msg.contains("dtype F64, expected F32") && msg.contains("questions.jsonl:3:"), "{msg}");

    std::fs::write(&file, b"definitely not safetensors").unwrap();
    let (err, msg) = load_err(t.path());
    assert!(matches!(err, FeatureError::Safetensors { line: 3, .. }), "{msg}");
}
