//! includes tests.
