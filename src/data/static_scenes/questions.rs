//! The static benchmark's questions: what is asked about a scene, and its answer.

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::super::synthetic::{Question, Vec3};
use super::super::vocab::CATEGORIES;
use super::super::MAX_OPTIONS;
use super::Scene;
use crate::benchmark::vsi::{
    ABS_DISTANCE, APPEARANCE_ORDER, OBJ_COUNT, OBJ_SIZE, REL_DIRECTION, REL_DISTANCE, ROOM_SIZE, ROUTE_PLAN,
};

/// Poses a question of the given subtask about visible objects only; `None` asks for
/// a new scene (too few visible objects, or an answer too close to call).
pub(super) fn ask(subtask: usize, scene: &Scene, rng: &mut ChaCha8Rng) -> Option<Question> {
    let mut visible: Vec<usize> = (0..scene.objects.len()).filter(|&i| scene.visible(i)).collect();
    visible.shuffle(rng);
    let name = |i: usize| CATEGORIES[scene.objects[i].category];
    let pos = |i: usize| scene.objects[i].center;
    match subtask {
        OBJ_COUNT => {
            // Object 0 carries the counted category (see `draw_categories`); every copy
            // must be visible or the tokens would not support the count.
            let target = scene.objects[0].category;
            let copies: Vec<usize> =
                (0..scene.objects.len()).filter(|&i| scene.objects[i].category == target).collect();
            if !copies.iter().all(|&i| scene.visible(i)) {
                return None;
            }
            let words = vec!["how", "many", CATEGORIES[target], "are", "there", "?"];
            Some(Question::number(words, copies.len() as f64))
        }
        ABS_DISTANCE => {
            let (a, b) = (*visible.first()?, *visible.get(1)?);
            let words = vec!["how", "far", "is", name(a), "from", name(b), "in", "meters", "?"];
            Some(Question::number(words, (pos(a) - pos(b)).norm()))
        }
        OBJ_SIZE => {
            let a = *visible.first()?;
            let words = vec!["how", "long", "is", "longest", "side", "of", name(a), "in", "meters", "?"];
            Some(Question::number(words, scene.objects[a].size))
        }
        ROOM_SIZE => {
            if !scene.sees_far_walls() {
                return None;
            }
            let extent = scene.room.max - scene.room.min;
            let words = vec!["what", "is", "room", "area", "in", "square", "meters", "?"];
            Some(Question::number(words, extent.x * extent.z))
        }
        REL_DISTANCE => {
            let reference = *visible.first()?;
            let candidates = &visible[1..visible.len().min(MAX_OPTIONS + 1)];
            if candidates.len() < 2 {
                return None;
            }
            let mut by_distance: Vec<(f64, usize)> =
                candidates.iter().enumerate().map(|(k, &c)| ((pos(c) - pos(reference)).norm(), k)).collect();
            by_distance.sort_by(|x, y| x.0.total_cmp(&y.0));
            if by_distance[1].0 - by_distance[0].0 < 0.15 {
                return None;
            }
            let words = vec!["which", "is", "closest", "to", name(reference), "?"];
            let options = candidates.iter().map(|&c| vec![name(c)]).collect();
            Some(Question::choice(words, options, by_distance[0].1, rng))
        }
        REL_DIRECTION => {
            let [a, b, c] = [*visible.first()?, *visible.get(1)?, *visible.get(2)?];
            let heading = pos(b) - pos(a);
            let (ahead, lateral) = floor_components(heading, pos(c) - pos(a))?;
            let words = vec!["standing", "at", name(a), "facing", name(b), "where", "is", name(c), "?"];
            let options = vec![
                vec!["front", "left"],
                vec!["front", "right"],
                vec!["back", "left"],
                vec!["back", "right"],
            ];
            let correct = 2 * usize::from(ahead < 0.0) + usize::from(lateral > 0.0);
            Some(Question::choice(words, options, correct, rng))
        }
        ROUTE_PLAN => route_plan(&visible, scene, rng),
        APPEARANCE_ORDER => {
            let candidates = &visible[..visible.len().min(MAX_OPTIONS)];
            if candidates.len() < 2 {
                return None;
            }
            let mut order: Vec<((usize, f64), usize)> = candidates
                .iter()
                .enumerate()
                .map(|(k, &c)| Some((scene.first_appearance(c)?, k)))
                .collect::<Option<_>>()?;
            order.sort_by(|x, y| x.0 .0.cmp(&y.0 .0).then(x.0 .1.total_cmp(&y.0 .1)));
            let ((first_t, first_u), (second_t, second_u)) = (order[0].0, order[1].0);
            if first_t == second_t && second_u - first_u < 0.1 {
                return None;
            }
            let words = vec!["which", "appears", "first", "in", "video", "?"];
            let options = candidates.iter().map(|&c| vec![name(c)]).collect();
            Some(Question::choice(words, options, order[0].1, rng))
        }
        _ => unreachable!("static subtask index {subtask} out of range"),
    }
}

/// Route Plan proxy: standing at A facing B, walk to C, then on to D. The answer is
/// the pair of turns (left/right at A, then left/right at C, where the walker faces
/// along A->C); with only three visible objects the route stops at C and has one turn.
fn route_plan(visible: &[usize], scene: &Scene, rng: &mut ChaCha8Rng) -> Option<Question> {
    let name = |i: usize| CATEGORIES[scene.objects[i].category];
    let pos = |i: usize| scene.objects[i].center;
    let [a, b, c] = [*visible.first()?, *visible.get(1)?, *visible.get(2)?];
    let turn = |from: Vec3, heading: Vec3, to: Vec3| {
        let (_, lateral) = floor_components(heading, to - from)?;
        Some(usize::from(lateral > 0.0)) // 0 = left, 1 = right
    };
    let first = turn(pos(a), pos(b) - pos(a), pos(c))?;
    let mut words = vec!["from", name(a), "facing", name(b), "walk", "to", name(c)];
    match visible.get(3) {
        Some(&d) => {
            let second = turn(pos(c), pos(c) - pos(a), pos(d))?;
            words.extend(["then", name(d), "?"]);
            let options = vec![
                vec!["left", "left"],
                vec!["left", "right"],
                vec!["right", "left"],
                vec!["right", "right"],
            ];
            Some(Question::choice(words, options, 2 * first + second, rng))
        }
        None => {
            words.push("?");
            Some(Question::choice(words, vec![vec!["left"], vec!["right"]], first, rng))
        }
    }
}

/// (ahead, lateral) components of `offset` on the floor relative to `heading`
/// (lateral > 0 is to the right). `None` when the offset lies within ~11° of the
/// heading's axes, where "left" or "behind" would be a coin flip under noise.
fn floor_components(heading: Vec3, offset: Vec3) -> Option<(f64, f64)> {
    let h = heading.flat();
    let o = offset.flat();
    let (hn, on) = (h.norm(), o.norm());
    if hn < 1e-6 || on < 1e-6 {
        return None;
    }
    let ahead = h.dot(o) / hn;
    let lateral = (h.z * o.x - h.x * o.z) / hn; // right of heading = (h.z, -h.x)
    let clear = 0.2 * on;
    (ahead.abs() >= clear && lateral.abs() >= clear).then_some((ahead, lateral))
}
