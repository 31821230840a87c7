//! What each study reads, as a positive list ([`super::Study::READS`]) over the declared config
//! keys ([`crate::config::keys`]): a key no study lists is refused as a flag and reported from a
//! config file, so a new key is never read silently by a study that ignores it.

use super::Kind;
use crate::config::keys::{Doc, KEYS, Section};

/// An entry of a study's [`super::Study::READS`]: every key of a section, or one key.
#[derive(Clone, Copy, Debug)]
pub enum Read {
    All(Section),
    Key(&'static str),
}

/// Whether `reads` covers `key`.
pub fn covers(reads: &[Read], key: &str) -> bool {
    let section = crate::config::keys::find(key).map(|k| k.section);
    reads.iter().any(|r| match r {
        Read::All(s) => Some(*s) == section,
        Read::Key(k) => *k == key,
    })
}

/// The declared keys `reads` leaves out.
pub fn left_out(reads: &[Read]) -> Vec<&'static str> {
    KEYS.iter()
        .map(|k| k.name)
        .filter(|k| !covers(reads, k))
        .collect()
}

/// The keys `kind` reads (every declared key for `None`: a sweep's), documented as their flags
/// are, in the order of their declaration.
pub fn documented(kind: Option<Kind>) -> Vec<Doc> {
    KEYS.iter()
        .filter(|k| kind.is_none_or(|kind| covers(kind.reads(), k.name)))
        .map(|k| Doc {
            // The declaration's own words (the flag's drop a lone sentence's period).
            help: k.help.to_string(),
            ..Doc::of(&k.arg(), k.section.heading())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::keys::Takes;

    #[test]
    fn every_key_a_study_reads_is_declared_and_every_key_is_read() {
        for kind in Kind::ALL {
            for r in kind.reads() {
                if let Read::Key(k) = r {
                    assert!(
                        crate::config::keys::find(k).is_some(),
                        "{}: '{k}' is not a config key",
                        kind.name()
                    );
                }
            }
        }
        for k in KEYS {
            assert!(
                Kind::ALL.iter().any(|kind| covers(kind.reads(), k.name)),
                "no study reads '{}'",
                k.name
            );
        }
        // The engine and figure keys are outside `theory`, which runs no engine and draws none.
        let theory = Kind::Theory.ignores();
        for k in KEYS.iter().filter(|k| !k.section.defines_study()) {
            assert!(theory.contains(&k.name), "theory reads '{}'", k.name);
        }
    }

    /// Every key is documented with a help and what it takes, and a study's list holds exactly
    /// the keys it reads.
    #[test]
    fn documented_keys_are_the_keys_each_study_reads() {
        let all = documented(None);
        assert_eq!(all.len(), KEYS.len());
        let defaults = serde_json::to_value(crate::config::Config::default()).unwrap();
        for d in &all {
            assert!(!d.help.trim().is_empty(), "{}: no help", d.name);
            // A switch exactly where the key is a bool.
            match &d.takes {
                Takes::Switch => assert!(defaults[&d.name].is_boolean(), "{}", d.name),
                Takes::Value { name, .. } => {
                    assert!(!name.is_empty(), "{}: no value name", d.name);
                    assert!(!defaults[&d.name].is_boolean(), "{}", d.name);
                }
            }
        }
        let scheme = all.iter().find(|d| d.name == "scheme").unwrap();
        assert!(
            matches!(&scheme.takes, Takes::Value { choices, .. } if choices.contains(&"exact".to_string()))
        );
        for kind in Kind::ALL {
            let names: Vec<String> = documented(Some(kind)).into_iter().map(|d| d.name).collect();
            for k in KEYS {
                assert_eq!(
                    names.contains(&k.name.to_string()),
                    !kind.ignores().contains(&k.name),
                    "{}: {}",
                    kind.name(),
                    k.name
                );
            }
        }
        assert!(
            !documented(Some(Kind::Theory))
                .iter()
                .any(|d| d.name == "backend")
        );
    }
}
