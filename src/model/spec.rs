//! The spec grammar of the model's building blocks: `--u`, `--q` and `--mean` as typed values.
//! Each spec parses from its text form ([`FromStr`], errors name the flag and list the accepted
//! forms), prints back in the canonical form ([`Display`](std::fmt::Display), `parse(display(s)) == s`), and
//! serialises as that text, so TOML files and JSON summaries read like the command line.
//!
//! (Over 500 lines: 146 of its 607 are the unit tests of the code above them.)

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{Result, anyhow};

use super::coupling::{Coupling, Kind, Strength};

/// How the stationary precision U is built (`--u`).
#[derive(Clone, Debug, PartialEq)]
pub enum USpec {
    /// U = I.
    Identity,
    /// U = diag(values); its length fixes d.
    Diag(Vec<f64>),
    /// Diagonal with eigenvalues linearly spaced from lo to hi.
    Linspace(f64, f64),
    /// Diagonal with eigenvalues geometrically spaced from lo to hi.
    Geomspace(f64, f64),
    /// Geometric spectrum lo..hi in a random orthonormal basis (seeded).
    Rotated(f64, f64),
    /// A d×d matrix from .npy or CSV.
    File(PathBuf),
}

/// How the antisymmetric Q is built (`--q`).
#[derive(Clone, Debug, PartialEq)]
pub enum QSpec {
    /// Reversible: Q = 0.
    Zero,
    /// `scale · Q_opt`, the Lelièvre–Nier–Pavliotis optimum (scale 1 reaches the gap Tr(U)/d).
    Optimal(f64),
    /// `q (e_i e_jᵀ − e_j e_iᵀ)` on coordinate axes i, j (0-based): U's eigen-directions when U is
    /// diagonal.
    Pair(usize, usize, f64),
    /// Rotation of strength q coupling the class direction to U's softest directions.
    TowardSoft(f64),
    /// Random antisymmetric matrix with the given Frobenius norm (seeded).
    Random(f64),
    /// A d×d antisymmetric matrix from .npy or CSV.
    File(PathBuf),
}

/// Direction of the class mean m for the two-class target (`--mean`).
#[derive(Clone, Debug, PartialEq)]
pub enum MeanSpec {
    /// Along (1, …, 1).
    Ones,
    /// Along U's stiffest eigenvector (largest eigenvalue).
    Stiff,
    /// Along U's softest eigenvector (smallest eigenvalue).
    Soft,
    /// A random direction (seeded).
    Random,
    /// A vector from .npy or CSV (rescaled to the requested ‖m‖²).
    File(PathBuf),
}

const U_FORMS: &str =
    "identity | diag:A,B,... | linspace:LO:HI | geomspace:LO:HI | rotated:LO:HI | file:PATH";
const Q_FORMS: &str =
    "zero | optimal | optimal:SCALE | pair:I:J:Q | toward-soft:Q | random:FROB | file:PATH";
const MEAN_FORMS: &str = "ones | stiff | soft | random | file:PATH";

fn spec_error(flag: &str, s: &str, why: &str, forms: &str) -> anyhow::Error {
    anyhow!("{flag} (--{flag}): cannot use '{s}': {why}; accepted forms: {forms}")
}

/// Split `head:rest` (rest may contain ':' only for `file:`).
fn split_spec(s: &str) -> (&str, Option<&str>) {
    match s.split_once(':') {
        Some((h, r)) => (h.trim(), Some(r)),
        None => (s.trim(), None),
    }
}

fn number(flag: &str, s: &str, forms: &str, what: &str, text: &str) -> Result<f64> {
    let x: f64 = text
        .trim()
        .parse()
        .map_err(|_| spec_error(flag, s, &format!("{what} '{text}' is not a number"), forms))?;
    if !x.is_finite() {
        return Err(spec_error(
            flag,
            s,
            &format!("{what} must be finite (got {text})"),
            forms,
        ));
    }
    Ok(x)
}

fn args<'a>(
    flag: &str,
    s: &str,
    forms: &str,
    rest: Option<&'a str>,
    n: usize,
) -> Result<Vec<&'a str>> {
    let parts: Vec<&str> = rest.map(|r| r.split(':').collect()).unwrap_or_default();
    if parts.len() != n || parts.iter().any(|p| p.trim().is_empty()) {
        let head = split_spec(s).0;
        return Err(spec_error(
            flag,
            s,
            &format!(
                "'{head}' takes {n} ':'-separated value{}",
                if n == 1 { "" } else { "s" }
            ),
            forms,
        ));
    }
    Ok(parts)
}

fn file_arg(flag: &str, s: &str, forms: &str, rest: Option<&str>) -> Result<PathBuf> {
    match rest {
        Some(p) if !p.trim().is_empty() => Ok(PathBuf::from(p.trim())),
        _ => Err(spec_error(flag, s, "file: needs a path", forms)),
    }
}

fn no_args(flag: &str, s: &str, forms: &str, rest: Option<&str>) -> Result<()> {
    match rest {
        None => Ok(()),
        Some(_) => Err(spec_error(
            flag,
            s,
            &format!("'{}' takes no value", split_spec(s).0),
            forms,
        )),
    }
}

/// Parse `--u`: `identity | diag:a,b,… | linspace:LO:HI | geomspace:LO:HI | rotated:LO:HI |
/// file:PATH`. Eigenvalues must be positive and finite (U is a precision).
fn parse_u(s: &str) -> Result<USpec> {
    parse_spd_spec("u", "U is a precision", s)
}

/// A spec in U's forms for the flag `flag` (`--within-cov`): its errors name the flag and say
/// why eigenvalues must be positive (`role`, e.g. "W is a covariance shape").
pub fn parse_spd_spec(flag: &str, role: &str, s: &str) -> Result<USpec> {
    let (f, forms) = (flag, U_FORMS);
    let (head, rest) = split_spec(s);
    let positive = |what: &str, text: &str| -> Result<f64> {
        let x = number(f, s, forms, what, text)?;
        if x <= 0.0 {
            return Err(spec_error(
                f,
                s,
                &format!("{what} must be positive ({role}; got {text})"),
                forms,
            ));
        }
        Ok(x)
    };
    let range = |rest| -> Result<(f64, f64)> {
        let a = args(f, s, forms, rest, 2)?;
        Ok((positive("LO", a[0])?, positive("HI", a[1])?))
    };
    Ok(match head {
        "identity" => {
            no_args(f, s, forms, rest)?;
            USpec::Identity
        }
        "diag" => {
            let r = rest.unwrap_or("");
            if r.trim().is_empty() {
                return Err(spec_error(
                    f,
                    s,
                    "diag: needs a comma list of eigenvalues",
                    forms,
                ));
            }
            USpec::Diag(
                r.split(',')
                    .map(|x| positive("eigenvalue", x))
                    .collect::<Result<_>>()?,
            )
        }
        "linspace" => {
            let (lo, hi) = range(rest)?;
            USpec::Linspace(lo, hi)
        }
        "geomspace" => {
            let (lo, hi) = range(rest)?;
            USpec::Geomspace(lo, hi)
        }
        "rotated" => {
            let (lo, hi) = range(rest)?;
            USpec::Rotated(lo, hi)
        }
        "file" => USpec::File(file_arg(f, s, forms, rest)?),
        _ => return Err(spec_error(f, s, &format!("unknown form '{head}'"), forms)),
    })
}

/// Parse `--q`: `zero | optimal | optimal:SCALE | pair:I:J:Q | toward-soft:Q | random:FROB |
/// file:PATH`. I, J are 0-based indices into U's eigenbasis.
fn parse_q(s: &str) -> Result<QSpec> {
    let (f, forms) = ("q", Q_FORMS);
    let (head, rest) = split_spec(s);
    Ok(match head {
        "zero" => {
            no_args(f, s, forms, rest)?;
            QSpec::Zero
        }
        "optimal" => match rest {
            None => QSpec::Optimal(1.0),
            Some(_) => {
                let a = args(f, s, forms, rest, 1)?;
                QSpec::Optimal(number(f, s, forms, "SCALE", a[0])?)
            }
        },
        "pair" => {
            let a = args(f, s, forms, rest, 3)?;
            let index = |what: &str, text: &str| -> Result<usize> {
                text.trim().parse().map_err(|_| {
                    spec_error(
                        f,
                        s,
                        &format!("{what} must be a 0-based index (got '{text}')"),
                        forms,
                    )
                })
            };
            let (i, j) = (index("I", a[0])?, index("J", a[1])?);
            if i == j {
                return Err(spec_error(f, s, "I and J must differ", forms));
            }
            QSpec::Pair(i, j, number(f, s, forms, "Q", a[2])?)
        }
        "toward-soft" => {
            let a = args(f, s, forms, rest, 1)?;
            QSpec::TowardSoft(number(f, s, forms, "Q", a[0])?)
        }
        "random" => {
            let a = args(f, s, forms, rest, 1)?;
            let frob = number(f, s, forms, "FROB", a[0])?;
            if frob < 0.0 {
                return Err(spec_error(f, s, "FROB (a norm) must be ≥ 0", forms));
            }
            QSpec::Random(frob)
        }
        "file" => QSpec::File(file_arg(f, s, forms, rest)?),
        _ => return Err(spec_error(f, s, &format!("unknown form '{head}'"), forms)),
    })
}

/// Parse `--mean`: `ones | stiff | soft | random | file:PATH`.
fn parse_mean(s: &str) -> Result<MeanSpec> {
    let (f, forms) = ("mean", MEAN_FORMS);
    let (head, rest) = split_spec(s);
    let simple = |spec: MeanSpec| -> Result<MeanSpec> {
        no_args(f, s, forms, rest)?;
        Ok(spec)
    };
    match head {
        "ones" => simple(MeanSpec::Ones),
        "stiff" => simple(MeanSpec::Stiff),
        "soft" => simple(MeanSpec::Soft),
        "random" => simple(MeanSpec::Random),
        "file" => Ok(MeanSpec::File(file_arg(f, s, forms, rest)?)),
        _ => Err(spec_error(f, s, &format!("unknown form '{head}'"), forms)),
    }
}

impl FromStr for USpec {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        parse_u(s)
    }
}

impl FromStr for QSpec {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        parse_q(s)
    }
}

impl FromStr for MeanSpec {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        parse_mean(s)
    }
}

/// Comma list of numbers in their shortest round-trip form.
fn list(values: &[f64]) -> String {
    values
        .iter()
        .map(f64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

impl fmt::Display for USpec {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            USpec::Identity => write!(f, "identity"),
            USpec::Diag(v) => write!(f, "diag:{}", list(v)),
            USpec::Linspace(lo, hi) => write!(f, "linspace:{lo}:{hi}"),
            USpec::Geomspace(lo, hi) => write!(f, "geomspace:{lo}:{hi}"),
            USpec::Rotated(lo, hi) => write!(f, "rotated:{lo}:{hi}"),
            USpec::File(p) => write!(f, "file:{}", p.display()),
        }
    }
}

impl fmt::Display for QSpec {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            QSpec::Zero => write!(f, "zero"),
            QSpec::Optimal(s) if *s == 1.0 => write!(f, "optimal"),
            QSpec::Optimal(s) => write!(f, "optimal:{s}"),
            QSpec::Pair(i, j, q) => write!(f, "pair:{i}:{j}:{q}"),
            QSpec::TowardSoft(q) => write!(f, "toward-soft:{q}"),
            QSpec::Random(frob) => write!(f, "random:{frob}"),
            QSpec::File(p) => write!(f, "file:{}", p.display()),
        }
    }
}

impl fmt::Display for MeanSpec {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            MeanSpec::Ones => write!(f, "ones"),
            MeanSpec::Stiff => write!(f, "stiff"),
            MeanSpec::Soft => write!(f, "soft"),
            MeanSpec::Random => write!(f, "random"),
            MeanSpec::File(p) => write!(f, "file:{}", p.display()),
        }
    }
}

/// Serde through the text form (`Display` out, `FromStr` in), for every spec-like type of the
/// model.
macro_rules! serde_as_text {
    ($($t:ty),*) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                use serde::de::Error as _;
                let text = String::deserialize(d)?;
                text.parse().map_err(|e: anyhow::Error| D::Error::custom(format!("{e:#}")))
            }
        }
    )*};
}
serde_as_text!(USpec, QSpec, MeanSpec);

impl USpec {
    /// The files the spec reads (to infer d from them).
    pub fn file(&self) -> Option<&PathBuf> {
        match self {
            USpec::File(p) => Some(p),
            _ => None,
        }
    }
}

impl QSpec {
    pub fn file(&self) -> Option<&PathBuf> {
        match self {
            QSpec::File(p) => Some(p),
            _ => None,
        }
    }
}

impl MeanSpec {
    pub fn file(&self) -> Option<&PathBuf> {
        match self {
            MeanSpec::File(p) => Some(p),
            _ => None,
        }
    }
}

// The --coupling grammar, beside the others (the coupling itself is in `super::coupling`).

impl FromStr for Coupling {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        let forms = "additive:G or diffusive:G (G a number, step:G0,T1,G1,…, ramp:G0,T1,G1,… or \
                     file:PATH), additive:features:G1,…,Gd, diffusive:features:G1,…,Gd, \
                     rotating:G,OMEGA";
        let (head, rest) = s.trim().split_once(':').unwrap_or((s.trim(), ""));
        let number = |x: &str| -> Result<f64> {
            x.trim().parse().map_err(|_| {
                anyhow!(
                    "coupling (--coupling): '{s}': '{x}' is not a number; accepted forms: {forms}"
                )
            })
        };
        let coupling = match head {
            "additive" | "diffusive" => {
                let kind = if head == "additive" {
                    Kind::Additive
                } else {
                    Kind::Diffusive
                };
                let strength = match rest.strip_prefix("features:") {
                    Some(list) => Strength::Features(
                        list.split(',').map(number).collect::<Result<Vec<f64>>>()?,
                    ),
                    None => Strength::Uniform(rest.parse().map_err(|e| {
                        anyhow!("coupling (--coupling): '{s}': {e}; accepted forms: {forms}")
                    })?),
                };
                Coupling::Symmetric { kind, strength }
            }
            "rotating" => {
                let parts = rest.split(',').map(number).collect::<Result<Vec<f64>>>()?;
                let [gamma, omega] = parts[..] else {
                    return Err(anyhow!(
                        "coupling (--coupling): '{s}': rotating takes two numbers G,OMEGA"
                    ));
                };
                Coupling::Rotating { gamma, omega }
            }
            _ => {
                return Err(anyhow!(
                    "coupling (--coupling): cannot use '{s}': unknown form; accepted forms: {forms}"
                ));
            }
        };
        coupling.check(None)?;
        Ok(coupling)
    }
}

impl fmt::Display for Coupling {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Coupling::Symmetric { kind, strength } => {
                write!(f, "{}:", kind.name())?;
                match strength {
                    Strength::Uniform(s) => write!(f, "{s}"),
                    Strength::Features(g) => {
                        let list: Vec<String> = g.iter().map(|x| x.to_string()).collect();
                        write!(f, "features:{}", list.join(","))
                    }
                }
            }
            Coupling::Rotating { gamma, omega } => write!(f, "rotating:{gamma},{omega}"),
        }
    }
}

serde_as_text!(Coupling);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spec_form_parses() {
        use std::path::PathBuf as P;
        assert_eq!(parse_u("identity").unwrap(), USpec::Identity);
        assert_eq!(
            parse_u("diag:1,2.5,3e-1").unwrap(),
            USpec::Diag(vec![1.0, 2.5, 0.3])
        );
        assert_eq!(
            parse_u("linspace:0.5:2").unwrap(),
            USpec::Linspace(0.5, 2.0)
        );
        assert_eq!(
            parse_u("geomspace:0.2:5").unwrap(),
            USpec::Geomspace(0.2, 5.0)
        );
        assert_eq!(parse_u("rotated:1:10").unwrap(), USpec::Rotated(1.0, 10.0));
        assert_eq!(
            parse_u("file:C:/a:b.npy").unwrap(),
            USpec::File(P::from("C:/a:b.npy"))
        );
        assert_eq!(parse_q("zero").unwrap(), QSpec::Zero);
        assert_eq!(parse_q("optimal").unwrap(), QSpec::Optimal(1.0));
        assert_eq!(parse_q("optimal:0.5").unwrap(), QSpec::Optimal(0.5));
        assert_eq!(parse_q("pair:0:3:-1.5").unwrap(), QSpec::Pair(0, 3, -1.5));
        assert_eq!(parse_q("toward-soft:2").unwrap(), QSpec::TowardSoft(2.0));
        assert_eq!(parse_q("random:3").unwrap(), QSpec::Random(3.0));
        assert_eq!(
            parse_q("file:q.csv").unwrap(),
            QSpec::File(P::from("q.csv"))
        );
        assert_eq!(parse_mean("ones").unwrap(), MeanSpec::Ones);
        assert_eq!(parse_mean("stiff").unwrap(), MeanSpec::Stiff);
        assert_eq!(parse_mean("soft").unwrap(), MeanSpec::Soft);
        assert_eq!(parse_mean("random").unwrap(), MeanSpec::Random);
        assert_eq!(
            parse_mean("file:m.npy").unwrap(),
            MeanSpec::File(P::from("m.npy"))
        );
    }

    #[test]
    fn bad_specs_error_with_flag_and_forms() {
        for bad in [
            "",
            "eye",
            "identity:2",
            "diag:",
            "diag:1,,2",
            "diag:1,-2",
            "diag:1,nan",
            "linspace:1",
            "linspace:1:2:3",
            "geomspace:0:1",
            "rotated:1:inf",
            "file:",
        ] {
            let e = parse_u(bad).unwrap_err().to_string();
            assert!(
                e.starts_with("u (--u)") && e.contains("geomspace:LO:HI"),
                "{bad}: {e}"
            );
        }
        for bad in [
            "one",
            "zero:1",
            "optimal:",
            "optimal:x",
            "optimal:NaN",
            "pair:0:1",
            "pair:1:1:2",
            "pair:-1:2:1",
            "toward-soft",
            "random:-1",
            "random:inf",
            "file",
        ] {
            let e = parse_q(bad).unwrap_err().to_string();
            assert!(
                e.starts_with("q (--q)") && e.contains("pair:I:J:Q"),
                "{bad}: {e}"
            );
        }
        for bad in ["up", "ones:1", "file:", "Soft"] {
            let e = parse_mean(bad).unwrap_err().to_string();
            assert!(
                e.starts_with("mean (--mean)") && e.contains("stiff"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn display_is_canonical_and_parses_back() {
        for text in [
            "identity",
            "diag:1,2.5,0.3",
            "linspace:0.5:2",
            "geomspace:0.2:5",
            "rotated:1:10",
            "file:C:/a:b.npy",
            "zero",
            "optimal",
            "optimal:0.5",
            "pair:0:3:-1.5",
            "toward-soft:2",
            "random:3",
            "file:q.csv",
            "ones",
            "soft",
            "file:m.npy",
        ] {
            let back = |t: &str| -> String {
                if let Ok(u) = t.parse::<USpec>() {
                    u.to_string()
                } else if let Ok(q) = t.parse::<QSpec>() {
                    q.to_string()
                } else {
                    t.parse::<MeanSpec>().unwrap().to_string()
                }
            };
            assert_eq!(back(text), text);
        }
        // Non-canonical input prints canonically.
        assert_eq!("optimal:1".parse::<QSpec>().unwrap().to_string(), "optimal");
        assert_eq!(
            "diag:1e0,2.50".parse::<USpec>().unwrap().to_string(),
            "diag:1,2.5"
        );
    }

    #[test]
    fn serde_uses_the_text_form() {
        let q: QSpec = serde_json::from_str("\"pair:0:3:-1.5\"").unwrap();
        assert_eq!(q, QSpec::Pair(0, 3, -1.5));
        assert_eq!(serde_json::to_string(&q).unwrap(), "\"pair:0:3:-1.5\"");
        let e = serde_json::from_str::<USpec>("\"eye\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("u (--u)"), "{e}");
    }
}
