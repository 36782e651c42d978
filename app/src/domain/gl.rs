//! General-ledger states and the mapping from vendor order statuses to them.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use super::excerpt;

/// The state of an order as the general ledger sees it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum GlState {
    Pending,
    Fulfilled,
    Refunded,
    Failed,
}

/// Why a GL state name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GlStateError {
    #[error("unknown GL state {input:?}; valid states are pending, fulfilled, refunded, failed")]
    Unknown { input: String },
}

impl GlState {
    pub const ALL: [GlState; 4] = [
        GlState::Pending,
        GlState::Fulfilled,
        GlState::Refunded,
        GlState::Failed,
    ];

    /// Lowercase name: "pending", "fulfilled", "refunded", "failed".
    pub const fn as_str(&self) -> &'static str {
        match self {
            GlState::Pending => "pending",
            GlState::Fulfilled => "fulfilled",
            GlState::Refunded => "refunded",
            GlState::Failed => "failed",
        }
    }

    /// Whether an order in this state may move to `next` when a vendor reports it. States only
    /// move forward: a late "pending" never undoes "fulfilled", while "refunded" after
    /// "fulfilled" is accepted. A failed order may still be fulfilled (vendors retry), and
    /// nothing leaves "refunded".
    pub const fn may_advance_to(self, next: GlState) -> bool {
        matches!(
            (self, next),
            (
                GlState::Pending,
                GlState::Fulfilled | GlState::Failed | GlState::Refunded
            ) | (GlState::Fulfilled, GlState::Refunded)
                | (GlState::Failed, GlState::Fulfilled | GlState::Refunded)
        )
    }

    /// Case-insensitive ("Fulfilled" is fine); nothing is trimmed.
    pub fn parse(input: &str) -> Result<GlState, GlStateError> {
        GlState::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(input))
            .ok_or_else(|| GlStateError::Unknown {
                input: excerpt(input),
            })
    }
}

impl fmt::Display for GlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GlState {
    type Err = GlStateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GlState::parse(s)
    }
}

impl TryFrom<&str> for GlState {
    type Error = GlStateError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        GlState::parse(s)
    }
}

impl Serialize for GlState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for GlState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        GlState::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Maps a vendor's order status to a [`GlState`], case-insensitively.
///
/// Status names are normalized (trimmed, lowercased) on the way in and on
/// lookup. A status that is not in the map is *unmapped*: it is never guessed.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct StatusMapping {
    states: BTreeMap<String, GlState>,
}

/// Why a status mapping was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StatusMappingError {
    #[error("a vendor status name is empty; every mapped status needs a name")]
    EmptyStatus,
    #[error("vendor status {status:?} is mapped to both {first} and {second}; it can map to only one GL state")]
    Conflict {
        /// The normalized status name.
        status: String,
        first: GlState,
        second: GlState,
    },
}

/// Trim + Unicode lowercase, so " Completed " and "COMPLETED" are one key.
fn normalize_status(status: &str) -> String {
    status.trim().to_lowercase()
}

impl StatusMapping {
    /// Builds a mapping. Repeating a status with the same state is fine;
    /// mapping it to two different states, or an empty name, is an error.
    /// An empty list gives an empty mapping (every status unmapped).
    pub fn from_pairs<S, I>(pairs: I) -> Result<StatusMapping, StatusMappingError>
    where
        S: AsRef<str>,
        I: IntoIterator<Item = (S, GlState)>,
    {
        let mut states = BTreeMap::new();
        for (status, state) in pairs {
            let key = normalize_status(status.as_ref());
            if key.is_empty() {
                return Err(StatusMappingError::EmptyStatus);
            }
            match states.entry(key) {
                Entry::Vacant(slot) => {
                    slot.insert(state);
                }
                Entry::Occupied(slot) if *slot.get() == state => {}
                Entry::Occupied(slot) => {
                    return Err(StatusMappingError::Conflict {
                        status: excerpt(slot.key()),
                        first: *slot.get(),
                        second: state,
                    });
                }
            }
        }
        Ok(StatusMapping { states })
    }

    /// A sensible mapping for vendors without their own: pending/processing →
    /// pending; fulfilled/completed/delivered → fulfilled; failed/canceled/
    /// cancelled → failed; refunded → refunded.
    pub fn generic_default() -> StatusMapping {
        StatusMapping::from_pairs([
            ("pending", GlState::Pending),
            ("processing", GlState::Pending),
            ("fulfilled", GlState::Fulfilled),
            ("completed", GlState::Fulfilled),
            ("delivered", GlState::Fulfilled),
            ("failed", GlState::Failed),
            ("canceled", GlState::Failed),
            ("cancelled", GlState::Failed),
            ("refunded", GlState::Refunded),
        ])
        .expect("the generic default mapping is valid")
    }

    /// The GL state for `vendor_status`, or `None` if it is unmapped.
    pub fn gl_state_for(&self, vendor_status: &str) -> Option<GlState> {
        self.states.get(&normalize_status(vendor_status)).copied()
    }

    /// Exact spellings of the mapped statuses, each with its state: every name as mapped, in
    /// capitals and capitalised ("fulfilled", "FULFILLED", "Fulfilled"). A caller that can only
    /// compare strings exactly (SQL) may rely on these; every one maps as shown, and a status
    /// spelt any other way must be looked up with [`StatusMapping::gl_state_for`].
    pub fn spellings(&self) -> Vec<(String, GlState)> {
        let mut out: Vec<(String, GlState)> = Vec::with_capacity(self.states.len() * 3);
        for (status, state) in &self.states {
            let mut chars = status.chars();
            let capitalised: String = chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect())
                .unwrap_or_default();
            for spelling in [status.clone(), status.to_uppercase(), capitalised] {
                if self.gl_state_for(&spelling) == Some(*state)
                    && !out.iter().any(|(s, _)| *s == spelling)
                {
                    out.push((spelling, *state));
                }
            }
        }
        out
    }

    /// (normalized status, state) pairs, sorted by status.
    pub fn iter(&self) -> impl Iterator<Item = (&str, GlState)> + '_ {
        self.states
            .iter()
            .map(|(status, state)| (status.as_str(), *state))
    }

    pub fn len(&self) -> usize {
        self.states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// This mapping with `status` also mapped to `state`. Adding what is already there changes
    /// nothing; a status already mapped to another state is a conflict, never an overwrite.
    pub fn with(&self, status: &str, state: GlState) -> Result<StatusMapping, StatusMappingError> {
        StatusMapping::from_pairs(
            self.iter()
                .map(|(s, st)| (s.to_owned(), st))
                .chain(std::iter::once((status.to_owned(), state))),
        )
    }
}

impl Serialize for StatusMapping {
    /// A map `{"status": "state"}`, sorted by status.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.states.len()))?;
        for (status, state) in self.iter() {
            map.serialize_entry(status, &state)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for StatusMapping {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairsVisitor;

        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = StatusMapping;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object mapping vendor statuses to GL states")
            }

            fn visit_map<A: MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<StatusMapping, A::Error> {
                // Collect every entry (duplicates included) so from_pairs sees conflicts.
                let mut pairs = Vec::new();
                while let Some(pair) = access.next_entry::<String, GlState>()? {
                    pairs.push(pair);
                }
                StatusMapping::from_pairs(pairs).map_err(serde::de::Error::custom)
            }
        }

        deserializer.deserialize_map(PairsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::super::serde_support::{from_map, from_str, from_value, to_value, Value};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_spelling_maps_to_its_state() {
        let mapping = StatusMapping::generic_default()
            .with("ausgeführt", GlState::Fulfilled)
            .unwrap()
            .with("in Bearbeitung", GlState::Pending)
            .unwrap();
        let spellings = mapping.spellings();
        for (spelling, state) in &spellings {
            assert_eq!(mapping.gl_state_for(spelling), Some(*state), "{spelling}");
        }
        for wanted in [
            "fulfilled",
            "FULFILLED",
            "Fulfilled",
            "AUSGEFÜHRT",
            "In bearbeitung",
        ] {
            assert!(spellings.iter().any(|(s, _)| s == wanted), "{wanted}");
        }
        let mut names: Vec<&str> = spellings.iter().map(|(s, _)| s.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), spellings.len(), "no spelling twice");
        assert!(StatusMapping::default().spellings().is_empty());
    }

    #[test]
    fn with_adds_a_status_once_and_never_overwrites() {
        let mapping = StatusMapping::generic_default();
        let more = mapping.with(" On Hold ", GlState::Pending).unwrap();
        assert_eq!(more.len(), mapping.len() + 1);
        assert_eq!(more.gl_state_for("on hold"), Some(GlState::Pending));
        assert_eq!(more.with("ON HOLD", GlState::Pending).unwrap(), more);
        assert!(matches!(
            more.with("on hold", GlState::Failed),
            Err(StatusMappingError::Conflict { .. })
        ));
        assert_eq!(
            mapping.with("", GlState::Failed),
            Err(StatusMappingError::EmptyStatus)
        );
    }

    #[test]
    fn gl_states_only_move_forward() {
        use GlState::*;
        let allowed = [
            (Pending, Fulfilled),
            (Pending, Failed),
            (Pending, Refunded),
            (Fulfilled, Refunded),
            (Failed, Fulfilled),
            (Failed, Refunded),
        ];
        for from in GlState::ALL {
            for to in GlState::ALL {
                assert_eq!(
                    from.may_advance_to(to),
                    allowed.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn gl_state_names_parse_and_display() {
        for state in GlState::ALL {
            assert_eq!(GlState::parse(state.as_str()), Ok(state));
            assert_eq!(GlState::parse(&state.as_str().to_uppercase()), Ok(state));
            assert_eq!(state.to_string(), state.as_str());
            assert_eq!(
                to_value(&state).unwrap(),
                Value::Str(state.as_str().to_owned())
            );
            assert_eq!(from_str::<GlState>(state.as_str()).unwrap(), state);
        }
        assert_eq!("Fulfilled".parse::<GlState>(), Ok(GlState::Fulfilled));
        for bad in ["", " pending", "done", "refund"] {
            assert!(GlState::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            GlState::parse("done").unwrap_err().to_string(),
            "unknown GL state \"done\"; valid states are pending, fulfilled, refunded, failed"
        );
        assert!(from_str::<GlState>("done").is_err());
    }

    #[test]
    fn generic_default_maps_every_listed_status_in_any_case() {
        let mapping = StatusMapping::generic_default();
        let cases = [
            ("pending", GlState::Pending),
            ("PROCESSING", GlState::Pending),
            ("FULFILLED", GlState::Fulfilled),
            ("Completed", GlState::Fulfilled),
            ("delivered", GlState::Fulfilled),
            ("Failed", GlState::Failed),
            ("CANCELED", GlState::Failed),
            ("Cancelled", GlState::Failed),
            ("rEfUnDeD", GlState::Refunded),
            ("  completed\t", GlState::Fulfilled),
        ];
        for (status, state) in cases {
            assert_eq!(mapping.gl_state_for(status), Some(state), "{status:?}");
        }
        assert_eq!(mapping.len(), 9);
    }

    #[test]
    fn unknown_statuses_are_unmapped_never_guessed() {
        let mapping = StatusMapping::generic_default();
        for status in [
            "shipped",
            "",
            "   ",
            "fulfilled-ish",
            "complete",
            "refund",
            "cancel led",
        ] {
            assert_eq!(mapping.gl_state_for(status), None, "{status:?}");
        }
        assert_eq!(StatusMapping::default().gl_state_for("pending"), None);
    }

    #[test]
    fn keys_are_normalized_with_unicode_lowercase() {
        let mapping = StatusMapping::from_pairs([(" ÉXPÉDIÉ ", GlState::Fulfilled)]).unwrap();
        assert_eq!(mapping.gl_state_for("expédié"), None);
        assert_eq!(mapping.gl_state_for("éxpédié"), Some(GlState::Fulfilled));
        assert_eq!(
            mapping.iter().collect::<Vec<_>>(),
            [("éxpédié", GlState::Fulfilled)]
        );
    }

    #[test]
    fn from_pairs_rejects_empty_names_and_conflicts() {
        assert_eq!(
            StatusMapping::from_pairs([("", GlState::Pending)]),
            Err(StatusMappingError::EmptyStatus)
        );
        assert_eq!(
            StatusMapping::from_pairs([("  ", GlState::Pending)]),
            Err(StatusMappingError::EmptyStatus)
        );
        let err = StatusMapping::from_pairs([
            ("completed", GlState::Fulfilled),
            ("COMPLETED ", GlState::Failed),
        ])
        .unwrap_err();
        assert_eq!(
            err,
            StatusMappingError::Conflict {
                status: "completed".to_owned(),
                first: GlState::Fulfilled,
                second: GlState::Failed,
            }
        );
        assert_eq!(
            err.to_string(),
            "vendor status \"completed\" is mapped to both fulfilled and failed; it can map to only one GL state"
        );
    }

    #[test]
    fn from_pairs_accepts_repeats_with_the_same_state() {
        let mapping =
            StatusMapping::from_pairs([("Done", GlState::Fulfilled), ("done", GlState::Fulfilled)])
                .unwrap();
        assert_eq!(mapping.len(), 1);
        let empty = StatusMapping::from_pairs(Vec::<(String, GlState)>::new()).unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn iter_is_sorted_by_status() {
        let mapping = StatusMapping::generic_default();
        let statuses: Vec<&str> = mapping.iter().map(|(status, _)| status).collect();
        let mut sorted = statuses.clone();
        sorted.sort_unstable();
        assert_eq!(statuses, sorted);
        assert_eq!(statuses.first(), Some(&"canceled"));
    }

    #[test]
    fn serde_is_a_status_to_state_object() {
        let mapping = StatusMapping::from_pairs([
            ("Processing", GlState::Pending),
            ("COMPLETED", GlState::Fulfilled),
        ])
        .unwrap();
        let value = to_value(&mapping).unwrap();
        assert_eq!(
            value,
            Value::Map(vec![
                ("completed".to_owned(), "fulfilled".to_owned()),
                ("processing".to_owned(), "pending".to_owned()),
            ])
        );
        assert_eq!(from_value::<StatusMapping>(&value).unwrap(), mapping);
        let conflict = from_map::<StatusMapping>(&[("Done", "fulfilled"), ("done", "failed")]);
        let message = conflict.unwrap_err().to_string();
        assert!(message.contains("\"done\" is mapped to both"), "{message}");
        assert!(from_map::<StatusMapping>(&[("", "pending")]).is_err());
        assert!(from_map::<StatusMapping>(&[("x", "shipped")]).is_err());
    }

    fn any_state() -> impl Strategy<Value = GlState> {
        proptest::sample::select(GlState::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn lookup_ignores_case_and_surrounding_space(
            status in "[a-zA-Z][a-zA-Z _-]{0,15}",
            state in any_state(),
        ) {
            let mapping = StatusMapping::from_pairs([(status.as_str(), state)]).unwrap();
            prop_assert_eq!(mapping.gl_state_for(&status.to_uppercase()), Some(state));
            prop_assert_eq!(mapping.gl_state_for(&format!(" {} ", status.to_lowercase())), Some(state));
        }

        #[test]
        fn serde_round_trips(pairs in proptest::collection::btree_map("[a-z]{1,8}", any_state(), 0..6)) {
            let mapping = StatusMapping::from_pairs(pairs).unwrap();
            let back: StatusMapping = from_value(&to_value(&mapping).unwrap()).unwrap();
            prop_assert_eq!(back, mapping);
        }
    }
}
