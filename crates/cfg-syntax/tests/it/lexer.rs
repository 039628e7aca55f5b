//! lexer tests.
