//! The grid of a sweep: its axes (config keys and their values), its points and their
//! directories.

#[allow(unused_imports)]
use super::*;

/// One swept key and its values, as given (`q=zero,optimal:1`, or a TOML array).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    /// The config key (kebab-case, as in TOML and the flags).
    pub key: String,
    /// Each value as the config reads it (a string such as `optimal:1`, or a number).
    pub values: Vec<Value>,
}

impl Axis {
    /// `KEY=V1,V2,…`: each value read as a TOML value when it is one (numbers, booleans), else
    /// as text (`zero`, `optimal:0.5`). Values holding commas need the TOML form.
    pub fn parse(text: &str) -> Result<Axis> {
        let (key, list) = text.split_once('=').ok_or_else(|| {
            anyhow!("--over {text}: expected KEY=V1,V2,… (e.g. --over q=zero,optimal:1)")
        })?;
        let key = key.trim().to_string();
        let values: Vec<Value> = list
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(scalar)
            .collect();
        ensure!(!values.is_empty(), "--over {text}: no values");
        Ok(Axis { key, values })
    }

    /// From a TOML `over = { key = [v1, v2] }` table.
    pub fn from_toml(table: &toml::Table) -> Result<Vec<Axis>> {
        table
            .iter()
            .map(|(key, v)| {
                let list = match v {
                    toml::Value::Array(a) => a.clone(),
                    one => vec![one.clone()],
                };
                let values = list
                    .iter()
                    .map(|v| serde_json::to_value(v).map_err(|e| anyhow!("over.{key}: {e}")))
                    .collect::<Result<Vec<_>>>()?;
                ensure!(!values.is_empty(), "over.{key}: no values");
                Ok(Axis {
                    key: key.clone(),
                    values,
                })
            })
            .collect()
    }
}

/// A value of `--over` as TOML reads it, or as text.
pub(super) fn scalar(text: &str) -> Value {
    toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|t| t.get("v").cloned())
        .filter(|v| !matches!(v, toml::Value::Table(_) | toml::Value::Datetime(_)))
        .and_then(|v| serde_json::to_value(v).ok())
        .unwrap_or_else(|| Value::String(text.to_string()))
}

/// A value's name in tables, figures and directory names (text without quotes).
pub fn label(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One point of the grid.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Point {
    pub index: usize,
    /// Its directory inside the sweep directory.
    pub dir: String,
    /// Each swept key with the name of its value, in axis order.
    pub params: Vec<(String, String)>,
    /// The point's config hash ([`config_hash`]): a reused directory must match it.
    pub config_hash: String,
    #[serde(skip)]
    pub cfg: Option<Config>,
}

/// The most points a sweep has (each is a study directory; the plan holds every config).
pub const MAX_POINTS: usize = 10_000;

/// The grid of a sweep: the study, its axes and its points.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    pub study: String,
    pub axes: Vec<Axis>,
    /// The config every point starts from.
    pub base: Config,
    pub points: Vec<Point>,
}

impl Plan {
    /// The Cartesian grid of `axes` over `base` (the last axis varies fastest); every point's
    /// config validated, a value the key cannot take named.
    pub fn new(kind: Kind, base: &Config, axes: &[Axis]) -> Result<Plan> {
        ensure!(
            !axes.is_empty(),
            "a sweep needs at least one --over KEY=V1,V2,…"
        );
        let known = Config::keys();
        for a in axes {
            ensure!(
                known.contains(&a.key),
                "--over {}: unknown config key (known keys: {})",
                a.key,
                known.join(", ")
            );
            ensure!(
                !kind.ignores().contains(&a.key.as_str()),
                "--over {}: `{}` does not read this key",
                a.key,
                kind.name()
            );
        }
        let sizes: Vec<String> = axes.iter().map(|a| a.values.len().to_string()).collect();
        let total = axes
            .iter()
            .try_fold(1usize, |n, a| n.checked_mul(a.values.len()))
            .filter(|&n| n <= MAX_POINTS)
            .ok_or_else(|| {
                anyhow!(
                    "--over gives a grid of {} points; a sweep runs at most {MAX_POINTS} (one \
                     directory each): sweep fewer values, or split the grid into several sweeps",
                    sizes.join(" × ")
                )
            })?;
        let mut points = Vec::with_capacity(total);
        for index in 0..total {
            let mut rest = index;
            let mut picks = vec![0; axes.len()];
            for (k, a) in axes.iter().enumerate().rev() {
                picks[k] = rest % a.values.len();
                rest /= a.values.len();
            }
            let mut cfg = base.clone();
            let mut params = vec![];
            for (a, &i) in axes.iter().zip(&picks) {
                let v = &a.values[i];
                cfg = set_key(cfg, &a.key, v)?;
                params.push((a.key.clone(), label(v)));
            }
            cfg.validate()
                .with_context(|| format!("sweep point {}", describe(&params)))?;
            let name: String = params
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("_");
            let dir = format!("p{index:0w$}_{}", sanitize(&name), w = digits(total));
            // The memory a point needs, before its model is built to resolve the scheme: a point
            // the machine cannot hold is refused with its estimate, not an abort.
            crate::study::resources::check_study(kind, &cfg, None)
                .with_context(|| format!("sweep point {dir}"))?;
            points.push(Point {
                index,
                dir,
                params,
                // The summary records the resolved scheme (`study::scheme`): hash what it holds.
                config_hash: config_hash(
                    kind.name(),
                    &crate::study::scheme::resolve(cfg.clone(), kind).unwrap_or(cfg.clone()),
                ),
                cfg: Some(cfg),
            });
        }
        Ok(Plan {
            study: kind.name().to_string(),
            axes: axes.to_vec(),
            base: base.clone(),
            points,
        })
    }

    pub fn kind(&self) -> Result<Kind> {
        Kind::from_name(&self.study)
    }

    /// The identity of the plan: the study and each point's directory and config hash.
    pub(super) fn identity(&self) -> Vec<(String, String)> {
        self.points
            .iter()
            .map(|p| (p.dir.clone(), p.config_hash.clone()))
            .collect()
    }

    pub(super) fn read(dir: &Path) -> Result<Plan> {
        let path = dir.join(PLAN_FILE);
        let text = crate::io::read_text(&path, crate::io::MAX_STATE_BYTES)?;
        serde_json::from_str(&text).with_context(|| format!("{}: not a sweep plan", path.display()))
    }
}

/// `key = v` on `cfg`: the value as given, else its text (`dim=8` is a number, `q=zero` text).
pub(super) fn set_key(cfg: Config, key: &str, v: &Value) -> Result<Config> {
    let one = |v: Value| {
        let mut m = Map::new();
        m.insert(key.to_string(), v);
        cfg.clone().overlay(m, "--over")
    };
    match one(v.clone()) {
        Ok(c) => Ok(c),
        Err(e) => match v {
            Value::String(_) => Err(e),
            other => one(Value::String(label(other))).map_err(|_| e),
        },
    }
}

pub(super) fn describe(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn digits(n: usize) -> usize {
    n.saturating_sub(1).max(1).to_string().len().max(2)
}

/// A directory name: letters, digits and `.-_=+` kept, anything else `_`.
pub(super) fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_=+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}
