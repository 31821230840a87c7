//! The tidy table of a sweep: every point's summary flattened into `sweep.csv` rows (one per
//! point × series row, parameters first) and the headlines of `sweep.json`.

#[allow(unused_imports)]
use super::*;

/// One study output to tabulate or overlay: its name, parameters and summary.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The legend name (`q=zero`).
    pub name: String,
    /// Its directory (relative to the sweep, or as given to `plot`).
    pub dir: String,
    pub params: Vec<(String, String)>,
    pub summary: Value,
}

pub(super) fn read_summary(dir: &Path) -> Result<Value> {
    let path = dir.join("summary.json");
    // Only a regular file within the limit: a FIFO or a link to /dev/zero is refused.
    let text = crate::io::read_text(&path, crate::io::MAX_STATE_BYTES)?;
    serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", path.display()))
}

pub(super) fn read_points(out: &Path, plan: &Plan, status: &[Status]) -> Result<Vec<Entry>> {
    plan.points
        .iter()
        .filter(|p| matches!(status[p.index], Status::Run | Status::Reused))
        .map(|p| {
            Ok(Entry {
                name: describe(&p.params),
                dir: p.dir.clone(),
                params: p.params.clone(),
                summary: read_summary(&out.join(&p.dir))?,
            })
        })
        .collect()
}

/// What the top of a sweep records besides its points.
pub(super) struct Extra {
    pub(super) shard: Option<String>,
    pub(super) merged_from: Option<Vec<String>>,
    pub(super) wall_seconds: f64,
    pub(super) backend: Option<String>,
    pub(super) warnings: Vec<String>,
}

/// The keys of the summary envelope (not the study's result).
pub(super) const ENVELOPE: [&str; 13] = [
    "schema_version",
    "command",
    "version",
    "seed",
    "backend",
    "wall_seconds",
    "shader_compile_seconds",
    "stopped_early",
    "fraction_done",
    "shard",
    "merged_from",
    "warnings",
    "config",
];

/// The study's result: the summary without its envelope.
pub(super) fn result_of(summary: &Value) -> Map<String, Value> {
    let mut m = summary.as_object().cloned().unwrap_or_default();
    m.retain(|k, _| !ENVELOPE.contains(&k.as_str()));
    m
}

/// The headline scalars of a result (numbers, text, null; short number arrays such as an
/// interval as `key.0`, `key.1`), and the theory's.
pub(super) fn headlines(summary: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    let result = result_of(summary);
    for (k, v) in &result {
        flatten_scalar(k, v, &mut out);
    }
    if let Some(Value::Object(t)) = result.get("theory") {
        for (k, v) in t {
            flatten_scalar(&format!("theory.{k}"), v, &mut out);
        }
    }
    out
}

pub(super) fn flatten_scalar(key: &str, v: &Value, out: &mut Map<String, Value>) {
    match v {
        Value::Array(a) if a.len() <= 4 && a.iter().all(Value::is_number) => {
            for (i, x) in a.iter().enumerate() {
                out.insert(format!("{key}.{i}"), x.clone());
            }
        }
        Value::Array(_) | Value::Object(_) => {}
        scalar => {
            out.insert(key.to_string(), scalar.clone());
        }
    }
}

/// The series of a result: each top-level array of objects (`phi`, `excess_entropy`, …), each
/// named item's arrays (`modes[].phi` as `phi_common`, …) and the theory's s(t) curve.
pub(super) fn series_of(summary: &Value) -> Vec<(String, Vec<Map<String, Value>>)> {
    let rows = |a: &[Value]| -> Option<Vec<Map<String, Value>>> {
        a.iter()
            .map(|v| {
                v.as_object().map(|o| {
                    let mut m = Map::new();
                    for (k, x) in o {
                        flatten_scalar(k, x, &mut m);
                    }
                    m
                })
            })
            .collect()
    };
    let mut out = vec![];
    let result = result_of(summary);
    for (k, v) in &result {
        let Value::Array(a) = v else { continue };
        if a.is_empty() {
            continue;
        }
        if let Some(r) = rows(a) {
            out.push((k.clone(), r));
        }
        for item in a {
            let (Some(name), Some(o)) =
                (item.get("name").and_then(Value::as_str), item.as_object())
            else {
                continue;
            };
            for (f, x) in o {
                if let Value::Array(inner) = x
                    && !inner.is_empty()
                    && let Some(r) = rows(inner)
                {
                    out.push((format!("{f}_{name}"), r));
                }
            }
        }
    }
    if let Some(Value::Array(a)) = result.get("theory").and_then(|t| t.get("s_curve"))
        && let Some(r) = rows(a)
        && !r.is_empty()
    {
        out.push(("s_curve".into(), r));
    }
    out
}

/// A CSV field: numbers in full precision, text quoted when it needs it, null empty.
pub(super) fn field(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => quote(s),
        Some(other) => other.to_string(),
    }
}

pub(super) fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One row of a series: its columns and values.
pub(super) type Row = Map<String, Value>;

/// The tidy long table: one row per point × series row; the swept keys, `point` and `series`
/// first, then every column any series has (empty where a series has none). The series
/// `summary` is each point's headline scalars.
pub fn tidy_csv(keys: &[String], entries: &[Entry]) -> String {
    let mut blocks: Vec<(&Entry, String, Vec<Row>)> = vec![];
    for e in entries {
        blocks.push((e, "summary".into(), vec![headlines(&e.summary)]));
        for (name, rows) in series_of(&e.summary) {
            blocks.push((e, name, rows));
        }
    }
    let mut columns: Vec<String> = vec![];
    for (_, _, rows) in &blocks {
        for r in rows {
            for k in r.keys() {
                if !columns.contains(k) {
                    columns.push(k.clone());
                }
            }
        }
    }
    let mut s = String::new();
    let header: Vec<String> = keys
        .iter()
        .cloned()
        .chain(["point".into(), "series".into()])
        .chain(columns.iter().cloned())
        .map(|h| quote(&h))
        .collect();
    s += &header.join(",");
    s.push('\n');
    for (e, name, rows) in &blocks {
        for r in rows {
            let mut cells: Vec<String> = keys
                .iter()
                .map(|k| {
                    quote(
                        &e.params
                            .iter()
                            .find(|(p, _)| p == k)
                            .map(|(_, v)| v.clone())
                            .unwrap_or_default(),
                    )
                })
                .collect();
            cells.push(quote(&e.dir));
            cells.push(quote(name));
            cells.extend(columns.iter().map(|c| field(r.get(c))));
            s += &cells.join(",");
            s.push('\n');
        }
    }
    s
}
