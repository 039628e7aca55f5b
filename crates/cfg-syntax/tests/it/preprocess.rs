//! preprocess tests.
