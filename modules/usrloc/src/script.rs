//! The usrloc script functions (placeholder while the API settles).
