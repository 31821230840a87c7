//! `--u`, `--q`, `--mean` spec parsers: never panic, and Display is canonical:
//! `parse(to_string(parse(s))) == parse(s)` and printing is idempotent.
#![no_main]

use std::fmt::{Debug, Display};
use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use regimes::model::{MeanSpec, QSpec, USpec};

fn round_trip<T>(s: &str)
where
    T: FromStr + Display + Debug + PartialEq,
    T::Err: Display,
{
    let Ok(v) = s.parse::<T>() else { return };
    let text = v.to_string();
    let back = text
        .parse::<T>()
        .unwrap_or_else(|e| panic!("{s:?} parsed to {v:?}, whose Display {text:?} fails to parse: {e:#}"));
    assert_eq!(back, v, "{s:?} -> {v:?} -> {text:?} -> {back:?}");
    assert_eq!(back.to_string(), text, "Display is not canonical for {v:?}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    round_trip::<USpec>(s);
    round_trip::<QSpec>(s);
    round_trip::<MeanSpec>(s);
});
