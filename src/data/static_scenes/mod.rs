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
//! Strength `s` is `data.shortcut.train` for [`Split::Train`](super::Split::Train) and
//! `data.shortcut.eval` for [`Split::Eval`](super::Split::Eval). It interpolates the
//! horizontal distance of each object from the camera between a canonical value (where 2D
//! cues answer the relational questions) and a random one (where they mislead):
//! `rho = s * R + (1 - s) * U(1.2, 4.2)` m, where the arc radius `R ~ U(1.2, 4.2)` m is
//! drawn once per scene. At `s = 1` all objects stand on one arc around the camera, so within a
//! scene apparent size is proportional to true size (Obj. Size), image separation is a
//! monotone function of 3D distance (Abs./Rel. Dist.) and the image layout is the
//! top-down layout (Rel. Dir., Route Plan). At `s = 0` distances spread 3.5x and the same
//! image evidence fits very different rooms. The radius varies so that metric answers
//! keep their spread at any `s`: with a fixed 3 m arc, Room Size answers at `s = 0.9`
//! were so narrow that a constant answer scored 95 MRA, and the models learnt the
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

mod questions;
#[cfg(test)]
mod tests;

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::synthetic::{
    corrupt_geometry, gaussian3, grounding, render, shows, uniform_deg, Body, Camera, Enclosure, Scenes, Seen, Vec3, CATEGORY_COUNT,
    CATEGORY_SIZES,
};
use super::Sample;
use crate::benchmark::vsi::OBJ_COUNT;
use crate::config::{Bench, DataConfig};
use questions::ask;

/// Vision token: category one-hot, apparent size, sub-cell offset (u, v).
pub const VISION_CHANNELS: usize = CATEGORY_COUNT + 3;
/// Geometry token: noisy world point (x, y, z), object flag.
pub const GEOMETRY_CHANNELS: usize = 4;

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

/// The static benchmark's scenes; see the module doc for the scene and the shortcut.
pub(super) struct Rooms;

impl Scenes for Rooms {
    const BENCH: Bench = Bench::Static;
    const NAME: &'static str = "static";
    const MIN_FRAMES: (usize, &'static str) = (1, "at least one frame");
    const SALT: u64 = 0x5354_4154_4943_0000; // "STATIC"
    const VISION_CHANNELS: usize = VISION_CHANNELS;
    const GEOMETRY_CHANNELS: usize = GEOMETRY_CHANNELS;

    fn draw(cfg: &DataConfig, s: f64, subtask: usize, rng: &mut ChaCha8Rng) -> Option<Sample> {
        let categories = draw_categories(cfg.objects, subtask == OBJ_COUNT, rng);
        let scene = Scene::draw(cfg, s, &categories, rng);
        let question = ask(subtask, &scene, rng)?;
        let (vision, mut geometry) = scene.tokens(cfg, rng);
        corrupt_geometry(&mut geometry, GEOMETRY_CHANNELS, cfg, &scene.room, rng);
        let mut sample = question.into_sample(subtask, vision, geometry);
        sample.grounding = grounding(&sample.prompt, &scene.objects, &scene.objects);
        Some(sample)
    }
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

/// How far the objects extend along one floor axis, their clearance included: the room's
/// far walls stand a margin beyond it.
fn reach(objects: &[Body], axis: fn(&Vec3) -> f64) -> f64 {
    objects.iter().map(|o| axis(&o.center) + SPACING * o.size).fold(f64::MIN, f64::max)
}
