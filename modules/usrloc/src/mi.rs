//! The usrloc MI commands (placeholder while the API settles).
