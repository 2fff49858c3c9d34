//! Writes the small, deterministic real-benchmark fixtures that the tests of
//! `data::features` and `eval::score` read:
//!
//! ```text
//! tests/fixtures/vsi/{meta.json, questions.jsonl, features/<id>.safetensors}   13 questions, all 10 VSI types
//! tests/fixtures/dsr/{meta.json, questions.jsonl, features/<id>.safetensors}   15 questions, all 13 DSR types
//! tests/fixtures/predictions/{vsi.jsonl, dsr.jsonl}                           hand-chosen model outputs
//! ```
//!
//! Usage: `cargo run --example make_fixture -- <repo-root>`. The predictions are chosen
//! to exercise the official scoring rules; the expected scores are worked out by hand in
//! the tests of `eval::score`, so change both together. Element k of the tensors of the
//! r-th record (1-based) is (100 r + k) / 1000, negated for geometry, so a test can tell
//! records and tensors apart.

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};
use serde_json::{json, Value};

/// (question_type, question, options, answer, prediction)
type Question = (&'static str, &'static str, &'static [&'static str], &'static str, &'static str);

const DIRECTIONS4: &[&str] = &["A. front-left", "B. front-right", "C. back-left", "D. back-right"];
const OBJECTS4: &[&str] = &["A. chair", "B. table", "C. sofa", "D. lamp"];

#[rustfmt::skip]
const VSI: &[Question] = &[
    ("object_counting", "How many chair(s) are in this room?", &[], "3", "3"),
    ("object_counting", "How many lamp(s) are in this room?", &[], "5", "three"),
    ("object_abs_distance", "What is the distance between the sofa and the tv (in meters)?", &[], "4", "4.3 meters"),
    ("object_size_estimation", "What is the length of the longest side of the table (in centimeters)?", &[], "80", "62."),
    ("room_size_estimation", "What is the size of this room (in square meters)?", &[], "25", "28 square meters"),
    ("object_rel_distance", "Which is closest to the tv?", OBJECTS4, "B", "B. table"),
    ("object_rel_direction_easy", "Standing at the bed facing the tv, is the lamp to the left or the right?", &["A. left", "B. right"], "A", "A. left"),
    ("object_rel_direction_medium", "Standing at the bed facing the tv, where is the sofa?", &["A. left", "B. right", "C. back"], "C", "(C)"),
    ("object_rel_direction_medium", "Standing at the desk facing the door, where is the plant?", DIRECTIONS4, "D", "B"),
    ("object_rel_direction_hard", "Standing at the sink facing the window, where is the shelf?", DIRECTIONS4, "B", "b"),
    ("route_planning", "You are at the door facing the bed. Walk to the desk, then which way to the sofa?", &["A. turn left", "B. turn right", "C. go forward", "D. turn back"], "A", "A."),
    ("obj_appearance_order", "Which order do the chair, table and sofa first appear in the video?", &["A. chair, table, sofa", "B. table, chair, sofa", "C. sofa, chair, table", "D. table, sofa, chair"], "D", "C. sofa"),
    ("obj_appearance_order", "Which order do the lamp, tv and bed first appear in the video?", &["A. lamp, tv, bed", "B. tv, lamp, bed", "C. bed, lamp, tv"], "A", "A"),
];

const CLOSER3: &[&str] = &["A. closer", "B. farther", "C. same"];
const DIRECTIONS: &[&str] = &["A. left", "B. right", "C. forward", "D. backward"];

#[rustfmt::skip]
const DSR: &[Question] = &[
    ("abs_distance", "Does the car get closer to or farther from the camera?", CLOSER3, "A", "A"),
    ("abs_distance", "Does the dog get closer to or farther from the camera?", CLOSER3, "C", "B. closer"),
    ("abs_direction", "Which way does the car move?", DIRECTIONS, "C", "C"),
    ("abs_orientation", "Which way is the person facing at the end?", DIRECTIONS, "B", "B:"),
    ("abs_speed", "How fast does the car move?", &["A. still", "B. slow", "C. fast"], "B", "B. slow"),
    ("abs_speed_comp", "Which moves faster?", &["A. the car", "B. the dog"], "A", "a"),
    ("abs_direction_pred", "If the car keeps moving, where will it be?", DIRECTIONS, "D", "D."),
    ("rel_distance", "Do the car and the dog get closer or farther apart?", &["A. closer", "B. farther"], "B", "B"),
    ("rel_direction", "Relative to the car, which way does the dog move?", DIRECTIONS, "A", "A. left"),
    ("rel_orientation", "Do the car and the dog face the same way?", &["A. same", "B. opposite"], "A", "A"),
    ("rel_speed", "Relative to the dog, how fast does the car move?", &["A. faster", "B. slower", "C. same", "D. still"], "A", "D"),
    ("rel_speed_comp", "Which moves faster relative to the viewer?", &["A. the car", "B. the dog", "C. the bike"], "B", "B"),
    ("rel_direction_pred", "If both keep moving, where will the dog be relative to the car?", DIRECTIONS, "A", " A"),
    ("non_template", "Please tell me which thing in this clip is nearer at the end.", &["A. the car", "B. the dog", "C. the bike"], "B", "(B)"),
    ("non_template", "Which direction does the quickest thing go?", &["A. left", "B. right", "C. forward"], "C", "c."),
];

struct Meta {
    bench: &'static str,
    frames: usize,
    vision_grid: [usize; 2],
    geometry_grid: [usize; 2],
    vision_channels: usize,
    geometry_channels: usize,
}

const VSI_META: Meta = Meta {
    bench: "vsi",
    frames: 1,
    vision_grid: [2, 2],
    geometry_grid: [2, 2],
    vision_channels: 3,
    geometry_channels: 4,
};
const DSR_META: Meta = Meta {
    bench: "dsr",
    frames: 2,
    vision_grid: [2, 2],
    geometry_grid: [1, 2],
    vision_channels: 3,
    geometry_channels: 3,
};

fn main() -> Result<(), Box<dyn Error>> {
    let root = std::env::args().nth(1).ok_or("usage: cargo run --example make_fixture -- <repo-root>")?;
    let fixtures = Path::new(&root).join("tests/fixtures");
    write_bench(&fixtures.join("vsi"), &VSI_META, VSI, |i| json!(i + 1))?;
    write_bench(&fixtures.join("dsr"), &DSR_META, DSR, |i| json!(format!("dsr-{:03}", i + 1)))?;
    fs::create_dir_all(fixtures.join("predictions"))?;
    write_predictions(&fixtures.join("predictions/vsi.jsonl"), VSI, "ground_truth", |i| json!(i + 1))?;
    write_predictions(&fixtures.join("predictions/dsr.jsonl"), DSR, "answer", |i| {
        json!(format!("dsr-{:03}", i + 1))
    })?;
    println!("wrote fixtures under {}", fixtures.display());
    Ok(())
}

fn write_bench(
    dir: &Path,
    meta: &Meta,
    questions: &[Question],
    id: impl Fn(usize) -> Value,
) -> Result<(), Box<dyn Error>> {
    let features = dir.join("features");
    // Start clean so that a renamed id leaves no stale tensor file behind.
    if features.exists() {
        fs::remove_dir_all(&features)?;
    }
    fs::create_dir_all(&features)?;
    let meta_json = json!({
        "bench": meta.bench,
        "frames": meta.frames,
        "vision_grid": meta.vision_grid,
        "geometry_grid": meta.geometry_grid,
        "vision_channels": meta.vision_channels,
        "geometry_channels": meta.geometry_channels,
    });
    fs::write(dir.join("meta.json"), serde_json::to_string_pretty(&meta_json)? + "\n")?;

    let mut lines = String::new();
    for (i, &(question_type, question, options, answer, _)) in questions.iter().enumerate() {
        let id = id(i);
        let record = if meta.bench == "vsi" {
            // The official VSI-Bench schema; numerical questions have no options.
            json!({
                "id": id, "dataset": "scannet", "scene_name": format!("scene{:04}_00", i),
                "question_type": question_type, "question": question,
                "options": if options.is_empty() { Value::Null } else { json!(options) },
                "ground_truth": answer,
            })
        } else {
            json!({
                "id": id, "video": format!("videos/clip{:03}.mp4", i + 1), "question_type": question_type,
                "question": question, "options": options, "answer": answer,
            })
        };
        lines += &(serde_json::to_string(&record)? + "\n");

        let r = i + 1;
        let tokens = |grid: [usize; 2]| meta.frames * grid[0] * grid[1];
        let vision = values(r, tokens(meta.vision_grid) * meta.vision_channels, 1.0);
        let geometry = values(r, tokens(meta.geometry_grid) * meta.geometry_channels, -1.0);
        let tensors = [
            (
                "vision",
                TensorView::new(Dtype::F32, vec![tokens(meta.vision_grid), meta.vision_channels], &vision)?,
            ),
            (
                "geometry",
                TensorView::new(
                    Dtype::F32,
                    vec![tokens(meta.geometry_grid), meta.geometry_channels],
                    &geometry,
                )?,
            ),
        ];
        let name = match &id {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        fs::write(features.join(format!("{name}.safetensors")), safetensors::serialize(tensors, None)?)?;
    }
    fs::write(dir.join("questions.jsonl"), lines)?;
    Ok(())
}

/// Little-endian f32 bytes of (100 r + k) / 1000 * sign, k = 0..n.
fn values(r: usize, n: usize, sign: f32) -> Vec<u8> {
    (0..n).flat_map(|k| (sign * ((100 * r + k) as f32 / 1000.0)).to_le_bytes()).collect()
}

fn write_predictions(
    path: &PathBuf,
    questions: &[Question],
    truth_field: &str,
    id: impl Fn(usize) -> Value,
) -> Result<(), Box<dyn Error>> {
    let mut lines = String::new();
    for (i, &(question_type, _, _, answer, prediction)) in questions.iter().enumerate() {
        let mut record = json!({ "id": id(i), "question_type": question_type, "prediction": prediction });
        record[truth_field] = json!(answer);
        lines += &(serde_json::to_string(&record)? + "\n");
    }
    fs::write(path, lines)?;
    Ok(())
}
