//! Fault settings (what can go wrong, and how often) and the dice that decide each time.

use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::lock;

/// What the simulator does wrong, and how often. Rates are probabilities from 0.0 (never) to
/// 1.0 (always). The same snake_case names are used by the CLI flags (`--error-rate`) and by
/// `GET/POST /sim/faults`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default)]
pub struct Faults {
    /// Milliseconds added before answering each /api/v1 call.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub latency_ms: u64,
    /// Chance of answering 500, 502 or 503 without doing anything.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate, value_name = "P")]
    pub error_rate: f64,
    /// Chance of answering 429 with `Retry-After: 1` without doing anything.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate, value_name = "P")]
    pub rate_limit_rate: f64,
    /// Chance of doing the work (an order is created and committed) and then cutting the
    /// connection before any part of the answer is sent.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate, value_name = "P")]
    pub drop_response_rate: f64,
    /// Chance of never sending a webhook event.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate, value_name = "P")]
    pub webhook_drop_rate: f64,
    /// Chance of sending a webhook event twice (same event_id, same body).
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate, value_name = "P")]
    pub webhook_duplicate_rate: f64,
    /// Chance of holding a webhook event back until a later event for the same order was sent.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate, value_name = "P")]
    pub webhook_reorder_rate: f64,
    /// Chance of signing a webhook event with the wrong secret.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate, value_name = "P")]
    pub bad_signature_rate: f64,
}

/// A partial update of [`Faults`], as posted to `/sim/faults`: absent fields keep their value.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsPatch {
    pub latency_ms: Option<u64>,
    pub error_rate: Option<f64>,
    pub rate_limit_rate: Option<f64>,
    pub drop_response_rate: Option<f64>,
    pub webhook_drop_rate: Option<f64>,
    pub webhook_duplicate_rate: Option<f64>,
    pub webhook_reorder_rate: Option<f64>,
    pub bad_signature_rate: Option<f64>,
}

/// A fault setting that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {value} is not a probability; use a number from 0.0 (never) to 1.0 (always)")]
pub struct FaultError {
    pub field: &'static str,
    pub value: f64,
}

/// Longest accepted `latency_ms` (ten minutes): more is a typo, not a test.
pub const MAX_LATENCY_MS: u64 = 600_000;

/// Parses a CLI rate such as `0.25`.
pub fn parse_rate(input: &str) -> Result<f64, String> {
    let value: f64 = input
        .trim()
        .parse()
        .map_err(|_| format!("{input:?} is not a number; use a probability from 0.0 to 1.0"))?;
    if is_probability(value) {
        Ok(value)
    } else {
        Err(format!(
            "{input} is not a probability; use a number from 0.0 (never) to 1.0 (always)"
        ))
    }
}

fn is_probability(value: f64) -> bool {
    (0.0..=1.0).contains(&value)
}

impl Faults {
    /// The rates by name, in a fixed order.
    fn rates(&self) -> [(&'static str, f64); 7] {
        [
            ("error_rate", self.error_rate),
            ("rate_limit_rate", self.rate_limit_rate),
            ("drop_response_rate", self.drop_response_rate),
            ("webhook_drop_rate", self.webhook_drop_rate),
            ("webhook_duplicate_rate", self.webhook_duplicate_rate),
            ("webhook_reorder_rate", self.webhook_reorder_rate),
            ("bad_signature_rate", self.bad_signature_rate),
        ]
    }

    /// Checks every rate is a probability and the latency is sane; names the first bad field.
    pub fn validate(&self) -> Result<(), FaultError> {
        if self.latency_ms > MAX_LATENCY_MS {
            return Err(FaultError {
                field: "latency_ms",
                value: self.latency_ms as f64,
            });
        }
        match self.rates().into_iter().find(|(_, v)| !is_probability(*v)) {
            Some((field, value)) => Err(FaultError { field, value }),
            None => Ok(()),
        }
    }

    /// These settings with `patch` applied, if the result is valid.
    pub fn patched(&self, patch: &FaultsPatch) -> Result<Faults, FaultError> {
        let pick = |new: Option<f64>, old: f64| new.unwrap_or(old);
        let faults = Faults {
            latency_ms: patch.latency_ms.unwrap_or(self.latency_ms),
            error_rate: pick(patch.error_rate, self.error_rate),
            rate_limit_rate: pick(patch.rate_limit_rate, self.rate_limit_rate),
            drop_response_rate: pick(patch.drop_response_rate, self.drop_response_rate),
            webhook_drop_rate: pick(patch.webhook_drop_rate, self.webhook_drop_rate),
            webhook_duplicate_rate: pick(patch.webhook_duplicate_rate, self.webhook_duplicate_rate),
            webhook_reorder_rate: pick(patch.webhook_reorder_rate, self.webhook_reorder_rate),
            bad_signature_rate: pick(patch.bad_signature_rate, self.bad_signature_rate),
        };
        faults.validate()?;
        Ok(faults)
    }
}

/// The simulator's only source of randomness: seeded, every fault decision is reproducible for
/// the same sequence of calls.
pub struct Dice(Mutex<StdRng>);

impl Dice {
    pub fn new(seed: Option<u64>) -> Dice {
        Dice(Mutex::new(match seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_entropy(),
        }))
    }

    /// True with probability `p`. Rates of exactly 0 and 1 consume no randomness, so switching
    /// one fault fully on or off does not shift the others' sequence.
    pub fn roll(&self, p: f64) -> bool {
        if p <= 0.0 {
            false
        } else if p >= 1.0 {
            true
        } else {
            lock(&self.0).gen_bool(p)
        }
    }

    /// One of `items` (which must not be empty), uniformly.
    pub fn pick<T: Copy>(&self, items: &[T]) -> T {
        items[lock(&self.0).gen_range(0..items.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_only_as_probabilities() {
        assert_eq!(parse_rate("0"), Ok(0.0));
        assert_eq!(parse_rate("0.25"), Ok(0.25));
        assert_eq!(parse_rate("1"), Ok(1.0));
        for bad in ["1.5", "-0.1", "NaN", "inf"] {
            let err = parse_rate(bad).unwrap_err();
            assert!(err.contains("not a probability"), "{bad}: {err}");
        }
        assert!(parse_rate("often").unwrap_err().contains("not a number"));
    }

    #[test]
    fn validation_names_the_bad_field() {
        assert_eq!(Faults::default().validate(), Ok(()));
        let faults = Faults {
            webhook_reorder_rate: 2.0,
            ..Faults::default()
        };
        let err = faults.validate().unwrap_err();
        assert_eq!(err.field, "webhook_reorder_rate");
        assert!(err
            .to_string()
            .starts_with("webhook_reorder_rate: 2 is not"));
        let slow = Faults {
            latency_ms: MAX_LATENCY_MS + 1,
            ..Faults::default()
        };
        assert_eq!(slow.validate().unwrap_err().field, "latency_ms");
        let nan = Faults {
            error_rate: f64::NAN,
            ..Faults::default()
        };
        assert_eq!(nan.validate().unwrap_err().field, "error_rate");
    }

    #[test]
    fn a_patch_changes_only_what_it_names_and_is_validated_whole() {
        let base = Faults {
            latency_ms: 5,
            error_rate: 0.5,
            ..Faults::default()
        };
        let patch = FaultsPatch {
            rate_limit_rate: Some(1.0),
            ..FaultsPatch::default()
        };
        let patched = base.patched(&patch).unwrap();
        assert_eq!(patched.latency_ms, 5);
        assert_eq!(patched.error_rate, 0.5);
        assert_eq!(patched.rate_limit_rate, 1.0);
        let bad = FaultsPatch {
            bad_signature_rate: Some(-1.0),
            ..FaultsPatch::default()
        };
        assert_eq!(base.patched(&bad).unwrap_err().field, "bad_signature_rate");
    }

    #[test]
    fn unknown_patch_fields_are_rejected() {
        let err = serde_json::from_str::<FaultsPatch>(r#"{"error_rat":1}"#).unwrap_err();
        assert!(err.to_string().contains("error_rat"), "{err}");
    }

    #[test]
    fn seeded_dice_repeat_and_certain_rolls_are_certain() {
        let rolls = |seed| {
            let dice = Dice::new(Some(seed));
            (0..64).map(|_| dice.roll(0.5)).collect::<Vec<_>>()
        };
        assert_eq!(rolls(7), rolls(7));
        assert_ne!(rolls(7), rolls(8));
        let dice = Dice::new(None);
        assert!((0..100).all(|_| dice.roll(1.0)));
        assert!((0..100).all(|_| !dice.roll(0.0)));
    }
}
