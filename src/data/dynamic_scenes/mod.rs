//! The dynamic benchmark: moving objects filmed by a moving camera, the DSR-Bench
//! analogue of Table 4.
//!
//! # Scene
//! World coordinates are metres in the axes of the first camera (x right, y up, z
//! forward), with the origin on the floor at the centre of a 3 x 3 m arena, as a
//! pi3-style model reports points in its first frame. Objects start in the arena; each
//! is still, slow (0.4-0.7 m over the clip) or fast (1.1-1.6 m), with equal odds,
//! moving in a straight line in a uniformly random direction and facing where it goes.
//! The clip runs over `T >= 2` frames; questions compare the first and the last frame.
//!
//! "Absolute" questions are asked w.r.t. the *viewer*, the first camera (its position
//! and axes); "relative" ones w.r.t. another object; both in the viewer's axes.
//! Referenced objects are visible in the first and last frame of both grids, and
//! answers within a margin of a class boundary are re-drawn rather than guessed.
//! Non-template questions re-ask a random other subtask with a prefix and synonyms.
//!
//! # The ego-motion shortcut
//! The camera orbits the arena centre (always looking at it from 2.5 m high, so the
//! objects stay in view). Frame 0 is fixed at orbit angle 0 and radius 3.5 m; every later
//! frame `t` draws its own angle `(1 - s) * U(-180°, 180°)` and radius
//! `3.5 + (1 - s) * U(-0.75, 0.75)` m, with `s` = `data.shortcut.train` / `.eval`. At `s = 1`
//! the camera stands still and image motion is the projection of world motion, so
//! "moves left" means "moves left on screen". At `s = 0` the viewpoint of later frames
//! is anywhere on the circle: image motion is dominated by the camera, and 2D cues are
//! close to chance on world-frame answers (the sign of du matches a left/right Abs. Dir.
//! answer 100% of the time at `s = 1`, about 60% at `s = 0`; see the tests). Geometry tokens always carry world
//! points and world displacements, up to `data.geometry_noise`.

mod questions;

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::synthetic::{
    corrupt_geometry, gaussian3, grounding, render, shows, Body, Camera, Enclosure, Scenes, Seen, Vec3, CATEGORY_COUNT, CATEGORY_SIZES,
};
use super::Sample;
use crate::config::{Bench, DataConfig};
use questions::ask;

/// Vision token: category one-hot, apparent size, sub-cell offset (u, v), image
/// motion since the previous frame (du, dv).
pub const VISION_CHANNELS: usize = CATEGORY_COUNT + 5;
/// Geometry token: noisy world point (x, y, z), object flag, world displacement
/// since the previous frame (dx, dy, dz).
pub const GEOMETRY_CHANNELS: usize = 7;

const FOCAL: f64 = 1.732; // 60° field of view
const CAMERA_HEIGHT: f64 = 2.5;
const LOOK_AT_HEIGHT: f64 = 0.5;
const ORBIT_RADIUS: f64 = 3.5;
const MAX_RADIUS_JITTER: f64 = 0.75;
const ARENA_HALF: f64 = 1.5;
/// Displacement over the whole clip of a still, slow and fast object.
const SPEED_CLASSES: [(f64, f64); 3] = [(0.0, 0.0), (0.4, 0.7), (1.1, 1.6)];
/// Background: a 9 x 9 m hall, 3.5 m high, around the orbit.
pub(super) const HALL: Enclosure = Enclosure { min: Vec3::new(-4.5, 0.0, -4.5), max: Vec3::new(4.5, 3.5, 4.5) };

/// The dynamic benchmark's clips; see the module doc for the scene and the shortcut.
pub(super) struct Clips;

impl Scenes for Clips {
    const BENCH: Bench = Bench::Dynamic;
    const NAME: &'static str = "dynamic";
    const MIN_FRAMES: (usize, &'static str) = (2, "at least two frames to show motion");
    const SALT: u64 = 0x4459_4e41_4d49_4300; // "DYNAMIC"
    const VISION_CHANNELS: usize = VISION_CHANNELS;
    const GEOMETRY_CHANNELS: usize = GEOMETRY_CHANNELS;

    fn draw(cfg: &DataConfig, s: f64, subtask: usize, rng: &mut ChaCha8Rng) -> Option<Sample> {
        let scene = Scene::draw(cfg, s, rng);
        let question = ask(subtask, &scene, rng)?;
        let (vision, mut geometry) = scene.tokens(cfg, rng);
        corrupt_geometry(&mut geometry, GEOMETRY_CHANNELS, cfg, &HALL, rng);
        let mut sample = question.into_sample(subtask, vision, geometry);
        // Where each named object starts (questions follow objects from the first frame)
        // and how far it moves over the clip.
        sample.grounding = grounding(&sample.prompt, &scene.frames[0], &scene.frames[scene.frames.len() - 1]);
        Some(sample)
    }
}

struct Scene {
    /// `frames[t][i]` is object `i` at frame `t`.
    frames: Vec<Vec<Body>>,
    /// 0 still, 1 slow, 2 fast: the Abs. Spd. answer.
    speed_class: Vec<usize>,
    cameras: Vec<Camera>,
    vision: Vec<Vec<Seen>>,
    geometry: Vec<Vec<Seen>>,
}

impl Scene {
    fn draw(cfg: &DataConfig, s: f64, rng: &mut ChaCha8Rng) -> Scene {
        let mut categories: Vec<usize> = (0..CATEGORY_COUNT).collect();
        categories.shuffle(rng);
        let mut starts: Vec<Body> = Vec::with_capacity(cfg.objects);
        let mut motions = Vec::with_capacity(cfg.objects);
        let mut speed_class = Vec::with_capacity(cfg.objects);
        for &category in &categories[..cfg.objects] {
            let size = CATEGORY_SIZES[category] * rng.random_range(0.75..1.25);
            let height = (0.5 * size).clamp(0.3, 1.0);
            let mut spot = || {
                Vec3::new(
                    rng.random_range(-ARENA_HALF..ARENA_HALF),
                    height,
                    rng.random_range(-ARENA_HALF..ARENA_HALF),
                )
            };
            let clear =
                |p: &Vec3| starts.iter().all(|o| (o.center - *p).flat().norm() >= 0.3 * (o.size + size));
            // A crowded arena may have no free spot; occlusion then decides visibility.
            let center = (0..30).map(|_| spot()).find(clear).unwrap_or_else(spot);
            starts.push(Body { category, center, size });

            let class = rng.random_range(0..SPEED_CLASSES.len());
            let (lo, hi) = SPEED_CLASSES[class];
            let distance = lo + (hi - lo) * rng.random::<f64>();
            let heading = rng.random_range(0.0..std::f64::consts::TAU);
            motions.push(Vec3::new(heading.sin(), 0.0, heading.cos()) * distance);
            speed_class.push(class);
        }

        let last = (cfg.frames - 1) as f64;
        let frames: Vec<Vec<Body>> = (0..cfg.frames)
            .map(|t| {
                let progress = t as f64 / last;
                starts
                    .iter()
                    .zip(&motions)
                    .map(|(b, &m)| Body { center: b.center + m * progress, ..*b })
                    .collect()
            })
            .collect();
        // Frame 0 is the viewer; later frames orbit by up to (1 - s) * 180° (module doc).
        let wander = |rng: &mut ChaCha8Rng| {
            let angle = (1.0 - s) * rng.random_range(-180.0f64..180.0).to_radians();
            let radius = ORBIT_RADIUS + (1.0 - s) * rng.random_range(-MAX_RADIUS_JITTER..MAX_RADIUS_JITTER);
            orbit_camera(angle, radius)
        };
        let cameras: Vec<Camera> = std::iter::once(orbit_camera(0.0, ORBIT_RADIUS))
            .chain((1..cfg.frames).map(|_| wander(rng)))
            .collect();
        let view =
            |grid| cameras.iter().zip(&frames).map(|(c, bodies)| render(c, bodies, grid, &HALL)).collect();
        let vision = view(cfg.vision_grid);
        let geometry = view(cfg.geometry_grid);
        Scene { frames, speed_class, cameras, vision, geometry }
    }

    fn start(&self, i: usize) -> Vec3 {
        self.frames[0][i].center
    }

    fn end(&self, i: usize) -> Vec3 {
        self.frames[self.frames.len() - 1][i].center
    }

    fn motion(&self, i: usize) -> Vec3 {
        (self.end(i) - self.start(i)).flat()
    }

    /// Where the object would be after moving on for as long again.
    fn predicted(&self, i: usize) -> Vec3 {
        self.end(i) + self.motion(i)
    }

    fn viewer(&self) -> Vec3 {
        self.cameras[0].position
    }

    /// Shown in the first and the last frame of both grids, so both the 2D and the 3D
    /// stream hold the start and the end of its motion.
    fn visible(&self, i: usize) -> bool {
        let last = self.frames.len() - 1;
        [&self.vision, &self.geometry].iter().all(|grid| shows(&grid[0], i) && shows(&grid[last], i))
    }

    fn tokens(&self, cfg: &DataConfig, rng: &mut ChaCha8Rng) -> (Vec<f32>, Vec<f32>) {
        let cells_v = self.vision[0].len();
        let mut vision = vec![0.0f32; self.frames.len() * cells_v * VISION_CHANNELS];
        for (t, cells) in self.vision.iter().enumerate() {
            for (k, cell) in cells.iter().enumerate() {
                let Seen::Object { id, offset, apparent, proj } = *cell else {
                    continue;
                };
                let token = &mut vision[(t * cells_v + k) * VISION_CHANNELS..][..VISION_CHANNELS];
                token[self.frames[t][id].category] = 1.0;
                token[CATEGORY_COUNT] = apparent as f32;
                token[CATEGORY_COUNT + 1] = offset[0] as f32;
                token[CATEGORY_COUNT + 2] = offset[1] as f32;
                let previous =
                    t.checked_sub(1).and_then(|p| self.cameras[p].project(self.frames[p][id].center));
                if let Some(prev) = previous {
                    token[CATEGORY_COUNT + 3] = (proj.u - prev.u).clamp(-2.0, 2.0) as f32;
                    token[CATEGORY_COUNT + 4] = (proj.v - prev.v).clamp(-2.0, 2.0) as f32;
                }
            }
        }
        let noise = cfg.geometry_noise;
        let mut geometry = Vec::with_capacity(self.frames.len() * self.geometry[0].len() * GEOMETRY_CHANNELS);
        for (t, cells) in self.geometry.iter().enumerate() {
            for cell in cells {
                let (point, flag, displacement) = match *cell {
                    Seen::Object { id, .. } => {
                        let here = self.frames[t][id].center;
                        let moved =
                            if t == 0 { Vec3::default() } else { here - self.frames[t - 1][id].center };
                        (here, 1.0, moved + gaussian3(rng) * noise)
                    }
                    // The background is static, so its displacement is exactly zero.
                    Seen::Background(point) => (point, 0.0, Vec3::default()),
                };
                let p = point + gaussian3(rng) * noise;
                let d = displacement;
                geometry.extend_from_slice(&[
                    p.x as f32, p.y as f32, p.z as f32, flag, d.x as f32, d.y as f32, d.z as f32,
                ]);
            }
        }
        (vision, geometry)
    }
}

/// A camera on the orbit around the arena centre, looking at it. Angle 0 is the
/// viewer's spot on -z looking along +z; positive angles swing toward -x.
fn orbit_camera(angle: f64, radius: f64) -> Camera {
    let position = Vec3::new(-radius * angle.sin(), CAMERA_HEIGHT, -radius * angle.cos());
    let pitch = -((CAMERA_HEIGHT - LOOK_AT_HEIGHT) / radius).atan();
    Camera::new(position, angle, pitch, FOCAL)
}

#[cfg(test)]
mod tests {
    use super::super::vocab::{CATEGORIES, PROMPT_LEN};
    use super::super::{generate, Answer, Dataset, Split, MAX_OPTIONS};
    use super::questions::{axis_direction, DIRECTIONS};
    use super::*;
    use crate::benchmark::dsr::{ABS_DIRECTION, ABS_SPEED, ABS_SPEED_COMP, NON_TEMPLATE, REL_SPEED_COMP, SUBTASKS};

    fn config(shortcut: f64, noise: f64, size: usize) -> DataConfig {
        let mut cfg = DataConfig {
            bench: Bench::Dynamic,
            train_size: size,
            eval_size: size,
            geometry_noise: noise,
            ..Default::default()
        };
        cfg.shortcut.train = shortcut;
        cfg.shortcut.eval = shortcut;
        cfg
    }

    fn category_of(word: &str) -> Option<usize> {
        CATEGORIES.iter().position(|c| *c == word)
    }

    /// The correct option's text.
    fn answer_text(s: &Sample) -> &str {
        match s.answer {
            Answer::Choice(k) => &s.options[k],
            Answer::Number(_) => panic!("dynamic answers are choices"),
        }
    }

    /// Token indices (t, cell) whose vision token shows `category` in frame `t`.
    fn cells_of(ds: &Dataset, s: &Sample, category: usize, t: usize) -> Vec<usize> {
        let cells = ds.vision_grid[0] * ds.vision_grid[1];
        (t * cells..(t + 1) * cells).filter(|&k| s.vision[k * VISION_CHANNELS + category] == 1.0).collect()
    }

    #[test]
    fn generation_is_deterministic_and_splits_differ() {
        let cfg = config(0.5, 0.05, 650);
        let a = generate(&cfg, Split::Train).samples;
        assert_eq!(a, generate(&cfg, Split::Train).samples);
        assert_ne!(a, generate(&cfg, Split::Eval).samples);
    }

    #[test]
    fn shapes_subtasks_and_answers_are_consistent() {
        let cfg = DataConfig { geometry_grid: [3, 5], frames: 4, objects: 5, ..config(0.3, 0.05, 1300) };
        let ds = generate(&cfg, Split::Train);
        assert_eq!(ds.samples.len(), cfg.train_size);
        for (i, s) in ds.samples.iter().enumerate() {
            assert_eq!(s.subtask, i % SUBTASKS.len());
            assert_eq!(s.vision.len(), ds.n_vision() * VISION_CHANNELS);
            assert_eq!(s.geometry.len(), ds.n_geometry() * GEOMETRY_CHANNELS);
            assert_eq!(s.prompt.len(), PROMPT_LEN);
            assert!(s.geometry.iter().all(|x| x.abs() < 5.0), "geometry out of range");
            let words = s.question.split(' ').count()
                + s.options.iter().map(|o| 1 + o.split(' ').count()).sum::<usize>();
            assert!(words <= PROMPT_LEN, "prompt truncated: {}", s.question);
            let Answer::Choice(k) = s.answer else { panic!("numeric answer") };
            assert!(s.num_options >= 2 && s.num_options <= MAX_OPTIONS && k < s.num_options);
            for category in s.question.split(' ').filter_map(category_of) {
                assert!(!cells_of(&ds, s, category, 0).is_empty(), "{} not in view", s.question);
                assert!(!cells_of(&ds, s, category, ds.frames - 1).is_empty());
            }
        }
    }

    #[test]
    fn answers_are_balanced_over_option_positions() {
        let ds = generate(&config(0.5, 0.05, 5200), Split::Eval);
        let mut counts = [0usize; MAX_OPTIONS];
        for s in ds.samples.iter().filter(|s| s.num_options == MAX_OPTIONS) {
            if let Answer::Choice(k) = s.answer {
                counts[k] += 1;
            }
        }
        let total: usize = counts.iter().sum();
        for c in counts {
            assert!((0.2..0.3).contains(&(c as f64 / total as f64)), "unbalanced: {counts:?}");
        }
    }

    /// How often the sign of the 2D motion (du of the object in the last frame) agrees
    /// with a left/right Abs. Dir. answer.
    fn motion_agreement(shortcut: f64) -> f64 {
        let ds = generate(&config(shortcut, 0.05, 13 * 2000), Split::Train);
        let mut agree = Vec::new();
        for s in ds.samples.iter().filter(|s| s.subtask == ABS_DIRECTION) {
            let truth = answer_text(s);
            if truth != "left" && truth != "right" {
                continue;
            }
            let x = s.question.split(' ').find_map(category_of).unwrap();
            let k = cells_of(&ds, s, x, ds.frames - 1)[0];
            let du = s.vision[k * VISION_CHANNELS + CATEGORY_COUNT + 3];
            agree.push((du > 0.0) == (truth == "right"));
        }
        agree.iter().filter(|&&a| a).count() as f64 / agree.len() as f64
    }

    #[test]
    fn shortcut_strength_controls_2d_motion_cues() {
        let (high, low) = (motion_agreement(1.0), motion_agreement(0.0));
        println!("2D motion agrees with Abs. Dir. (left/right): s=1 {high:.2}, s=0 {low:.2}");
        assert!(high > 0.95, "{high}");
        assert!(low < 0.7 && high - low > 0.3, "{high} vs {low}");
    }

    /// Geometry carries the truth: noise-free world points under the object's cells in
    /// the first and last frame give the Abs. Dir. answer, and the displacement channel
    /// of a two-frame clip is the same motion.
    #[test]
    fn geometry_tokens_determine_the_answer() {
        let ds = generate(&config(0.0, 0.0, 13 * 300), Split::Train);
        let point = |s: &Sample, k: usize, at: usize| {
            let g = &s.geometry[k * GEOMETRY_CHANNELS + at..][..3];
            Vec3::new(g[0] as f64, g[1] as f64, g[2] as f64)
        };
        let mut checked = 0;
        for s in ds.samples.iter().filter(|s| s.subtask == ABS_DIRECTION) {
            let x = s.question.split(' ').find_map(category_of).unwrap();
            let first = cells_of(&ds, s, x, 0)[0];
            let last = cells_of(&ds, s, x, ds.frames - 1)[0];
            let motion = point(s, last, 0) - point(s, first, 0);
            assert!((motion - point(s, last, 4)).norm() < 1e-5);
            let label = DIRECTIONS[axis_direction(motion).expect("answer has a clear axis")];
            assert_eq!(label, answer_text(s), "{}", s.question);
            checked += 1;
        }
        assert!(checked > 200);
    }

    /// The motion grounding target of a question's object is its motion over the clip:
    /// its length falls in the Abs. Spd. answer's class, and its axis is the Abs. Dir. answer.
    #[test]
    fn grounding_targets_carry_each_named_objects_motion() {
        const W: usize = crate::data::GROUNDING_WIDTH;
        let ds = generate(&config(0.5, 0.05, 13 * 200), Split::Train);
        let (mut speeds, mut directions) = (0, 0);
        for s in ds.samples.iter().filter(|s| s.subtask == ABS_SPEED || s.subtask == ABS_DIRECTION) {
            let x = s.question.split(' ').find_map(category_of).unwrap();
            let j = s.prompt.iter().position(|&id| super::super::vocab::category(id) == Some(x)).unwrap();
            let target = &s.grounding[W * j..][..W];
            assert_eq!(target[W - 1], 1.0, "{} has no target", s.question);
            let moved = Vec3::new(target[2] as f64, 0.0, target[3] as f64);
            if s.subtask == ABS_SPEED {
                let (lo, hi) = SPEED_CLASSES[["still", "slow", "fast"].iter().position(|c| *c == answer_text(s)).unwrap()];
                assert!((lo - 1e-6..=hi + 1e-6).contains(&moved.norm()), "{} moved {:.2} m", s.question, moved.norm());
                speeds += 1;
            } else {
                assert_eq!(DIRECTIONS[axis_direction(moved).unwrap()], answer_text(s), "{}", s.question);
                directions += 1;
            }
        }
        assert!(speeds > 100 && directions > 100, "{speeds} speed and {directions} direction questions");
    }

    #[test]
    fn every_answer_class_occurs() {
        let ds = generate(&config(0.5, 0.05, 13 * 200), Split::Train);
        for (t, task) in SUBTASKS
            .iter()
            .enumerate()
            .filter(|(t, _)| *t != ABS_SPEED_COMP && *t != REL_SPEED_COMP && *t != NON_TEMPLATE)
        {
            let answers: std::collections::BTreeSet<&str> =
                ds.samples.iter().filter(|s| s.subtask == t).map(answer_text).collect();
            let options: std::collections::BTreeSet<&str> = ds
                .samples
                .iter()
                .filter(|s| s.subtask == t)
                .flat_map(|s| s.options.iter().map(|o| o.as_str()))
                .collect();
            assert_eq!(answers, options, "{} never answers some options", task.key);
        }
    }

    #[test]
    #[ignore = "timing; run with --release -- --ignored --nocapture"]
    fn throughput() {
        let cfg = config(0.5, 0.05, 100_000);
        let start = std::time::Instant::now();
        let n = generate(&cfg, Split::Train).samples.len();
        println!("dynamic: {:.0} samples/s", n as f64 / start.elapsed().as_secs_f64());
    }
}
