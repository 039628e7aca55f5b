//! vars tests.
