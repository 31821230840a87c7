//! The integration tests, one binary (each test binary links wgpu, so one binary links it once).
//! Modules by area; `common` holds the helpers they share. `tests/interrupt.rs` is apart: the stop
//! flag it raises is process-wide.
//!
//! `cargo test --release --test it -- --skip gpu::` runs all but the GPU engine's tests.

mod common;

mod cli;
mod coupled;
mod cpu_engine;
mod data;
mod edges;
mod gpu;
mod hostile;
mod reproduce;
mod samplers;
mod scaleout;
mod speciation;
mod sweep;
mod trust;
