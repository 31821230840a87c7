//! Overlay figures of several study outputs (a sweep's points, or `regimes plot DIR…`): φ(t)
//! per point on one axis, and each headline against a swept key beside its theory.

#[allow(unused_imports)]
use super::*;

/// A number read from a summary at a dotted path (`theory.t_s`).
pub(super) fn number(v: &Value, path: &str) -> Option<f64> {
    path.split('.')
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_f64)
}

/// The overlay figures of `entries`: the per-point series on one axis, and the headlines
/// against `x_key`. Each figure is `stem_NAME.svg` and `.png` with `stem_NAME.csv` beside it,
/// added to `files` (name, bytes) for the caller to write under its own rules.
pub(super) fn overlay(
    files: &mut Files,
    stem: &str,
    kind: Kind,
    entries: &[Entry],
    x_key: &str,
    note: &str,
    render: &Render,
) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let render = &Render {
        legend_outside: true,
        ..render.clone()
    };
    let sub = if note.is_empty() {
        String::new()
    } else {
        format!(" ({note})")
    };
    // The per-point curves: measured with error bars, theory as a line in the same colour.
    let curve = match kind {
        Kind::Speciation => Some((
            "phi",
            "Cloning probability φ(t)",
            "φ",
            "s_curve",
            "phi_theory",
        )),
        Kind::Collapse => Some((
            "clone_collapse",
            "Clone-collapse fraction φ_C(t)",
            "φ_C",
            "",
            "phi_theory",
        )),
        _ => None,
    };
    if let Some((series, title, y, theory_series, theory_col)) = curve {
        // Markers of different points at one time are dodged apart by a little (the CSV holds
        // the exact times), so that none hides another.
        let span = entries
            .iter()
            .filter_map(|e| e.summary.get(series).and_then(Value::as_array))
            .flatten()
            .filter_map(|p| number(p, "t"))
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), t| {
                (a.min(t), b.max(t))
            });
        let dodge = if span.1 > span.0 {
            0.006 * (span.1 - span.0)
        } else {
            0.0
        };
        let mid = (entries.len() as f64 - 1.0) / 2.0;
        let mut figure_series = vec![];
        let mut rows = vec![];
        for (k, e) in entries.iter().enumerate() {
            let Some(points) = e.summary.get(series).and_then(Value::as_array) else {
                continue;
            };
            let mut measured = vec![];
            let mut errors = vec![];
            for p in points {
                let t = number(p, "t").unwrap_or(f64::NAN);
                let v = number(p, "phi");
                let s = number(p, "stderr");
                rows.push(vec![
                    quote(&e.name),
                    "measured".into(),
                    t.to_string(),
                    v.map_or(String::new(), |x| x.to_string()),
                    s.map_or(String::new(), |x| x.to_string()),
                ]);
                if let Some(v) = v {
                    measured.push((t + dodge * (k as f64 - mid), v));
                    errors.push(s.unwrap_or(f64::NAN));
                }
            }
            let t_end = 1.2 * measured.iter().map(|p| p.0).fold(0.0, f64::max);
            // Theory: the dense s(t) curve where the study has one, else its value per point.
            let dense: Vec<(f64, f64)> = e
                .summary
                .get("theory")
                .and_then(|t| t.get(theory_series))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|p| Some((number(p, "t")?, number(p, theory_col)?)))
                        .filter(|p| p.0 <= t_end)
                        .collect()
                })
                .unwrap_or_default();
            let theory: Vec<(f64, f64)> = if dense.is_empty() {
                points
                    .iter()
                    .filter_map(|p| Some((number(p, "t")?, number(p, theory_col)?)))
                    .collect()
            } else {
                dense
            };
            for &(t, v) in &theory {
                rows.push(vec![
                    quote(&e.name),
                    "theory".into(),
                    t.to_string(),
                    v.to_string(),
                    String::new(),
                ]);
            }
            figure_series.push(Series {
                label: format!("{} (±1 s.e.)", e.name),
                points: measured,
                error: Some(errors),
                style: Style::Points,
                color: Some(k),
            });
            if !theory.is_empty() {
                figure_series.push(Series {
                    label: format!("{} theory", e.name),
                    points: theory,
                    error: None,
                    style: Style::Line,
                    color: Some(k),
                });
            }
        }
        let name = format!("{stem}_{series}");
        write_plot(
            files,
            &name,
            &Figure {
                title: &format!("{title}{sub}"),
                x_label: "branch time t",
                y_label: y,
                series: &figure_series,
                markers: &[],
            },
            render,
        )?;
        write_rows(
            files,
            &format!("{name}.csv"),
            &["point", "kind", "t", "value", "stderr"],
            &rows,
        )?;
    }
    // Headlines against the swept key: measured with error bars beside theory.
    type Headline<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, &'a str);
    let heads: Vec<Headline> = match kind {
        Kind::Speciation => {
            let mut h = vec![(
                "t_s",
                "Speciation time t_S",
                "t_s_measured",
                Some("t_s_measured_stderr"),
                "t_s_theory",
            )];
            if entries.iter().any(|e| {
                e.summary
                    .get("sync_gap_theory")
                    .is_some_and(|v| !v.is_null())
            }) {
                h.push((
                    "sync_gap",
                    "Synchronization gap t_S(common) − t_S(difference)",
                    "sync_gap_measured",
                    Some("sync_gap_measured_stderr"),
                    "sync_gap_theory",
                ));
            }
            h
        }
        Kind::Collapse => vec![(
            "t_c",
            "Collapse time t_C",
            "t_c_measured",
            Some("interval"),
            "t_c_theory",
        )],
        _ => vec![("t_s", "Speciation time t_S", "", None, "theory.t_s")],
    };
    // x positions: the values when all are numbers, else categories in first-seen order.
    let xs: Vec<String> = entries
        .iter()
        .map(|e| {
            e.params
                .iter()
                .find(|(k, _)| k == x_key)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        })
        .collect();
    let numeric = xs
        .iter()
        .all(|x| x.parse::<f64>().is_ok_and(f64::is_finite));
    let mut categories: Vec<String> = vec![];
    for x in &xs {
        if !categories.contains(x) {
            categories.push(x.clone());
        }
    }
    let pos = |x: &str| -> f64 {
        if numeric {
            x.parse().unwrap_or(f64::NAN)
        } else {
            categories.iter().position(|c| c == x).unwrap_or(0) as f64
        }
    };
    // Points that differ in other keys than x form one group (one colour) each.
    let group_of = |e: &Entry| -> String {
        describe(
            &e.params
                .iter()
                .filter(|(k, _)| k != x_key)
                .cloned()
                .collect::<Vec<_>>(),
        )
    };
    let mut groups: Vec<String> = vec![];
    for e in entries {
        let g = group_of(e);
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let render_x = Render {
        categories: (!numeric).then(|| categories.clone()),
        legend_outside: true,
        integer_x: numeric && xs.iter().all(|x| x.parse::<i64>().is_ok()),
        ..render.clone()
    };
    // t_C depends on N: name it in the title when the points share it (not swept).
    let n_train: Vec<Option<f64>> = entries
        .iter()
        .map(|e| number(&e.summary, "n_train"))
        .collect();
    let shared_n = match n_train.first() {
        Some(&Some(n)) if x_key != "n-train" && n_train.iter().all(|m| *m == Some(n)) => {
            format!(", N = {n}")
        }
        _ => String::new(),
    };

    for (name, title, measured_key, err_key, theory_key) in heads {
        let mut figure_series = vec![];
        let mut rows = vec![];
        for (g, group) in groups.iter().enumerate() {
            let members: Vec<(&Entry, &String)> = entries
                .iter()
                .zip(&xs)
                .filter(|(e, _)| &group_of(e) == group)
                .collect();
            let prefix = if group.is_empty() {
                String::new()
            } else {
                format!("{group}: ")
            };
            let mut measured = vec![];
            let mut errors = vec![];
            let mut theory = vec![];
            for (e, x) in &members {
                let m = (!measured_key.is_empty())
                    .then(|| number(&e.summary, measured_key))
                    .flatten();
                // The median t̂_C has a ±1σ interval: its half-width.
                let s = err_key.and_then(|k| match k {
                    "interval" => {
                        let a = interval(&e.summary, 0)?;
                        let b = interval(&e.summary, 1)?;
                        Some((b - a) / 2.0)
                    }
                    k => number(&e.summary, k),
                });
                let t = number(&e.summary, theory_key);
                rows.push(vec![
                    quote(x),
                    quote(group),
                    "point".into(),
                    m.map_or(String::new(), |v| v.to_string()),
                    s.map_or(String::new(), |v| v.to_string()),
                    t.map_or(String::new(), |v| v.to_string()),
                ]);
                // Categories: theory just left of its category, measured just right, so that
                // neither hides the other.
                let shift = if numeric { 0.0 } else { 0.08 };
                if let Some(m) = m {
                    measured.push((pos(x) + shift, m));
                    errors.push(s.unwrap_or(f64::NAN));
                }
                if let Some(t) = t {
                    theory.push((pos(x) - shift, t));
                }
            }
            theory.sort_by(|a, b| a.0.total_cmp(&b.0));
            // A numeric key: the theory on a dense grid of its values, when they build.
            if numeric
                && let Some((first, _)) = members.first()
                && let Some(dense) = dense_theory(first, x_key, name, &xs)
            {
                for &(x, t) in &dense {
                    rows.push(vec![
                        x.to_string(),
                        quote(group),
                        "theory-grid".into(),
                        String::new(),
                        String::new(),
                        t.to_string(),
                    ]);
                }
                theory = dense;
            }
            let color = 2 * g;
            if !theory.is_empty() {
                figure_series.push(Series {
                    label: format!("{prefix}theory"),
                    points: theory,
                    error: None,
                    // Categories have no order between them: theory as markers, not a line.
                    style: if numeric { Style::Line } else { Style::Points },
                    color: Some(color + 1),
                });
            }
            if !measured.is_empty() {
                figure_series.push(Series {
                    // A median t̂_C's bar is half its order-statistic interval, not a s.e.
                    label: match err_key {
                        Some("interval") => {
                            format!("{prefix}measured (bar: half the ±1σ order-statistic interval)")
                        }
                        _ => format!("{prefix}measured (±1 s.e.)"),
                    },
                    points: measured,
                    error: Some(errors),
                    style: Style::Points,
                    color: Some(color),
                });
            }
        }
        let file = format!("{stem}_{name}");
        write_plot(
            files,
            &file,
            &Figure {
                title: &format!(
                    "{title} against {x_key}{}{sub}",
                    if name == "t_c" { shared_n.as_str() } else { "" }
                ),
                x_label: x_key,
                y_label: match name {
                    "sync_gap" => "gap",
                    "t_c" => "t_C",
                    _ => "t_S",
                },
                series: &figure_series,
                markers: &[],
            },
            &render_x,
        )?;
        write_rows(
            files,
            &format!("{file}.csv"),
            &[x_key, "group", "row", "measured", "stderr", "theory"],
            &rows,
        )?;
    }
    Ok(())
}

/// `t_c_measured_interval[i]` of a summary.
pub(super) fn interval(summary: &Value, i: usize) -> Option<f64> {
    summary.get("t_c_measured_interval")?.get(i)?.as_f64()
}

/// The theory of headline `name` (`t_s`, `t_c`, `sync_gap`) on a dense grid of `key` across the
/// values `xs` (integers when they all are), from `entry`'s config; None when fewer than two
/// values build.
pub(super) fn dense_theory(
    entry: &Entry,
    key: &str,
    name: &str,
    xs: &[String],
) -> Option<Vec<(f64, f64)>> {
    let cfg: Config = serde_json::from_value(entry.summary.get("config")?.clone()).ok()?;
    if name == "t_c" && cfg.train_file.is_some() {
        return None;
    }
    let field = match name {
        "sync_gap" => "sync_gap",
        "t_c" => "t_c",
        _ => "t_s",
    };
    let values: Vec<f64> = xs.iter().filter_map(|x| x.parse().ok()).collect();
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return None;
    }
    let integers = xs.iter().all(|x| x.parse::<i64>().is_ok());
    let grid: Vec<Value> = if integers {
        let (lo, hi) = (lo as i64, hi as i64);
        let step = ((hi - lo) / 80).max(1);
        (0..)
            .map(|k| lo + k * step)
            .take_while(|&v| v <= hi)
            .chain([hi])
            .map(Value::from)
            .collect()
    } else {
        (0..=80)
            .map(|k| Value::from(lo + (hi - lo) * k as f64 / 80.0))
            .collect()
    };
    let mut out: Vec<(f64, f64)> = vec![];
    for v in grid {
        let x = v.as_f64()?;
        if out.last().is_some_and(|l| l.0 == x) {
            continue;
        }
        let Ok(c) = set_key(cfg.clone(), key, &v) else {
            continue;
        };
        if c.validate().is_err() {
            continue;
        }
        let Ok(inputs) = super::super::Inputs::new(Kind::Theory, c, true) else {
            continue;
        };
        let mut session = super::super::Session::new(true);
        use super::super::Study as _;
        let Ok(th) = super::super::theory::TheoryStudy::setup(&inputs, &mut session) else {
            continue;
        };
        if let Some(t) = serde_json::to_value(&th)
            .ok()
            .and_then(|j| number(&j, field))
        {
            out.push((x, t));
        }
    }
    (out.len() >= 2).then_some(out)
}

/// Files made in memory, written by the caller (a sweep into its owned directory, `plot` where
/// it may write): (name, bytes).
pub(super) type Files = Vec<(String, Vec<u8>)>;

pub(super) fn write_plot(
    files: &mut Files,
    stem: &str,
    figure: &Figure,
    render: &Render,
) -> Result<()> {
    let svg = render_svg(figure, render)?;
    files.push((format!("{stem}.svg"), svg.into_bytes()));
    files.push((format!("{stem}.png"), render_png(figure, render)?));
    Ok(())
}

pub(super) fn write_rows(
    files: &mut Files,
    name: &str,
    header: &[&str],
    rows: &[Vec<String>],
) -> Result<()> {
    let mut s = header
        .iter()
        .map(|h| quote(h))
        .collect::<Vec<_>>()
        .join(",");
    s.push('\n');
    for r in rows {
        s += &r.join(",");
        s.push('\n');
    }
    files.push((name.to_string(), s.into_bytes()));
    Ok(())
}
