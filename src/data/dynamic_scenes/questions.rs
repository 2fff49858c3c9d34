//! The dynamic benchmark's questions: what is asked about a clip, and its answer.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::super::synthetic::{Question, Vec3};
use super::super::vocab::CATEGORIES;
use super::super::MAX_OPTIONS;
use super::Scene;
use crate::benchmark::dsr::{
    ABS_DIRECTION, ABS_DIRECTION_PRED, ABS_DISTANCE, ABS_ORIENTATION, ABS_SPEED, ABS_SPEED_COMP, NON_TEMPLATE,
    REL_DIRECTION, REL_DIRECTION_PRED, REL_DISTANCE, REL_ORIENTATION, REL_SPEED, REL_SPEED_COMP,
};

/// Distance changes and offsets smaller than this are too close to call.
const MARGIN: f64 = 0.2;

pub(super) const DIRECTIONS: [&str; 4] = ["left", "right", "forward", "backward"];

/// The dominant axis of a floor offset in the viewer's axes: 0 left (-x), 1 right
/// (+x), 2 forward (+z, away from the viewer), 3 backward. `None` when short or
/// diagonal, where the label would flip under noise.
pub(super) fn axis_direction(d: Vec3) -> Option<usize> {
    let (ax, az) = (d.x.abs(), d.z.abs());
    if d.flat().norm() < MARGIN {
        None
    } else if ax >= 1.3 * az {
        Some(usize::from(d.x > 0.0))
    } else if az >= 1.3 * ax {
        Some(2 + usize::from(d.z < 0.0))
    } else {
        None
    }
}

const FACINGS: [&str; 4] = ["toward", "away", "left", "right"];

/// How a heading relates to a target (both taken where the clip starts, so that an
/// object heading for a target is not counted as past it): 0 toward it (within 40°), 1 away from it, 2 the
/// target lies on the heading's left, 3 on its right (heading 50°-130° off it).
/// With the viewer as target, 2/3 mean "facing the viewer's left/right" for an object
/// in front of the viewer. `None` in the 10° bands between classes.
fn facing(heading: Vec3, to_target: Vec3) -> Option<usize> {
    let (h, o) = (heading.flat(), to_target.flat());
    let cos = h.dot(o) / (h.norm() * o.norm()).max(1e-9);
    let (toward, sideways) = (40f64.to_radians().cos(), 50f64.to_radians().cos());
    if cos > toward {
        Some(0)
    } else if cos < -toward {
        Some(1)
    } else if cos.abs() < sideways {
        let lateral = h.z * o.x - h.x * o.z; // > 0: target right of the heading
        Some(if lateral > 0.0 { 3 } else { 2 })
    } else {
        None
    }
}

/// The index of the largest value if it beats the runner-up by [`MARGIN`].
fn clear_max(values: &[f64]) -> Option<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    (values[order[0]] - values[order[1]] >= MARGIN).then_some(order[0])
}

fn labels(words: &[&'static str]) -> Vec<Vec<&'static str>> {
    words.iter().map(|w| vec![*w]).collect()
}

/// Poses a question of the given subtask about visible objects; `None` asks for a new
/// scene (too few suitable objects, or an answer within the margins).
pub(super) fn ask(subtask: usize, scene: &Scene, rng: &mut ChaCha8Rng) -> Option<Question> {
    let mut visible: Vec<usize> = (0..scene.speed_class.len()).filter(|&i| scene.visible(i)).collect();
    visible.shuffle(rng);
    // Heading questions need a moving subject: bring one to the front for those only,
    // so that the other subtasks keep still subjects at their natural rate.
    if [ABS_DIRECTION, ABS_ORIENTATION, ABS_DIRECTION_PRED, REL_ORIENTATION].contains(&subtask) {
        let k = visible.iter().position(|&i| scene.speed_class[i] > 0)?;
        visible.swap(0, k);
    }
    let [x, y] = [*visible.first()?, *visible.get(1)?];
    let x_moves = scene.speed_class[x] > 0;
    let name = |i: usize| CATEGORIES[scene.frames[0][i].category];
    let flat_distance = |a: Vec3, b: Vec3| (a - b).flat().norm();
    // closer / farther / same; "same" only for nothing moving, never for a small change.
    let change_class = |change: f64, still: bool| {
        if still {
            Some(2)
        } else if change.abs() < MARGIN {
            None
        } else {
            Some(usize::from(change > 0.0))
        }
    };
    let (words, options, correct): (Vec<&'static str>, Vec<Vec<&'static str>>, usize) = match subtask {
        ABS_DISTANCE => {
            let v = scene.viewer();
            let change = flat_distance(scene.end(x), v) - flat_distance(scene.start(x), v);
            let words = vec!["does", name(x), "get", "closer", "to", "or", "farther", "from", "viewer", "?"];
            (words, labels(&["closer", "farther", "same"]), change_class(change, !x_moves)?)
        }
        ABS_DIRECTION => {
            let words = vec!["which", "way", "does", name(x), "move", "?"];
            (words, labels(&DIRECTIONS), axis_direction(scene.motion(x))?)
        }
        ABS_ORIENTATION => {
            let words = vec!["which", "way", "is", name(x), "facing", "relative", "to", "viewer", "?"];
            (words, labels(&FACINGS), facing(scene.motion(x), scene.viewer() - scene.start(x))?)
        }
        ABS_SPEED => {
            let words = vec!["how", "fast", "does", name(x), "move", "?"];
            (words, labels(&["still", "slow", "fast"]), scene.speed_class[x])
        }
        ABS_SPEED_COMP => {
            let candidates = &visible[..visible.len().min(MAX_OPTIONS)];
            let speeds: Vec<f64> = candidates.iter().map(|&c| scene.motion(c).norm()).collect();
            let words = vec!["which", "object", "moves", "fastest", "?"];
            (words, candidates.iter().map(|&c| vec![name(c)]).collect(), clear_max(&speeds)?)
        }
        ABS_DIRECTION_PRED => {
            let side = scene.predicted(x).x - scene.viewer().x;
            if side.abs() < MARGIN {
                return None;
            }
            let words = vec![
                "if",
                name(x),
                "keeps",
                "moving",
                "which",
                "side",
                "of",
                "viewer",
                "will",
                "it",
                "reach",
                "?",
            ];
            (words, labels(&["left", "right"]), usize::from(side > 0.0))
        }
        REL_DISTANCE => {
            let change =
                flat_distance(scene.end(x), scene.end(y)) - flat_distance(scene.start(x), scene.start(y));
            let both_still = !x_moves && scene.speed_class[y] == 0;
            let words = vec!["do", name(x), "and", name(y), "get", "closer", "or", "farther", "apart", "?"];
            (words, labels(&["closer", "farther", "same"]), change_class(change, both_still)?)
        }
        REL_DIRECTION => {
            let words = vec!["at", "end", "where", "is", name(x), "relative", "to", name(y), "?"];
            (words, labels(&DIRECTIONS), axis_direction(scene.end(x) - scene.end(y))?)
        }
        REL_ORIENTATION => {
            let words = vec!["which", "way", "is", name(x), "heading", "relative", "to", name(y), "?"];
            (words, labels(&FACINGS), facing(scene.motion(x), scene.start(y) - scene.start(x))?)
        }
        REL_SPEED => {
            let relative = (scene.motion(x) - scene.motion(y)).norm();
            let class = match relative {
                r if r < 0.5 => 0,
                r if (0.7..=1.3).contains(&r) => 1,
                r if r > 1.5 => 2,
                _ => return None,
            };
            let words = vec!["how", "fast", "does", name(x), "move", "relative", "to", name(y), "?"];
            (words, labels(&["slow", "medium", "fast"]), class)
        }
        REL_SPEED_COMP => {
            let candidates = &visible[1..visible.len().min(MAX_OPTIONS + 1)];
            if candidates.len() < 2 {
                return None;
            }
            let speeds: Vec<f64> =
                candidates.iter().map(|&c| (scene.motion(c) - scene.motion(x)).norm()).collect();
            let words = vec!["which", "object", "moves", "fastest", "relative", "to", name(x), "?"];
            (words, candidates.iter().map(|&c| vec![name(c)]).collect(), clear_max(&speeds)?)
        }
        REL_DIRECTION_PRED => {
            let words = vec![
                "if",
                "both",
                "keep",
                "moving",
                "where",
                "will",
                name(x),
                "be",
                "relative",
                "to",
                name(y),
                "?",
            ];
            (words, labels(&DIRECTIONS), axis_direction(scene.predicted(x) - scene.predicted(y))?)
        }
        NON_TEMPLATE => {
            let base = rng.random_range(0..NON_TEMPLATE);
            return ask(base, scene, rng).map(|q| paraphrase(q, rng));
        }
        _ => unreachable!("dynamic subtask index {subtask} out of range"),
    };
    Some(Question::choice(words, options, correct, rng))
}

const PREFIXES: [&[&str]; 3] =
    [&["in", "this", "clip", ","], &["please", "answer", ":"], &["tell", "me", ":"]];

const SYNONYMS: [(&str, &str); 11] = [
    ("closer", "nearer"),
    ("farther", "further"),
    ("fast", "quick"),
    ("fastest", "quickest"),
    ("move", "go"),
    ("moves", "goes"),
    ("way", "direction"),
    ("object", "thing"),
    ("viewer", "camera"),
    ("keeps", "continues"),
    ("keep", "continue"),
];

/// Re-words a templated question: a free-form prefix and synonyms, in the options
/// too, so that the non-template column cannot be answered by template matching alone.
fn paraphrase(q: Question, rng: &mut ChaCha8Rng) -> Question {
    let swap = |w: &'static str| SYNONYMS.iter().find(|(from, _)| *from == w).map_or(w, |(_, to)| *to);
    let prefix = PREFIXES[rng.random_range(0..PREFIXES.len())];
    Question {
        words: prefix.iter().copied().chain(q.words.into_iter().map(swap)).collect(),
        options: q.options.into_iter().map(|o| o.into_iter().map(swap).collect()).collect(),
        answer: q.answer,
    }
}
