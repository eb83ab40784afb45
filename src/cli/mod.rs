//! The command line: one file per subcommand.

pub mod diff;
pub mod inspect;
pub mod verify;
