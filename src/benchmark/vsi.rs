//! VSI-Bench (Table 3), and the synthetic static benchmark that stands in for it:
//! its subtasks and the official question types they are scored under.

use super::{choice, numeric, Subtask};

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

// Subtask indices, in `SUBTASKS` order.
pub const OBJ_COUNT: usize = 0;
pub const ABS_DISTANCE: usize = 1;
pub const OBJ_SIZE: usize = 2;
pub const ROOM_SIZE: usize = 3;
pub const REL_DISTANCE: usize = 4;
pub const REL_DIRECTION: usize = 5;
pub const ROUTE_PLAN: usize = 6;
pub const APPEARANCE_ORDER: usize = 7;

/// The ten official VSI-Bench `question_type` strings, each with the key of the
/// [`SUBTASKS`] entry it is scored under.
pub const QUESTION_TYPES: &[(&str, &str)] = &[
    ("object_counting", "obj_count"),
    ("object_abs_distance", "abs_distance"),
    ("object_size_estimation", "obj_size"),
    ("room_size_estimation", "room_size"),
    ("object_rel_distance", "rel_distance"),
    ("object_rel_direction_easy", "rel_direction"),
    ("object_rel_direction_medium", "rel_direction"),
    ("object_rel_direction_hard", "rel_direction"),
    ("route_planning", "route_plan"),
    ("obj_appearance_order", "appearance_order"),
];

/// The VSI-Bench question types that the official score folds into one
/// `rel_direction` score, as the unweighted mean of their accuracies.
pub const REL_DIRECTION_LEVELS: [&str; 3] =
    ["object_rel_direction_easy", "object_rel_direction_medium", "object_rel_direction_hard"];
