//! The command line: one file per subcommand group.

pub mod verify;
