//! Integration tests of sipox-db: every driver against the same API checks.
