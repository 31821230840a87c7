//! Named sets of config keys, checked against the real keys of [`crate::config::Config`] by a
//! test.

/// Config keys that choose how a study runs, not what it measures: shards and checkpoints that
/// differ only in these belong to the same study.
pub const ENGINE_KEYS: &[&str] = &[
    "backend",
    "adapter",
    "batch",
    "threads",
    "steps-per-dispatch",
];

/// Config keys that choose how a study's figures are drawn, not what it measures.
pub const FIGURE_KEYS: &[&str] = &["figure-size", "dpi"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::study::Kind;

    #[test]
    fn every_named_key_is_a_config_key() {
        let serde_json::Value::Object(keys) = serde_json::to_value(Config::default()).unwrap()
        else {
            panic!("Config serialises to an object")
        };
        let mut named: Vec<&str> = [ENGINE_KEYS, FIGURE_KEYS].concat();
        for kind in Kind::ALL {
            named.extend(kind.ignores());
        }
        for k in named {
            assert!(keys.contains_key(k), "'{k}' is not a config key");
        }
    }
}
