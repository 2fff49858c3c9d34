//! DSR-Bench (Table 4), and the synthetic dynamic benchmark that stands in for it.
//! Its records name these subtasks' keys as their `question_type` (geosr's own
//! format; see `data::features`).

use super::{choice, Subtask};

pub const SUBTASKS: &[Subtask] = &[
    choice("abs_distance", "Abs. Dist.", true),
    choice("abs_direction", "Abs. Dir.", true),
    choice("abs_orientation", "Abs. Ori.", true),
    choice("abs_speed", "Abs. Spd.", true),
    choice("abs_speed_comp", "Abs. Spd. Comp.", true),
    choice("abs_direction_pred", "Abs. Dir. Pred.", true),
    choice("rel_distance", "Rel. Dist.", true),
    choice("rel_direction", "Rel. Dir.", true),
    choice("rel_orientation", "Rel. Ori.", true),
    choice("rel_speed", "Rel. Spd.", true),
    choice("rel_speed_comp", "Rel. Spd. Comp.", true),
    choice("rel_direction_pred", "Rel. Dir. Pred.", true),
    choice("non_template", "Non. Temp.", true),
];

// Subtask indices, in `SUBTASKS` order.
pub const ABS_DISTANCE: usize = 0;
pub const ABS_DIRECTION: usize = 1;
pub const ABS_ORIENTATION: usize = 2;
pub const ABS_SPEED: usize = 3;
pub const ABS_SPEED_COMP: usize = 4;
pub const ABS_DIRECTION_PRED: usize = 5;
pub const REL_DISTANCE: usize = 6;
pub const REL_DIRECTION: usize = 7;
pub const REL_ORIENTATION: usize = 8;
pub const REL_SPEED: usize = 9;
pub const REL_SPEED_COMP: usize = 10;
pub const REL_DIRECTION_PRED: usize = 11;
pub const NON_TEMPLATE: usize = 12;
