//! How a key's command-line flag reads its value: the value parsers of [`super::keys::KEYS`].
//! Each parses the flag's text into the key's type and hands it on as the JSON value the config
//! overlay reads (the types serialise as their text form, so a flag, a TOML value and a
//! summary.json value read alike). Errors name the flag, as clap's typed parsers do.

use std::str::FromStr;

use clap::builder::{EnumValueParser, TypedValueParser};
use clap::{Arg, ArgAction, ValueEnum};
use serde::Serialize;
use serde_json::Value;

use crate::model::USpec;

/// The JSON value of a parsed flag.
fn json<T: Serialize>(v: T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// A value read by the type's `FromStr`, as clap reads a type it has no parser of its own for.
pub fn parsed<T>() -> impl TypedValueParser<Value = Value>
where
    T: FromStr + Serialize + Clone + Send + Sync + 'static,
    T::Err: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    (|s: &str| s.parse::<T>()).map(json)
}

/// A value read by one of clap's typed parsers (ranged integers, booleans, paths).
pub fn typed<P>(p: P) -> impl TypedValueParser<Value = Value>
where
    P: TypedValueParser,
    P::Value: Serialize,
{
    p.map(json)
}

/// One of the variants of a value enum (the help lists them).
pub fn choice<T: ValueEnum + Serialize + Clone + Send + Sync + 'static>()
-> impl TypedValueParser<Value = Value> {
    EnumValueParser::<T>::new().map(json)
}

/// A value read by a parsing function.
pub fn with<T: Serialize + Clone + Send + Sync + 'static>(
    f: fn(&str) -> Result<T, String>,
) -> impl TypedValueParser<Value = Value> {
    (move |s: &str| f(s)).map(json)
}

/// A finite number: so that it survives the JSON overlay (NaN would read as unset) and bad
/// values are refused at parse time, naming the flag.
pub fn number() -> impl TypedValueParser<Value = Value> {
    with(finite)
}

/// A count (see [`count`]).
pub fn whole<T: TryFrom<u64> + Serialize + Clone + Send + Sync + 'static>()
-> impl TypedValueParser<Value = Value> {
    with(count::<T>)
}

/// A comma-separated list of finite numbers; a repeated flag adds to it.
pub fn numbers(a: Arg) -> Arg {
    a.value_delimiter(',')
        .action(ArgAction::Append)
        .value_parser(number())
}

/// A switch: `--flag` alone is true, `--flag false` turns it off.
pub fn switch(a: Arg) -> Arg {
    a.value_name("BOOL")
        .num_args(0..=1)
        .default_missing_value("true")
        .value_parser(typed(clap::builder::BoolValueParser::new()))
}

/// Spec flags may start with a minus sign (`pair:0:1:-2`).
pub fn spec<T>(a: Arg) -> Arg
where
    T: FromStr + Serialize + Clone + Send + Sync + 'static,
    T::Err: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    a.value_name("SPEC")
        .allow_hyphen_values(true)
        .value_parser(parsed::<T>())
}

/// `--within-cov` reads like `--u`; its errors name it.
pub fn within_cov_spec(s: &str) -> Result<USpec, String> {
    crate::model::spec::parse_spd_spec("within-cov", "W is a covariance shape", s)
        .map_err(|e| e.to_string())
}

pub fn steps(s: &str) -> Result<crate::plan::Steps, String> {
    s.parse().map_err(|e: anyhow::Error| e.to_string())
}

/// A count: digits (`1000000`, `1_000_000`) or an exact whole number in scientific notation
/// (`1e6`, `2.5e3`), so `--n-train 1e12` reaches the check that states what it would cost.
pub fn count<T: TryFrom<u64>>(s: &str) -> Result<T, String> {
    let t = s.trim().replace('_', "");
    let n = match t.parse::<u64>() {
        Ok(n) => n,
        Err(_) => match t.parse::<f64>() {
            Ok(x) if x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x < 1.8e19 => x as u64,
            Ok(_) => return Err(format!("'{s}' is not a whole number ≥ 0")),
            Err(_) => return Err(format!("'{s}' is not a whole number (e.g. 1000000 or 1e6)")),
        },
    };
    T::try_from(n).map_err(|_| format!("{n} is too large"))
}

/// A finite number.
pub fn finite(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        Ok(_) => Err("must be a finite number".into()),
        Err(e) => Err(e.to_string()),
    }
}
