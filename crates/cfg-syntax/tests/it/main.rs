//! Integration tests for `sipox-cfg-syntax`.

mod errors;
mod fuzz;
mod golden;
mod includes;
mod lexer;
mod preprocess;
mod support;
mod vars;
