//! What stands in a scene: objects of the shared categories, and the box around them.

use super::Vec3;

/// The object categories, as many as [`crate::data::vocab::CATEGORIES`] names.
pub const CATEGORY_COUNT: usize = 12;

/// Typical longest dimension (m) of each category, in [`CATEGORIES`](crate::data::vocab::CATEGORIES) order; each
/// object scales it by U(0.75, 1.25) so that category alone does not give Obj. Size.
pub const CATEGORY_SIZES: [f64; CATEGORY_COUNT] =
    [0.9, 1.4, 2.0, 2.0, 1.5, 1.1, 0.8, 2.0, 1.2, 1.8, 0.6, 1.3];

/// An object: a category and a cube-like extent around its centre, rendered as a
/// square of side `focal * size / depth` in the image.
#[derive(Debug, Clone, Copy)]
pub struct Body {
    pub category: usize,
    pub center: Vec3,
    pub size: f64,
}

/// An axis-aligned box the camera is inside: walls, floor and ceiling are what a
/// cell sees when no object is in the way.
#[derive(Debug, Clone, Copy)]
pub struct Enclosure {
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
