//! regimes: samples diffusion models whose forward process is a non-reversible OU process and
//! measures their dynamical regimes. Data flow: config → model → theory / plan → engine →
//! measure → report.
// The terminal only through `out!` and `note!` (report::console), which never panic on a closed
// pipe or a full stream: `println!`/`eprintln!` do not pass clippy in the library (tests aside).
#![cfg_attr(not(test), deny(clippy::print_stdout, clippy::print_stderr))]

pub mod bench;
pub mod cli;
pub mod config;
pub mod digest;
pub mod engine;
pub mod fmath;
pub mod io;
pub mod linalg;
pub mod measure;
pub mod model;
pub mod plan;
pub mod report;
pub mod reproduce;
pub mod rng;
pub mod stats;
pub mod stop;
pub mod study;
pub mod theory;
