//! Rendering a frame onto a token grid: what each cell sees.

use super::camera::{Camera, Projection};
use super::world::{Body, Enclosure};
use super::Vec3;

/// What one grid cell sees.
#[derive(Debug, Clone, Copy)]
pub enum Seen {
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
pub fn shows(cells: &[Seen], id: usize) -> bool {
    cells.iter().any(|c| matches!(*c, Seen::Object { id: seen, .. } if seen == id))
}

/// Renders one frame onto a `grid[0] x grid[1]` grid, cells row-major from the top
/// left. A cell shows the nearest object that either covers the cell centre or has
/// its own centre inside the cell; the second rule keeps small, far objects from
/// falling between cell centres, so only real occlusion hides an object in view.
pub fn render(cam: &Camera, bodies: &[Body], grid: [usize; 2], room: &Enclosure) -> Vec<Seen> {
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
