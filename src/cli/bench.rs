//! `regimes bench`: engine throughput on the standard workloads of [`crate::bench`], as a table or
//! JSON records (its flags are the bench layer's, [`crate::bench::args`]).

use anyhow::Result;

use crate::bench;
use crate::bench::args::BenchArgs;

pub fn main(args: BenchArgs) -> Result<()> {
    let report = bench::run::run(&args.options())?;
    if !report.exported.is_empty() {
        crate::out!("wrote {}", report.exported.join(", "))?;
    } else if args.json {
        crate::out!("{}", serde_json::to_string_pretty(&report.records)?)?;
    } else {
        crate::out!(
            "{}\n\n{}",
            report.header.join("\n"),
            bench::table(&report.records)
        )?;
    }
    if let Some(reason) = report.stopped {
        anyhow::bail!(
            "stopped early ({reason}); the records above are the workloads measured before the \
             stop"
        );
    }
    Ok(())
}
