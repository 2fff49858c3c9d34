//! The static benchmark: procedural rooms, the VSI-Bench analogue of Table 3.
//!
//! # Scene
//! World coordinates are metres with the origin on the floor at the room centre, x to
//! the right, y up, z forward. A room is `W x D` metres (the Room Size answer is
//! `W * D`) and 2.8 m high. The camera stands 0.4 m from the two walls of the (-x, -z)
//! corner, 1.6 m high, pitched 12° down, and pans from yaw 20° to 70° over the `T`
//! frames (yaw 0 looks along +z, 90° along +x), so objects on the left come into view
//! before objects on the right. Objects stand on the floor at azimuth 8°-82° around
//! the camera; the far walls close the room behind them. A corner camera sees both far
//! walls, so the geometry tokens' background points pin down the room's extent; Room
//! Size is only asked when the geometry grid does see both far walls.
//!
//! Numbers are in metres (Abs. Dist. between object centres, Obj. Size as the longest
//! dimension) and square metres (Room Size). Appearance order ranks objects by their
//! first frame in the vision grid, then by image u within that frame (the pan runs left
//! to right), so it is posed even for `T = 1`. Referenced objects are visible in some
//! frame of both grids; scenes that cannot support a question are re-drawn.
//!
//! # The appearance shortcut
//! Strength `s` is `data.shortcut.train` for [`Split::Train`] and `data.shortcut.eval` for
//! [`Split::Eval`]. It interpolates the horizontal distance of each object from the camera
//! between a canonical value (where 2D cues answer the relational questions) and a random
//! one (where they mislead): `rho = s * R + (1 - s) * U(1.2, 4.2)` m, where the arc radius
//! `R ~ U(1.2, 4.2)` m is drawn once per scene. At `s = 1` all objects stand on one arc
//! around the camera, so within a scene apparent size is proportional to true size (Obj.
//! Size), image separation is a monotone function of 3D distance (Abs./Rel. Dist.) and the
//! image layout is the top-down layout (Rel. Dir., Route Plan). At `s = 0` distances spread
//! 3.5x and the same image evidence fits very different rooms. The radius varies so that
//! metric answers keep their spread at any `s`: with a fixed 3 m arc, Room Size answers at
//! `s = 0.9` were so narrow that a constant answer scored 95 MRA, and the models learnt the
//! constant instead of measuring.
//!
//! The gap between the outermost object and each far wall is `U(0, 1.8)` m per axis at
//! every `s`, so only the walls give the room's size exactly. It used to follow the
//! shortcut (0.5 m at `s = 1`: the room hugged its objects), but that cue was not only 2D:
//! the named objects' 3D positions gave the room's size as well, and models trained with
//! `model.grounding`, which read those positions, learnt to answer Room Size from them and
//! underestimated the evaluation rooms (version 2 of the generator; version 3 draws the gap
//! at random).
//!
//! Object counting and appearance order have no dedicated knob: counting inherits the
//! depth spread (near objects cover several cells), and appearance order is a 2D
//! question by design (`needs_geometry = false`). Geometry tokens always carry the true
//! 3D points, up to `data.geometry_noise`.
//!
//! # Shared machinery
//! The camera, renderer, option shuffling and per-sample seeding below are also used by
//! [`super::dynamic_scenes`]; they live here so that the data module stays three files.

use std::ops::{Add, Mul, Sub};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::vocab::{self, CATEGORIES, OPTION_LETTERS, PROMPT_LEN};
use super::{Answer, AnswerKind, Dataset, Sample, Split, Subtask, MAX_OPTIONS};
use crate::config::{Bench, DataConfig};

/// Vision token: category one-hot, apparent size, sub-cell offset (u, v).
pub const VISION_CHANNELS: usize = CATEGORY_COUNT + 3;
/// Geometry token: noisy world point (x, y, z), object flag.
pub const GEOMETRY_CHANNELS: usize = 4;

pub const SUBTASKS: &[Subtask] = &[
    numeric("obj_count", "Obj. Cnt."),
    numeric("abs_distance", "Abs. Dist."),
    numeric("obj_size", "Obj. Size"),
    numeric("room_size", "Room Size"),
    choice("rel_distance", "Rel. Dist.", true),
    choice("rel_direction", "Rel. Dir.", true),
    choice("route_plan", "Route Plan", true),
    choice("appearance_order", "Appr. Order", false),
];

const fn numeric(key: &'static str, name: &'static str) -> Subtask {
    Subtask { key, name, kind: AnswerKind::Number, needs_geometry: true }
}

const fn choice(key: &'static str, name: &'static str, needs_geometry: bool) -> Subtask {
    Subtask { key, name, kind: AnswerKind::Choice, needs_geometry }
}

// Subtask indices, in `SUBTASKS` order.
const OBJ_COUNT: usize = 0;
const ABS_DISTANCE: usize = 1;
const OBJ_SIZE: usize = 2;
const ROOM_SIZE: usize = 3;
const REL_DISTANCE: usize = 4;
const REL_DIRECTION: usize = 5;
const ROUTE_PLAN: usize = 6;
const APPEARANCE_ORDER: usize = 7;

const CATEGORY_COUNT: usize = 12;

/// Typical longest dimension (m) of each category, in [`CATEGORIES`] order; each
/// object scales it by U(0.75, 1.25) so that category alone does not give Obj. Size.
pub(super) const CATEGORY_SIZES: [f64; CATEGORY_COUNT] =
    [0.9, 1.4, 2.0, 2.0, 1.5, 1.1, 0.8, 2.0, 1.2, 1.8, 0.6, 1.3];

const FOCAL: f64 = 1.732; // 60° field of view
const CAMERA_HEIGHT: f64 = 1.6;
const CAMERA_PITCH_DEG: f64 = -12.0;
const ROOM_HEIGHT: f64 = 2.8;
/// Distance from the camera to each of the two walls behind it.
const WALL_GAP: f64 = 0.4;
const PAN_DEG: (f64, f64) = (20.0, 70.0);
const AZIMUTH_DEG: (f64, f64) = (8.0, 82.0);
const DISTANCE_RANGE: (f64, f64) = (1.2, 4.2);
const MARGIN_RANGE: (f64, f64) = (0.0, 1.8);
/// Objects keep their centres this fraction of their summed sizes apart on the floor.
const SPACING: f64 = 0.3;

/// Generates the static split; see the module doc for the scene and the shortcut.
pub fn generate(cfg: &DataConfig, split: Split) -> Dataset {
    assert!(
        (3..=CATEGORY_COUNT).contains(&cfg.objects),
        "static scenes need 3..=12 objects (distinct categories), got {}",
        cfg.objects
    );
    assert!(cfg.frames >= 1, "static scenes need at least one frame");
    let s = shortcut_strength(cfg, split);
    let chosen = super::chosen_subtasks(cfg);
    let samples = (0..split_size(cfg, split))
        .map(|i| {
            let mut rng = sample_rng(cfg.seed, split, BENCH_SALT, i);
            make_sample(cfg, s, chosen[i % chosen.len()], &mut rng)
        })
        .collect();
    Dataset {
        bench: Bench::Static,
        subtasks: SUBTASKS,
        samples,
        frames: cfg.frames,
        vision_grid: cfg.vision_grid,
        geometry_grid: cfg.geometry_grid,
        vision_channels: VISION_CHANNELS,
        category_channels: CATEGORY_COUNT,
        geometry_channels: GEOMETRY_CHANNELS,
        question_types: None,
        fingerprint: None,
    }
}

const BENCH_SALT: u64 = 0x5354_4154_4943_0000; // "STATIC"

fn make_sample(cfg: &DataConfig, s: f64, subtask: usize, rng: &mut ChaCha8Rng) -> Sample {
    redraw_until(subtask, || {
        let categories = draw_categories(cfg.objects, subtask == OBJ_COUNT, rng);
        let scene = Scene::draw(cfg, s, &categories, rng);
        let question = ask(subtask, &scene, rng)?;
        let (vision, geometry) = scene.tokens(cfg, rng);
        let mut sample = question.into_sample(subtask, vision, geometry);
        sample.grounding = grounding(&sample.prompt, &scene.objects);
        Some(sample)
    })
}

/// Distinct categories, except for counting questions: there the first category is
/// repeated 1..=n times so that the count (the first object's category) varies.
fn draw_categories(n: usize, counting: bool, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut pool: Vec<usize> = (0..CATEGORY_COUNT).collect();
    pool.shuffle(rng);
    if !counting {
        return pool[..n].to_vec();
    }
    let copies = rng.random_range(1..=n);
    let mut categories = vec![pool[0]; copies];
    categories.extend_from_slice(&pool[1..=n - copies]);
    categories
}

struct Scene {
    room: Enclosure,
    objects: Vec<Body>,
    cameras: Vec<Camera>,
    /// What each vision / geometry cell sees, per frame.
    vision: Vec<Vec<Seen>>,
    geometry: Vec<Vec<Seen>>,
}

impl Scene {
    /// Places the objects around the corner camera, closes the room behind them and
    /// renders every frame.
    fn draw(cfg: &DataConfig, s: f64, categories: &[usize], rng: &mut ChaCha8Rng) -> Scene {
        // Positions relative to the camera's foot; the room is fitted around them below.
        let mut objects: Vec<Body> = Vec::with_capacity(categories.len());
        // The radius of the scene's arc: drawn per scene so that the answers keep their
        // spread however strong the shortcut is.
        let arc = rng.random_range(DISTANCE_RANGE.0..DISTANCE_RANGE.1);
        for &category in categories {
            let size = CATEGORY_SIZES[category] * rng.random_range(0.75..1.25);
            let height = (0.5 * size).clamp(0.3, 1.2);
            let mut spot = || {
                let azimuth = uniform_deg(rng, AZIMUTH_DEG);
                let spread = rng.random_range(DISTANCE_RANGE.0..DISTANCE_RANGE.1);
                let rho = s * arc + (1.0 - s) * spread;
                Vec3::new(rho * azimuth.sin(), height, rho * azimuth.cos())
            };
            let clear =
                |p: &Vec3| objects.iter().all(|o| (o.center - *p).flat().norm() >= SPACING * (o.size + size));
            // Crowded scenes (many objects on one arc) may have no free spot; then the
            // object overlaps a neighbour and occlusion decides what stays visible.
            let spot = (0..30).map(|_| spot()).find(clear).unwrap_or_else(spot);
            objects.push(Body { category, center: spot, size });
        }

        let mut margin = || rng.random_range(MARGIN_RANGE.0..MARGIN_RANGE.1);
        let width = WALL_GAP + reach(&objects, |p| p.x) + margin();
        let depth = WALL_GAP + reach(&objects, |p| p.z) + margin();
        let shift = Vec3::new(width / 2.0 - WALL_GAP, 0.0, depth / 2.0 - WALL_GAP);
        for o in &mut objects {
            o.center = o.center - shift;
        }
        let room = Enclosure {
            min: Vec3::new(-width / 2.0, 0.0, -depth / 2.0),
            max: Vec3::new(width / 2.0, ROOM_HEIGHT, depth / 2.0),
        };

        let position = Vec3::new(-width / 2.0 + WALL_GAP, CAMERA_HEIGHT, -depth / 2.0 + WALL_GAP);
        let cameras: Vec<Camera> = (0..cfg.frames)
            .map(|t| {
                let progress = if cfg.frames == 1 { 0.5 } else { t as f64 / (cfg.frames - 1) as f64 };
                let yaw = PAN_DEG.0 + (PAN_DEG.1 - PAN_DEG.0) * progress;
                Camera::new(position, yaw.to_radians(), CAMERA_PITCH_DEG.to_radians(), FOCAL)
            })
            .collect();
        let vision = cameras.iter().map(|c| render(c, &objects, cfg.vision_grid, &room)).collect();
        let geometry = cameras.iter().map(|c| render(c, &objects, cfg.geometry_grid, &room)).collect();
        Scene { room, objects, cameras, vision, geometry }
    }

    /// Seen in some frame of the vision grid and some frame of the geometry grid:
    /// the condition for a question to mention the object.
    fn visible(&self, id: usize) -> bool {
        let seen = |frames: &[Vec<Seen>]| frames.iter().any(|cells| shows(cells, id));
        seen(&self.vision) && seen(&self.geometry)
    }

    /// Whether some geometry cell hits each far wall. World coordinates are centred on
    /// the room, so those points give half the width and half the depth.
    fn sees_far_walls(&self) -> bool {
        let hits = |on_wall: &dyn Fn(Vec3) -> bool| {
            self.geometry.iter().flatten().any(|c| matches!(*c, Seen::Background(p) if on_wall(p)))
        };
        hits(&|p| (p.x - self.room.max.x).abs() < 1e-9) && hits(&|p| (p.z - self.room.max.z).abs() < 1e-9)
    }

    /// (first frame the object shows in the vision grid, its image u there).
    fn first_appearance(&self, id: usize) -> Option<(usize, f64)> {
        let t = self.vision.iter().position(|cells| shows(cells, id))?;
        Some((t, self.cameras[t].project(self.objects[id].center)?.u))
    }

    fn tokens(&self, cfg: &DataConfig, rng: &mut ChaCha8Rng) -> (Vec<f32>, Vec<f32>) {
        let mut vision = Vec::with_capacity(self.vision.len() * self.vision[0].len() * VISION_CHANNELS);
        for cell in self.vision.iter().flatten() {
            let mut token = [0.0f32; VISION_CHANNELS];
            if let Seen::Object { id, offset, apparent, .. } = *cell {
                token[self.objects[id].category] = 1.0;
                token[CATEGORY_COUNT] = apparent as f32;
                token[CATEGORY_COUNT + 1] = offset[0] as f32;
                token[CATEGORY_COUNT + 2] = offset[1] as f32;
            }
            vision.extend_from_slice(&token);
        }
        let noise = cfg.geometry_noise;
        let mut geometry =
            Vec::with_capacity(self.geometry.len() * self.geometry[0].len() * GEOMETRY_CHANNELS);
        for cell in self.geometry.iter().flatten() {
            let (point, flag) = match *cell {
                Seen::Object { id, .. } => (self.objects[id].center, 1.0),
                Seen::Background(point) => (point, 0.0),
            };
            let p = point + gaussian3(rng) * noise;
            geometry.extend_from_slice(&[p.x as f32, p.y as f32, p.z as f32, flag]);
        }
        (vision, geometry)
    }
}

/// Poses a question of the given subtask about visible objects only; `None` asks for
/// a new scene (too few visible objects, or an answer too close to call).
fn ask(subtask: usize, scene: &Scene, rng: &mut ChaCha8Rng) -> Option<Question> {
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

/// [`Sample::grounding`]: the floor position (x, z) of the object each prompt word
/// names, where the word names exactly one of `objects`.
pub(super) fn grounding(prompt: &[u32], objects: &[Body]) -> Vec<f32> {
    let mut out = vec![0.0f32; 3 * prompt.len()];
    for (j, &id) in prompt.iter().enumerate() {
        let Some(category) = vocab::category(id) else { continue };
        let mut named = objects.iter().filter(|o| o.category == category);
        if let (Some(o), None) = (named.next(), named.next()) {
            out[3 * j..3 * j + 3].copy_from_slice(&[o.center.x as f32, o.center.z as f32, 1.0]);
        }
    }
    out
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

// ---------------------------------------------------------------------------------
// Shared machinery (also used by `dynamic_scenes`).
// ---------------------------------------------------------------------------------

/// Scenes are re-drawn until a question can be posed; a config where that keeps
/// failing (e.g. a 1x1 grid with many objects) is rejected loudly instead of looping.
pub(super) fn redraw_until(subtask: usize, mut attempt: impl FnMut() -> Option<Sample>) -> Sample {
    const MAX_ATTEMPTS: usize = 2000;
    (0..MAX_ATTEMPTS).find_map(|_| attempt()).unwrap_or_else(|| {
        panic!(
            "no answerable scene for subtask {subtask} after {MAX_ATTEMPTS} draws; \
             the grids may be too coarse for the number of objects"
        )
    })
}

pub(super) fn split_size(cfg: &DataConfig, split: Split) -> usize {
    match split {
        Split::Train => cfg.train_size,
        Split::Eval => cfg.eval_size,
    }
}

/// How far the objects extend along one floor axis, their clearance included: the room's
/// far walls stand a margin beyond it.
fn reach(objects: &[Body], axis: fn(&Vec3) -> f64) -> f64 {
    objects.iter().map(|o| axis(&o.center) + SPACING * o.size).fold(f64::MIN, f64::max)
}

pub(super) fn shortcut_strength(cfg: &DataConfig, split: Split) -> f64 {
    let s = match split {
        Split::Train => cfg.shortcut.train,
        Split::Eval => cfg.shortcut.eval,
    };
    s.clamp(0.0, 1.0)
}

/// One independent stream per sample, so that sample `i` does not depend on how many
/// random numbers earlier samples consumed (re-draws included).
pub(super) fn sample_rng(seed: u64, split: Split, bench_salt: u64, index: usize) -> ChaCha8Rng {
    let split_salt = match split {
        Split::Train => 0x7472_6169_6e00_0000, // "train"
        Split::Eval => 0x6576_616c_0000_0000,  // "eval"
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ split_salt ^ bench_salt);
    rng.set_stream(index as u64);
    rng
}

pub(super) fn uniform_deg(rng: &mut impl Rng, range_deg: (f64, f64)) -> f64 {
    rng.random_range(range_deg.0..range_deg.1).to_radians()
}

/// Standard normal draw (Box-Muller); avoids a dependency for the one distribution we need.
pub(super) fn gaussian(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

pub(super) fn gaussian3(rng: &mut impl Rng) -> Vec3 {
    Vec3::new(gaussian(rng), gaussian(rng), gaussian(rng))
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(super) struct Vec3 {
    pub x: f64,
    pub y: f64,
    pub z: f64,
}

impl Vec3 {
    pub const fn new(x: f64, y: f64, z: f64) -> Self {
        Vec3 { x, y, z }
    }
    pub fn dot(self, o: Vec3) -> f64 {
        self.x * o.x + self.y * o.y + self.z * o.z
    }
    pub fn norm(self) -> f64 {
        self.dot(self).sqrt()
    }
    /// The floor-plane part; top-down relations (left of, closer to) ignore height.
    pub fn flat(self) -> Vec3 {
        Vec3::new(self.x, 0.0, self.z)
    }
}

impl Add for Vec3 {
    type Output = Vec3;
    fn add(self, o: Vec3) -> Vec3 {
        Vec3::new(self.x + o.x, self.y + o.y, self.z + o.z)
    }
}

impl Sub for Vec3 {
    type Output = Vec3;
    fn sub(self, o: Vec3) -> Vec3 {
        Vec3::new(self.x - o.x, self.y - o.y, self.z - o.z)
    }
}

impl Mul<f64> for Vec3 {
    type Output = Vec3;
    fn mul(self, k: f64) -> Vec3 {
        Vec3::new(self.x * k, self.y * k, self.z * k)
    }
}

/// An axis-aligned box the camera is inside: walls, floor and ceiling are what a
/// cell sees when no object is in the way.
#[derive(Debug, Clone, Copy)]
pub(super) struct Enclosure {
    pub min: Vec3,
    pub max: Vec3,
}

impl Enclosure {
    /// Where a ray from `origin` (inside the box) leaves it.
    pub fn exit(&self, origin: Vec3, dir: Vec3) -> Vec3 {
        let along = |o: f64, d: f64, lo: f64, hi: f64| {
            if d > 1e-9 {
                (hi - o) / d
            } else if d < -1e-9 {
                (lo - o) / d
            } else {
                f64::INFINITY
            }
        };
        let t = along(origin.x, dir.x, self.min.x, self.max.x)
            .min(along(origin.y, dir.y, self.min.y, self.max.y))
            .min(along(origin.z, dir.z, self.min.z, self.max.z));
        origin + dir * t
    }
}

/// A pinhole camera with yaw (0 looks along +z, positive turns toward +x) and pitch
/// (negative looks down). Image coordinates u (right) and v (up) span [-1, 1] over a
/// square image, so `focal = 1 / tan(half field of view)`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Camera {
    pub position: Vec3,
    pub focal: f64,
    forward: Vec3,
    right: Vec3,
    up: Vec3,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Projection {
    pub u: f64,
    pub v: f64,
    pub depth: f64,
}

impl Camera {
    pub fn new(position: Vec3, yaw: f64, pitch: f64, focal: f64) -> Self {
        let (sy, cy, sp, cp) = (yaw.sin(), yaw.cos(), pitch.sin(), pitch.cos());
        Camera {
            position,
            focal,
            forward: Vec3::new(sy * cp, sp, cy * cp),
            right: Vec3::new(cy, 0.0, -sy),
            up: Vec3::new(-sy * sp, cp, -cy * sp),
        }
    }

    /// Image position and depth of a world point; `None` behind the camera.
    pub fn project(&self, p: Vec3) -> Option<Projection> {
        let d = p - self.position;
        let depth = d.dot(self.forward);
        (depth > 0.1).then(|| Projection {
            u: self.focal * d.dot(self.right) / depth,
            v: self.focal * d.dot(self.up) / depth,
            depth,
        })
    }

    fn ray(&self, u: f64, v: f64) -> Vec3 {
        self.forward + self.right * (u / self.focal) + self.up * (v / self.focal)
    }
}

/// An object: a category and a cube-like extent around its centre, rendered as a
/// square of side `focal * size / depth` in the image.
#[derive(Debug, Clone, Copy)]
pub(super) struct Body {
    pub category: usize,
    pub center: Vec3,
    pub size: f64,
}

/// What one grid cell sees.
#[derive(Debug, Clone, Copy)]
pub(super) enum Seen {
    Object {
        id: usize,
        /// Object centre minus cell centre, in cell widths / heights.
        offset: [f64; 2],
        /// Projected side length as a fraction of the image width (true size / depth).
        apparent: f64,
        proj: Projection,
    },
    /// The wall, floor or ceiling point behind the cell centre.
    Background(Vec3),
}

/// Whether any cell of a frame shows object `id`.
pub(super) fn shows(cells: &[Seen], id: usize) -> bool {
    cells.iter().any(|c| matches!(*c, Seen::Object { id: seen, .. } if seen == id))
}

/// Renders one frame onto a `grid[0] x grid[1]` grid, cells row-major from the top
/// left. A cell shows the nearest object that either covers the cell centre or has
/// its own centre inside the cell; the second rule keeps small, far objects from
/// falling between cell centres, so only real occlusion hides an object in view.
pub(super) fn render(cam: &Camera, bodies: &[Body], grid: [usize; 2], room: &Enclosure) -> Vec<Seen> {
    let projections: Vec<Option<Projection>> = bodies.iter().map(|b| cam.project(b.center)).collect();
    let (rows, cols) = (grid[0], grid[1]);
    let (cell_w, cell_h) = (2.0 / cols as f64, 2.0 / rows as f64);
    let mut cells = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        let vc = 1.0 - cell_h * (r as f64 + 0.5);
        for c in 0..cols {
            let uc = -1.0 + cell_w * (c as f64 + 0.5);
            let mut best: Option<(usize, Projection)> = None;
            for (id, (body, proj)) in bodies.iter().zip(&projections).enumerate() {
                let Some(p) = *proj else { continue };
                let half = 0.5 * cam.focal * body.size / p.depth;
                let (du, dv) = ((p.u - uc).abs(), (p.v - vc).abs());
                let covers = du <= half && dv <= half;
                let centred = du <= 0.5 * cell_w && dv <= 0.5 * cell_h;
                if (covers || centred) && best.is_none_or(|(_, q)| p.depth < q.depth) {
                    best = Some((id, p));
                }
            }
            cells.push(match best {
                Some((id, p)) => Seen::Object {
                    id,
                    offset: [((p.u - uc) / cell_w).clamp(-2.0, 2.0), ((p.v - vc) / cell_h).clamp(-2.0, 2.0)],
                    apparent: (0.5 * cam.focal * bodies[id].size / p.depth).min(1.5),
                    proj: p,
                },
                None => Seen::Background(room.exit(cam.position, cam.ray(uc, vc))),
            });
        }
    }
    cells
}

/// A question before tokenization: template words and option words.
pub(super) struct Question {
    pub words: Vec<&'static str>,
    pub options: Vec<Vec<&'static str>>,
    pub answer: Answer,
}

impl Question {
    pub fn number(words: Vec<&'static str>, value: f64) -> Self {
        Question { words, options: Vec::new(), answer: Answer::Number(value as f32) }
    }

    /// `options[correct]` is right. Options are shuffled so that every position is
    /// equally likely to hold the answer; otherwise position would be a shortcut too.
    pub fn choice(
        words: Vec<&'static str>,
        options: Vec<Vec<&'static str>>,
        correct: usize,
        rng: &mut impl Rng,
    ) -> Self {
        assert!((2..=MAX_OPTIONS).contains(&options.len()) && correct < options.len());
        let mut order: Vec<usize> = (0..options.len()).collect();
        order.shuffle(rng);
        let answer = order.iter().position(|&k| k == correct).expect("correct option is in the order");
        let options = order.iter().map(|&k| options[k].clone()).collect();
        Question { words, options, answer: Answer::Choice(answer) }
    }

    pub fn into_sample(self, subtask: usize, vision: Vec<f32>, geometry: Vec<f32>) -> Sample {
        let mut prompt = self.words.clone();
        for (letter, option) in OPTION_LETTERS.iter().zip(&self.options) {
            prompt.push(letter);
            prompt.extend(option);
        }
        debug_assert!(prompt.len() <= PROMPT_LEN, "prompt too long: {prompt:?}");
        Sample {
            subtask,
            vision,
            geometry,
            prompt: vocab::encode(&prompt),
            num_options: self.options.len(),
            answer: self.answer,
            question: self.words.join(" "),
            options: self.options.iter().map(|o| o.join(" ")).collect(),
            grounding: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let words = s.grounding.chunks(3).filter(|w| w[2] > 0.0).count();
            let objects = s.prompt.iter().filter(|&&id| vocab::category(id).is_some()).count();
            if s.subtask != OBJ_COUNT {
                assert_eq!(words, objects, "every object word has a target: {}", s.question);
            }
            let Answer::Choice(k) = s.answer else { continue };
            let roles = crate::data::batcher::role_targets(&s.prompt, &s.grounding);
            let at = |r: usize| Vec3::new(roles[3 * r] as f64, 0.0, roles[3 * r + 1] as f64);
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
                ROUTE_PLAN if roles[11] > 0.0 => {
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
}
