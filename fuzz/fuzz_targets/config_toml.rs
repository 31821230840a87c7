//! `Config::from_toml_str` then `validate()`: errors are fine, panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use regimes::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(cfg) = Config::from_toml_str(text) {
        let _ = cfg.validate();
    }
});
