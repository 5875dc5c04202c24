//! Schedules: a workflow's schedule triggers and scheduled tasks share one table and
//! one ticker. A tick's id is the schedule id plus its UTC time, unique in the
//! database, and the execution it starts carries that id as its idempotency key, so a
//! tick starts one execution across all hosts and crashes (docs/automation.md).

mod settle;
pub mod spec;
pub mod store;
pub mod tasks;
pub mod ticker;

pub use spec::{CatchUp, Overlap, ScheduleSpec, Timing};
pub use store::{Run, Schedule};
