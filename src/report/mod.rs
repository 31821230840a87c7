//! Outputs people and other tools read.
