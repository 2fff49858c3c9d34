//! The pinhole camera the scenes are filmed with.

use super::Vec3;

/// A pinhole camera with yaw (0 looks along +z, positive turns toward +x) and pitch
/// (negative looks down). Image coordinates u (right) and v (up) span [-1, 1] over a
/// square image, so `focal = 1 / tan(half field of view)`.
#[derive(Debug, Clone, Copy)]
pub struct Camera {
    pub position: Vec3,
    pub focal: f64,
    forward: Vec3,
    right: Vec3,
    up: Vec3,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Projection {
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

    pub(super) fn ray(&self, u: f64, v: f64) -> Vec3 {
        self.forward + self.right * (u / self.focal) + self.up * (v / self.focal)
    }
}
