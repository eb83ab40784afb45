//! The readers' side: check, inspect, diff, verify and boot an image someone else may have made.

pub mod boot;
pub mod check;
pub mod diff;
pub mod image;
pub mod inspect;
pub mod open;
pub mod verify;
