//! The script engine (being built).
