//! A stop request (SIGINT, SIGTERM) ends a run at the next step boundary and keeps exactly what
//! completed: here the batches are shorter than one segment of steps, so the batch in flight
//! completes. (`tests/hostile.rs` stops a single long batch mid-way through the binary.) Its own
//! test binary: the stop flag is process-wide.

use nalgebra::DVector;
use regimes::engine::Recorder;
use regimes::engine::cpu::CpuEngine;
use regimes::linalg::Linear;
use regimes::measure::request_stop;
use regimes::measure::run::{RunSpec, run};
use regimes::model::{Mixture, Model, Process, Target};
use regimes::plan::{Grid, Plan, Scheme, Start};

#[test]
fn stop_keeps_the_completed_batches() {
    let d = 4;
    let model = Model {
        process: Process::new(Linear::identity(d), Linear::Scalar(0.0, d)).unwrap(),
        target: Target::Mixture(Mixture::two_class(DVector::from_element(d, 1.0), 1.0)),
    };
    // Ten steps: no longer than the first segment of an advance.
    let grid = Grid::new(1.0, 10).unwrap();
    let plan = Plan::new(&model, grid.clone(), Scheme::EulerMaruyama, Start::Exact).unwrap();
    let spec = RunSpec {
        seed: 2,
        particles: 10 * 1024,
        keep_samples: true,
        batch: Some(2048),
    };
    let rec = Recorder::new(&plan, vec![0, 10], vec![]);
    let mut ticks = 0u64;
    // Ask for a stop while the first batch runs: it completes, nothing after it starts.
    let out = run(&CpuEngine::new(), &plan, spec, rec, &mut |n| {
        ticks += n;
        request_stop();
    })
    .unwrap();
    assert_eq!(out.stopped, Some(regimes::measure::Stop::Interrupted));
    assert_eq!(out.particles_done, 2048);
    assert_eq!(ticks, 2048 * 10);
    assert_eq!(out.recorder.stats[1].coords.count, 2048);
    assert_eq!(out.tally.labels.iter().sum::<u64>(), 2048);
    assert_eq!(out.samples.unwrap().len(), 2048);
}
