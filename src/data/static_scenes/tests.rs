use rand::SeedableRng;

use super::*;
use crate::benchmark::vsi::{ABS_DISTANCE, REL_DIRECTION, REL_DISTANCE, ROOM_SIZE, ROUTE_PLAN, SUBTASKS};
use crate::benchmark::AnswerKind;
use crate::data::vocab::{self, CATEGORIES, PROMPT_LEN};
use crate::data::{generate, Answer, Dataset, Split, MAX_OPTIONS};

fn config(shortcut: f64, noise: f64) -> DataConfig {
    let mut cfg =
        DataConfig { train_size: 800, eval_size: 800, geometry_noise: noise, ..Default::default() };
    cfg.shortcut.train = shortcut;
    cfg.shortcut.eval = shortcut;
    cfg
}

/// Image positions (u, v) of a category in frame `t`, read back from the vision
/// tokens: the cell whose sub-cell offset is smallest holds the object's centre.
fn image_position(ds: &Dataset, sample: &Sample, category: usize, t: usize) -> Option<(f64, f64)> {
    let [rows, cols] = ds.vision_grid;
    let mut best: Option<(f64, (f64, f64))> = None;
    for r in 0..rows {
        for c in 0..cols {
            let base = ((t * rows + r) * cols + c) * VISION_CHANNELS;
            let token = &sample.vision[base..base + VISION_CHANNELS];
            if token[category] != 1.0 {
                continue;
            }
            let (ou, ov) = (token[CATEGORY_COUNT + 1] as f64, token[CATEGORY_COUNT + 2] as f64);
            let u = -1.0 + 2.0 / cols as f64 * (c as f64 + 0.5 + ou);
            let v = 1.0 - 2.0 / rows as f64 * (r as f64 + 0.5 - ov);
            let spread = ou.abs().max(ov.abs());
            if best.is_none_or(|(s, _)| spread < s) {
                best = Some((spread, (u, v)));
            }
        }
    }
    best.map(|(_, p)| p)
}

fn category_of(word: &str) -> Option<usize> {
    CATEGORIES.iter().position(|c| *c == word)
}

fn mentioned(sample: &Sample) -> Vec<usize> {
    sample.question.split(' ').filter_map(category_of).collect()
}

fn number(sample: &Sample) -> f64 {
    match sample.answer {
        Answer::Number(x) => x as f64,
        Answer::Choice(_) => panic!("not a numeric sample"),
    }
}

/// The grounding targets put each named object where it stands, and the role
/// targets keep the question's order: from them alone the turns of Rel. Dir. and
/// Route Plan come out as the answers say (swapping two roles would flip them).
#[test]
fn grounding_and_role_targets_follow_the_question() {
    let ds = generate(&DataConfig { train_size: 800, ..config(0.0, 0.0) }, Split::Train);
    let mut checked = 0;
    for s in &ds.samples {
        const W: usize = crate::data::GROUNDING_WIDTH;
        let words = s.grounding.chunks(W).filter(|w| w[W - 1] > 0.0).count();
        assert!(s.grounding.chunks(W).all(|w| w[2] == 0.0 && w[3] == 0.0), "a static object moves: {}", s.question);
        let objects = s.prompt.iter().filter(|&&id| vocab::category(id).is_some()).count();
        if s.subtask != OBJ_COUNT {
            assert_eq!(words, objects, "every object word has a target: {}", s.question);
        }
        let Answer::Choice(k) = s.answer else { continue };
        let roles = crate::data::batcher::role_targets(&s.prompt, &s.grounding);
        let at = |r: usize| Vec3::new(roles[W * r] as f64, 0.0, roles[W * r + 1] as f64);
        let right = |from: Vec3, heading: Vec3, to: Vec3| {
            let o = to - from;
            if heading.z * o.x - heading.x * o.z > 0.0 { "right" } else { "left" }
        };
        let expected = match s.subtask {
            REL_DIRECTION => {
                let (a, b, c) = (at(0), at(1), at(2));
                let front = (b - a).x * (c - a).x + (b - a).z * (c - a).z > 0.0;
                format!("{} {}", if front { "front" } else { "back" }, right(a, b - a, c))
            }
            ROUTE_PLAN if roles[W * 3 + W - 1] > 0.0 => {
                let (a, b, c, d) = (at(0), at(1), at(2), at(3));
                format!("{} {}", right(a, b - a, c), right(c, c - a, d))
            }
            _ => continue,
        };
        assert_eq!(s.options[k], expected, "{}", s.question);
        checked += 1;
    }
    assert!(checked > 100, "only {checked} direction questions");
}

#[test]
fn generation_is_deterministic_and_splits_differ() {
    let cfg = config(0.5, 0.05);
    let a = generate(&cfg, Split::Train).samples;
    assert_eq!(a, generate(&cfg, Split::Train).samples);
    assert_ne!(a, generate(&cfg, Split::Eval).samples);
    let other = DataConfig { seed: 1, ..cfg };
    assert_ne!(a, generate(&other, Split::Train).samples);
}

#[test]
fn a_subtask_selection_keeps_the_size_and_only_those_subtasks() {
    let full = generate(&config(0.5, 0.05), Split::Eval);
    let chosen = vec!["room_size".to_string(), "abs_distance".to_string()];
    let some = generate(&DataConfig { subtasks: chosen, ..config(0.5, 0.05) }, Split::Eval);
    assert_eq!(some.samples.len(), full.samples.len());
    let count = |k: usize| some.samples.iter().filter(|s| s.subtask == k).count();
    // Taken in the benchmark's order whatever the config's, half each.
    assert_eq!((count(ABS_DISTANCE), count(ROOM_SIZE)), (400, 400));
    assert_eq!(some.samples[0].subtask, ABS_DISTANCE);
    // Sample i keeps its own seed, so where both splits ask the same subtask at the
    // same index they hold the same question.
    assert_eq!(some.samples[ROOM_SIZE], full.samples[ROOM_SIZE]);
}

#[test]
fn shapes_subtasks_and_answers_are_consistent() {
    let cfg = DataConfig { geometry_grid: [3, 5], frames: 3, objects: 5, ..config(0.5, 0.05) };
    let ds = generate(&cfg, Split::Train);
    assert_eq!(ds.samples.len(), cfg.train_size);
    for (i, s) in ds.samples.iter().enumerate() {
        assert_eq!(s.subtask, i % SUBTASKS.len());
        assert_eq!(s.vision.len(), ds.n_vision() * VISION_CHANNELS);
        assert_eq!(s.geometry.len(), ds.n_geometry() * GEOMETRY_CHANNELS);
        assert_eq!(s.prompt.len(), PROMPT_LEN);
        assert!(s.geometry.iter().all(|x| x.abs() < 4.5), "geometry out of range");
        let words = s.question.split(' ').count()
            + s.options.iter().map(|o| 1 + o.split(' ').count()).sum::<usize>();
        assert!(words <= PROMPT_LEN, "prompt truncated: {}", s.question);
        match (SUBTASKS[s.subtask].kind, s.answer) {
            (AnswerKind::Choice, Answer::Choice(k)) => {
                assert!(s.num_options >= 2 && s.num_options <= MAX_OPTIONS && k < s.num_options);
                assert_eq!(s.options.len(), s.num_options);
            }
            (AnswerKind::Number, Answer::Number(x)) => {
                assert_eq!(s.num_options, 0);
                assert!(x.is_finite() && x > 0.0);
            }
            _ => panic!("answer kind does not match subtask {}", s.subtask),
        }
        if s.subtask == OBJ_COUNT {
            assert!((1.0..=cfg.objects as f64).contains(&number(s)));
        }
    }
}

#[test]
fn answers_are_balanced_over_option_positions() {
    let ds = generate(&DataConfig { train_size: 4000, ..config(0.5, 0.05) }, Split::Train);
    let mut counts = [0usize; MAX_OPTIONS];
    for s in ds.samples.iter().filter(|s| s.num_options == MAX_OPTIONS) {
        if let Answer::Choice(k) = s.answer {
            counts[k] += 1;
        }
    }
    let total: usize = counts.iter().sum();
    for c in counts {
        let share = c as f64 / total as f64;
        assert!((0.2..0.3).contains(&share), "answer positions unbalanced: {counts:?}");
    }
}

#[test]
fn referenced_objects_are_visible_in_vision() {
    let ds = generate(&config(0.5, 0.05), Split::Train);
    for s in &ds.samples {
        for category in mentioned(s) {
            let seen = (0..ds.frames).any(|t| image_position(&ds, s, category, t).is_some());
            assert!(seen, "{} mentions an object no vision token shows", s.question);
        }
    }
}

/// The shortcut mechanism: with s = 1 every object stands on one arc around the
/// camera, so the option nearest the reference in the image is the nearest in 3D
/// (Rel. Dist. answered from 2D cues alone); with s = 0 that cue misleads about
/// a quarter of the time.
/// The arc's radius is drawn per scene, so metric answers keep their spread at
/// s = 1 (otherwise a constant answer would score as well as any model).
#[test]
fn shortcut_strength_controls_2d_cues() {
    let cues = |shortcut: f64| {
        let ds = generate(&DataConfig { train_size: 4000, ..config(shortcut, 0.05) }, Split::Train);
        let (mut hits, mut asked, mut sizes) = (0, 0, Vec::new());
        for s in &ds.samples {
            if s.subtask == ROOM_SIZE {
                sizes.push(number(s));
            }
            if s.subtask != REL_DISTANCE {
                continue;
            }
            let reference = mentioned(s)[0];
            let separation = |option: &String| {
                let category = category_of(option).expect("rel. distance options are categories");
                (0..ds.frames).find_map(|t| {
                    let (ur, vr) = image_position(&ds, s, reference, t)?;
                    let (u, v) = image_position(&ds, s, category, t)?;
                    Some(((u - ur).powi(2) + (v - vr).powi(2)).sqrt())
                })
            };
            let Some(gaps) = s.options.iter().map(separation).collect::<Option<Vec<f64>>>() else {
                continue;
            };
            let nearest = (0..gaps.len()).min_by(|&a, &b| gaps[a].total_cmp(&gaps[b])).unwrap();
            asked += 1;
            hits += usize::from(Answer::Choice(nearest) == s.answer);
        }
        let log = crate::report::table::Cell { values: sizes.iter().map(|x| x.ln()).collect() };
        (hits as f64 / asked as f64, log.std().expect("room size questions were asked"))
    };
    let (hit_hi, spread_hi) = cues(1.0);
    let (hit_lo, spread_lo) = cues(0.0);
    println!("nearest in image is the answer: s=1 {hit_hi:.2}, s=0 {hit_lo:.2}");
    println!("sd of ln(room size):            s=1 {spread_hi:.2}, s=0 {spread_lo:.2}");
    assert!(hit_hi > 0.8 && hit_lo < hit_hi - 0.2, "{hit_hi} vs {hit_lo}");
    assert!(spread_hi > 0.6 * spread_lo, "{spread_hi} vs {spread_lo}");
}

/// The room does not hug its objects at any shortcut strength: the gap between the
/// outermost object and each far wall spreads as widely at s = 1 as at s = 0, so the
/// objects' positions do not give the room's size in either split.
#[test]
fn wall_gap_ignores_the_shortcut() {
    let gaps = |shortcut: f64| {
        let cfg = config(shortcut, 0.0);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut gaps = Vec::new();
        for _ in 0..400 {
            let categories = draw_categories(cfg.objects, false, &mut rng);
            let scene = Scene::draw(&cfg, shortcut, &categories, &mut rng);
            gaps.push(scene.room.max.x - reach(&scene.objects, |p| p.x));
            gaps.push(scene.room.max.z - reach(&scene.objects, |p| p.z));
        }
        crate::report::table::Cell { values: gaps }.std().expect("400 scenes")
    };
    let (hugging, random) = (gaps(1.0), gaps(0.0));
    println!("sd of the wall gap: s=1 {hugging:.2} m, s=0 {random:.2} m");
    assert!(hugging > 0.4 && hugging > 0.8 * random, "{hugging} vs {random}");
}

/// Geometry carries the truth: with noise-free geometry on the vision grid, the
/// points under the named objects' cells give Abs. Dist. exactly, the turns of
/// Rel. Dir. and Route Plan, and the background points give the room's extent.
/// (So a model that fails these subtasks fails to learn them, not to see them.)
#[test]
fn geometry_tokens_determine_the_answer() {
    let ds = generate(&DataConfig { train_size: 1600, ..config(0.0, 0.0) }, Split::Train);
    let [rows, cols] = ds.vision_grid;
    let cells = rows * cols;
    let point = |s: &Sample, k: usize| {
        let g = &s.geometry[k * GEOMETRY_CHANNELS..(k + 1) * GEOMETRY_CHANNELS];
        Vec3::new(g[0] as f64, g[1] as f64, g[2] as f64)
    };
    let locate = |s: &Sample, category: usize| {
        (0..ds.frames * cells).find(|&k| s.vision[k * VISION_CHANNELS + category] == 1.0).unwrap()
    };
    // Looking along `heading` on the floor, is `offset` in front, and to the right?
    let sides = |heading: Vec3, offset: Vec3| {
        (heading.x * offset.x + heading.z * offset.z > 0.0, heading.z * offset.x - heading.x * offset.z > 0.0)
    };
    let turn = |right: bool| if right { "right" } else { "left" };
    let mut rooms = Vec::new();
    let mut turns = 0;
    for s in &ds.samples {
        let Answer::Choice(k) = s.answer else { continue };
        let at: Vec<Vec3> = mentioned(s).into_iter().map(|c| point(s, locate(s, c))).collect();
        let expected = match s.subtask {
            REL_DIRECTION => {
                let (front, right) = sides(at[1] - at[0], at[2] - at[0]);
                format!("{} {}", if front { "front" } else { "back" }, turn(right))
            }
            ROUTE_PLAN => {
                let first = turn(sides(at[1] - at[0], at[2] - at[0]).1);
                match at.get(3) {
                    Some(&d) => format!("{first} {}", turn(sides(at[2] - at[0], d - at[2]).1)),
                    None => first.to_string(),
                }
            }
            _ => continue,
        };
        assert_eq!(s.options[k], expected, "{}", s.question);
        turns += 1;
    }
    assert!(turns > 200, "only {turns} direction questions");
    for s in &ds.samples {
        if s.subtask == ABS_DISTANCE {
            let refs = mentioned(s);
            let d = (point(s, locate(s, refs[0])) - point(s, locate(s, refs[1]))).norm();
            assert!((d - number(s)).abs() < 1e-4, "{d} vs {:?}", s.answer);
        }
        if s.subtask == ROOM_SIZE {
            let background =
                (0..ds.n_geometry()).filter(|&k| s.geometry[k * GEOMETRY_CHANNELS + 3] == 0.0);
            let (max_x, max_z) = background
                .map(|k| point(s, k))
                .fold((0.0f64, 0.0f64), |(x, z), p| (x.max(p.x), z.max(p.z)));
            rooms.push((4.0 * max_x * max_z, number(s)));
        }
    }
    assert!(!rooms.is_empty());
    for (estimate, truth) in rooms {
        assert!((estimate - truth).abs() < 1e-3 * truth, "room {estimate} vs {truth}");
    }
}

#[test]
fn scenes_are_answerable_on_coarse_and_fine_grids() {
    for (grid, objects) in [([2, 2], 3), ([8, 8], 8), ([4, 6], 12)] {
        let cfg = DataConfig {
            vision_grid: grid,
            geometry_grid: [3, 3],
            objects,
            train_size: 160,
            ..config(0.9, 0.05)
        };
        assert_eq!(generate(&cfg, Split::Train).samples.len(), 160);
    }
}

#[test]
#[ignore = "timing; run with --release -- --ignored --nocapture"]
fn throughput() {
    let cfg = DataConfig { train_size: 100_000, ..Default::default() };
    let start = std::time::Instant::now();
    let n = generate(&cfg, Split::Train).samples.len();
    println!("static: {:.0} samples/s", n as f64 / start.elapsed().as_secs_f64());
}
