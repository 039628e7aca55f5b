//! The `sipox` command.
fn main() {}
