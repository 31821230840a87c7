//! The lists the help names — presets, `reproduce` experiments, `bench` workloads (its long
//! help; its flags' own in [`crate::bench::args`]), the GPU dispatch length — written into the
//! commands from the code's own lists, so that adding one cannot leave the help behind; the
//! tests hold README.md to the same lists.

use clap::Command;

use crate::config::PRESETS;
use crate::engine::gpu::{SOFTWARE_TARGET_SECONDS, TARGET_SECONDS};
use crate::report::hanging;
use crate::reproduce::Experiment;

/// The names of [`PRESETS`], comma separated.
fn preset_names() -> String {
    let names: Vec<&str> = PRESETS.iter().map(|p| p.0).collect();
    names.join(", ")
}

/// `reproduce`'s one-line about, naming every experiment.
fn reproduce_about() -> String {
    let names: Vec<&str> = Experiment::ALL.iter().map(|e| e.name()).collect();
    format!(
        "Reproduce one of the sources' experiments ({}): CSV data, SVG and PNG plots, \
         summary.json with every check, report.md. --quick finishes within a minute on 2 CPU \
         cores.",
        names.join(", ")
    )
}

/// What a measured dispatch length aims at, for `--steps-per-dispatch`.
fn dispatch_default() -> String {
    format!(
        "[default: measured, so that a dispatch lasts at most about {TARGET_SECONDS} s on a \
         hardware GPU (under the OS watchdogs' ~1 s), {SOFTWARE_TARGET_SECONDS} s on a software \
         adapter, which has no watchdog]"
    )
}

/// Sets the help of `arg` of `cmd` (short and long), if the command has it.
fn set_help(cmd: Command, arg: &str, short: String, long: String) -> Command {
    if !cmd.get_arguments().any(|a| a.get_id() == arg) {
        return cmd;
    }
    cmd.mut_arg(arg, |a| a.help(short).long_help(long))
}

/// `cli` with every list in its help written from the code's lists.
pub fn fill(mut cli: Command) -> Command {
    let names: Vec<String> = cli
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    // (An argument's help is indented by 10 columns within clap's 100.)
    let preset_long: String = PRESETS
        .iter()
        .map(|(n, d)| format!("\n{}", hanging(&format!("  {n:<8} "), d, 88)))
        .collect();
    for name in names {
        cli = cli.mut_subcommand(&name, |sub| {
            let sub = set_help(
                sub,
                "preset",
                format!(
                    "Start from a named preset: {}. A --config file and flags apply on top.",
                    preset_names()
                ),
                format!(
                    "Start from a named preset; a --config file and flags apply on \
                     top:{preset_long}"
                ),
            );
            let tail = if name == "bench" {
                "; the record says which and how"
            } else {
                "; lower it if the GPU watchdog resets the device"
            };
            set_help(
                sub,
                "steps_per_dispatch",
                format!(
                    "Time steps fused into one GPU dispatch {}",
                    dispatch_default()
                ),
                format!(
                    "Time steps fused into one GPU dispatch{tail} {}",
                    dispatch_default()
                ),
            )
        });
    }
    cli = cli.mut_subcommand("reproduce", |sub| {
        let about = reproduce_about();
        let experiments: String = Experiment::ALL
            .iter()
            .map(|e| {
                format!(
                    "\n{}",
                    hanging(&format!("  {:<16} ", e.name()), e.what(), 88)
                )
            })
            .collect();
        set_help(
            sub.about(about.clone()).long_about(about),
            "name",
            "The experiment".to_string(),
            format!("The experiment:{experiments}"),
        )
    });
    cli.mut_subcommand("bench", |sub| {
        sub.long_about(crate::bench::args::long_about())
    })
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;

    use super::*;
    use crate::bench::Workload;
    use crate::plan::Scheme;

    /// A command's long help, its whitespace runs (wrapping) made single spaces.
    fn help(command: Option<&str>) -> String {
        let text = match command {
            Some(c) => {
                let mut cli = super::super::command();
                cli.build();
                let sub = cli.find_subcommand_mut(c).expect("a command");
                sub.render_long_help().to_string()
            }
            None => super::super::command().render_long_help().to_string(),
        };
        squash(&text)
    }

    fn squash(text: &str) -> String {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    fn readme() -> String {
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
    }

    /// The README's line (or table row) that contains `anchor`.
    fn line<'a>(text: &'a str, anchor: &str) -> &'a str {
        text.lines()
            .find(|l| l.contains(anchor))
            .unwrap_or_else(|| panic!("README.md has no line with {anchor:?}"))
    }

    /// The paragraph of the README that contains `anchor`.
    fn paragraph<'a>(text: &'a str, anchor: &str) -> &'a str {
        text.split("\n\n")
            .find(|p| p.contains(anchor))
            .unwrap_or_else(|| panic!("README.md has no paragraph with {anchor:?}"))
    }

    fn names<T: ValueEnum>() -> Vec<String> {
        T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_string()))
            .collect()
    }

    #[test]
    fn the_lists_are_the_codes() {
        let experiments: Vec<&str> = Experiment::ALL.iter().map(|e| e.name()).collect();
        assert_eq!(names::<Experiment>(), experiments, "Experiment::ALL");
        let workloads: Vec<&str> = Workload::ALL.iter().map(|w| w.name()).collect();
        assert_eq!(names::<Workload>(), workloads, "Workload::ALL");
        for (name, _) in PRESETS {
            assert!(crate::config::Config::preset(name).is_ok(), "{name}");
        }
    }

    /// Every list in `--help` names every member of the code's list, and states its length
    /// where it states one.
    #[test]
    fn help_lists_every_preset_experiment_workload_and_scheme() {
        for command in ["theory", "run", "speciation", "collapse", "sweep", "steer"] {
            let h = help(Some(command));
            for (name, description) in PRESETS {
                assert!(
                    h.contains(&squash(&format!("{name} {description}"))),
                    "`{command} --help` omits the preset {name}"
                );
            }
            // (theory hides the sampling and engine flags it never reads.)
            if h.contains("--scheme <") {
                for scheme in names::<Scheme>() {
                    assert!(
                        h.contains(&scheme),
                        "`{command} --help` omits --scheme {scheme}"
                    );
                }
            }
            if h.contains("--steps-per-dispatch") {
                assert!(
                    h.contains(&format!(
                        "about {TARGET_SECONDS} s on a hardware GPU (under the OS watchdogs' ~1 \
                         s), {SOFTWARE_TARGET_SECONDS} s on a software adapter"
                    )),
                    "`{command} --help`: the dispatch target"
                );
            }
        }
        let top = help(None);
        let reproduce = help(Some("reproduce"));
        for e in Experiment::ALL {
            assert!(top.contains(e.name()), "`--help` omits {}", e.name());
            assert!(
                reproduce.contains(&squash(&format!("{} {}", e.name(), e.what()))),
                "`reproduce --help` omits {}",
                e.name()
            );
        }
        let bench = help(Some("bench"));
        let n = Workload::ALL.len();
        assert!(bench.contains(&format!("on {n} standard workloads")));
        assert!(bench.contains(&format!("default all {n}")));
        for w in Workload::ALL {
            assert!(
                bench.contains(&squash(&format!("{} {}", w.name(), w.describe()))),
                "`bench --help` omits {}",
                w.name()
            );
            assert!(bench.contains(&format!("{} {}", w.name(), w.default_particles())));
        }
        for words in ["three workloads", "0.25 s;", "all four"] {
            assert!(!bench.contains(words), "`bench --help` says {words:?}");
        }
    }

    /// The README's lists name every preset, experiment, workload and scheme: adding one to the
    /// code without the README fails here.
    #[test]
    fn readme_lists_every_preset_experiment_workload_and_scheme() {
        let text = readme();
        let presets = paragraph(&text, "Presets: ");
        for (name, _) in PRESETS {
            assert!(
                presets.contains(&format!("`{name}`")),
                "README.md's \"Presets:\" paragraph omits `{name}`"
            );
        }
        let reproduce = line(&text, "| `regimes reproduce NAME` |");
        for e in Experiment::ALL {
            let name = e.name();
            assert!(
                reproduce.contains(&format!("`{name}`")),
                "README.md's commands table omits the experiment `{name}`"
            );
            line(&text, &format!("| `{name}` |"));
        }
        let bench = line(&text, "| `regimes bench` |");
        for w in Workload::ALL {
            assert!(
                bench.contains(&format!("`{}`", w.name())),
                "README.md's commands table omits the workload `{}`",
                w.name()
            );
        }
        let schemes = line(&text, "| `--t-max`, `--steps`, `--scheme`");
        for s in names::<Scheme>() {
            assert!(
                schemes.contains(&format!("`{s}`")),
                "README.md's settings table omits the scheme `{s}`"
            );
        }
        let numbers = [
            "zero", "one", "two", "three", "four", "five", "six", "seven",
        ];
        let six = numbers[Experiment::ALL.len()];
        assert!(
            text.contains(&format!("CI runs all {six}")),
            "README.md: how many experiments CI runs"
        );
    }
}
