//! What each study reads, as a positive list ([`super::Study::READS`]) over the declared config
//! keys ([`crate::config::keys`]): a key no study lists is refused as a flag and reported from a
//! config file, so a new key is never read silently by a study that ignores it.

use crate::config::keys::{KEYS, Section};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::Kind;

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
}
