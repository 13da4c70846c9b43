//! Human sizes (`"128MiB"`, `"1GiB"`, `"512KiB"`, plain integer bytes) and
//! durations (`"5s"`, `"250ms"`, `"2m"`, or integer milliseconds for `*_ms`
//! keys).

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// Why a size or duration was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnitError {
    /// Nothing was given.
    #[error("empty value")]
    Empty,
    /// A minus sign.
    #[error("{text:?} is negative")]
    Negative {
        /// The input.
        text: String,
    },
    /// No leading digits.
    #[error("{text:?} does not start with a whole number")]
    NotANumber {
        /// The input.
        text: String,
    },
    /// A fraction such as `1.5GiB`.
    #[error("{text:?} is not a whole number; use a smaller unit instead")]
    Fractional {
        /// The input.
        text: String,
    },
    /// A unit we do not know.
    #[error("unknown unit {unit:?} in {text:?}; use {expected}")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The input.
        text: String,
        /// The units we accept.
        expected: &'static str,
    },
    /// A duration without a unit.
    #[error("{text:?} has no unit; use {expected}")]
    MissingUnit {
        /// The input.
        text: String,
        /// The units we accept.
        expected: &'static str,
    },
    /// Does not fit in 64 bits.
    #[error("{text:?} is too large")]
    Overflow {
        /// The input.
        text: String,
    },
}

const SIZE_UNITS: &str = "B, KiB, MiB, GiB or TiB";
const DURATION_UNITS: &str = "ms, s, m or h";

fn split_number(s: &str) -> Result<(u64, &str), UnitError> {
    let text = || s.to_owned();
    if s.trim().is_empty() {
        return Err(UnitError::Empty);
    }
    if s.starts_with('-') {
        return Err(UnitError::Negative { text: text() });
    }
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if end == 0 {
        return Err(UnitError::NotANumber { text: text() });
    }
    let n: u64 = s[..end]
        .parse()
        .map_err(|_| UnitError::Overflow { text: text() })?;
    let rest = &s[end..];
    if rest.starts_with('.') || rest.starts_with(',') {
        return Err(UnitError::Fractional { text: text() });
    }
    // One optional space between number and unit ("128 MiB").
    let unit = rest.strip_prefix(' ').unwrap_or(rest);
    Ok((n, unit))
}

/// Parses a size: digits, optionally followed by `B`, `KiB`, `MiB`, `GiB` or
/// `TiB` (powers of 1024). No unit means bytes.
pub fn parse_size(s: &str) -> Result<u64, UnitError> {
    let (n, unit) = split_number(s)?;
    let mult: u64 = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        _ => {
            return Err(UnitError::UnknownUnit {
                unit: unit.to_owned(),
                text: s.to_owned(),
                expected: SIZE_UNITS,
            })
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| UnitError::Overflow { text: s.to_owned() })
}

/// Formats bytes in the largest binary unit that divides them exactly:
/// `1073741824` → `"1GiB"`, `1000` → `"1000B"`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "TiB"),
        (1 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
    ];
    for (m, u) in UNITS {
        if bytes >= m && bytes.is_multiple_of(m) {
            return format!("{}{u}", bytes / m);
        }
    }
    format!("{bytes}B")
}

/// Parses a duration: digits followed by `ms`, `s`, `m` or `h`. A unit is
/// required (integer milliseconds are written as TOML integers).
pub fn parse_duration(s: &str) -> Result<Duration, UnitError> {
    let (n, unit) = split_number(s)?;
    let mult: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "" => {
            return Err(UnitError::MissingUnit {
                text: s.to_owned(),
                expected: DURATION_UNITS,
            })
        }
        _ => {
            return Err(UnitError::UnknownUnit {
                unit: unit.to_owned(),
                text: s.to_owned(),
                expected: DURATION_UNITS,
            })
        }
    };
    n.checked_mul(mult)
        .map(Duration::from_millis)
        .ok_or_else(|| UnitError::Overflow { text: s.to_owned() })
}

/// A size read from TOML: an integer number of bytes or a string with a
/// unit. Keeps the text as written for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SizeValue {
    pub bytes: u64,
    pub text: String,
}

impl<'de> Deserialize<'de> for SizeValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SizeValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size: an integer number of bytes or a string such as \"128MiB\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SizeValue, E> {
                let bytes =
                    u64::try_from(v).map_err(|_| E::custom(format!("size {v} is negative")))?;
                Ok(SizeValue {
                    bytes,
                    text: v.to_string(),
                })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SizeValue, E> {
                Ok(SizeValue {
                    bytes: v,
                    text: v.to_string(),
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SizeValue, E> {
                let bytes = parse_size(v).map_err(E::custom)?;
                Ok(SizeValue {
                    bytes,
                    text: v.to_owned(),
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration read from a `*_ms` key: integer milliseconds or a string with
/// a unit (`"5s"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MillisValue {
    pub millis: u64,
    pub text: String,
}

impl<'de> Deserialize<'de> for MillisValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = MillisValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration: integer milliseconds or a string such as \"5s\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<MillisValue, E> {
                let millis =
                    u64::try_from(v).map_err(|_| E::custom(format!("duration {v} is negative")))?;
                Ok(MillisValue {
                    millis,
                    text: v.to_string(),
                })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<MillisValue, E> {
                Ok(MillisValue {
                    millis: v,
                    text: v.to_string(),
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MillisValue, E> {
                let d = parse_duration(v).map_err(E::custom)?;
                let millis = u64::try_from(d.as_millis()).map_err(E::custom)?;
                Ok(MillisValue {
                    millis,
                    text: v.to_owned(),
                })
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_units_are_parsed() {
        assert_eq!(parse_size("128MiB"), Ok(128 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("10B"), Ok(10));
        assert_eq!(parse_size("2 TiB"), Ok(2 << 40));
    }

    #[test]
    fn size_bad_input_is_rejected() {
        assert!(matches!(
            parse_size("12 parsecs"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_size("-1MiB"),
            Err(UnitError::Negative { .. })
        ));
        assert!(matches!(
            parse_size("1e309"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_size("1.5GiB"),
            Err(UnitError::Fractional { .. })
        ));
        assert!(matches!(parse_size(""), Err(UnitError::Empty)));
        assert!(matches!(
            parse_size("MiB"),
            Err(UnitError::NotANumber { .. })
        ));
        assert!(matches!(
            parse_size("1mib"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_size("99999999999999999999"),
            Err(UnitError::Overflow { .. })
        ));
        assert!(matches!(
            parse_size("17000000TiB"),
            Err(UnitError::Overflow { .. })
        ));
    }

    #[test]
    fn size_format_picks_the_largest_exact_unit() {
        assert_eq!(format_size(1 << 30), "1GiB");
        assert_eq!(format_size(100 << 30), "100GiB");
        assert_eq!(format_size(1536 << 10), "1536KiB");
        assert_eq!(format_size(1000), "1000B");
        assert_eq!(format_size(0), "0B");
    }

    #[test]
    fn duration_units_are_parsed() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn duration_bad_input_is_rejected() {
        assert!(matches!(
            parse_duration("5"),
            Err(UnitError::MissingUnit { .. })
        ));
        assert!(matches!(
            parse_duration("5 fortnights"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_duration("-5s"),
            Err(UnitError::Negative { .. })
        ));
    }
}
