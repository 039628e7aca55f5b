#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod cli;
mod dispatch;
mod fifo;
mod http;
mod support;
