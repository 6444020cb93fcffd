//! Value types that scenario files write as human-readable strings.
//!
//! Scenario files say `rate: "1.5Gbps"`, `delay: "20ms"`, `queue: "100 packets"`
//! or `addr: "10.0.1.5/24"` rather than bare integers, so the numbers carry
//! their unit and cannot be misread. Every type in this module:
//!
//! * parses from its string form with [`FromStr`], returning a [`UnitError`]
//!   whose message says what was expected and what was found, e.g.
//!   `expected a rate like "100Mbps", "1.5Gbps" or "64kbps", found "fast"`;
//! * prints a canonical form with [`Display`](fmt::Display) that parses back to
//!   the same value;
//! * deserializes from a string through `FromStr` (errors are reported with
//!   `serde::de::Error::custom`, so `ron` prefixes them with the position in
//!   the scenario file) and serializes as the canonical string.
//!
//! [`Probability`] is the exception: it is written as a plain number (`0.01`)
//! or as a percentage string (`"1%"`), and serializes as a number.
//!
//! All arithmetic is exact integer arithmetic: `"1.5Gbps"` is exactly
//! 1 500 000 000 bit/s and `"0.1ms"` is exactly 100 000 ns. Values that do not
//! fit in the target integer type, or that are not a whole number of the base
//! unit (`"1.5ns"`), are rejected with an error; parsing never panics.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Why a unit string could not be parsed.
///
/// The `Display` text is meant to be shown to the person who wrote the
/// scenario file: it names the kind of value, quotes the offending input and
/// says what would have been accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnitError {
    /// The text does not have the shape `<number><unit>` at all.
    #[error("expected {expected}, found \"{found}\"")]
    Syntax {
        /// What would have been accepted, with examples.
        expected: &'static str,
        /// The input as written.
        found: String,
    },
    /// A bare number was written where a quoted string with a unit is needed.
    #[error("expected {expected}, found the bare number {found}; write it as a quoted string with a unit")]
    NotAString {
        /// What would have been accepted, with examples.
        expected: &'static str,
        /// The number as written.
        found: String,
    },
    /// The number has no unit after it.
    #[error("missing unit in {what} \"{found}\": expected {expected}")]
    MissingUnit {
        /// The kind of value ("rate", "duration", ...).
        what: &'static str,
        /// What would have been accepted, with examples.
        expected: &'static str,
        /// The input as written.
        found: String,
    },
    /// The unit is not one this kind of value understands.
    #[error("unknown {what} unit \"{unit}\" in \"{found}\": valid units are {valid}")]
    UnknownUnit {
        /// The kind of value ("rate", "duration", ...).
        what: &'static str,
        /// The unit as written.
        unit: String,
        /// The input as written.
        found: String,
        /// The units that would have been accepted.
        valid: &'static str,
    },
    /// The value is negative.
    #[error("a {what} cannot be negative, found \"{found}\"")]
    Negative {
        /// The kind of value ("rate", "duration", ...).
        what: &'static str,
        /// The input as written.
        found: String,
    },
    /// The value is zero but must be positive.
    #[error("a {what} must be greater than zero, found \"{found}\"")]
    Zero {
        /// The kind of value ("rate", "duration", ...).
        what: &'static str,
        /// The input as written.
        found: String,
    },
    /// The value does not fit in the integer type that stores it.
    #[error("{what} \"{found}\" is too large (the maximum is {max})")]
    Overflow {
        /// The kind of value ("rate", "duration", ...).
        what: &'static str,
        /// The input as written.
        found: String,
        /// The largest representable value, in canonical form.
        max: String,
    },
    /// The value has a fractional part smaller than the base unit.
    #[error("{what} \"{found}\" is not a whole number of {base}")]
    NotWhole {
        /// The kind of value ("rate", "duration", ...).
        what: &'static str,
        /// The input as written.
        found: String,
        /// The base unit the value is stored in ("nanoseconds", ...).
        base: &'static str,
    },
    /// An IPv4 network/interface address could not be parsed.
    #[error("invalid IPv4 network \"{found}\": {problem}; expected an address with prefix length like \"10.0.1.0/24\"")]
    Ipv4 {
        /// The input as written.
        found: String,
        /// What is wrong with it.
        problem: Ipv4Problem,
    },
    /// A probability outside `[0, 1]` (or `[0%, 100%]`).
    #[error(
        "a probability must be between 0 and 1 (or between \"0%\" and \"100%\"), found {found}"
    )]
    ProbabilityRange {
        /// The input as written.
        found: String,
    },
}

/// The specific problem with an IPv4 network string, see [`UnitError::Ipv4`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Ipv4Problem {
    /// There is no `/len` suffix.
    #[error("the prefix length is missing (add e.g. \"/24\")")]
    MissingPrefix,
    /// The part after `/` is not a number.
    #[error("prefix length \"{0}\" is not a number")]
    BadPrefix(String),
    /// The prefix length is larger than 32.
    #[error("prefix length {0} is larger than 32")]
    PrefixTooLong(u32),
    /// The address does not have exactly four dot-separated octets.
    #[error("the address must have four octets separated by dots, found {0}")]
    OctetCount(usize),
    /// An octet is not a decimal number.
    #[error("octet \"{0}\" is not a decimal number")]
    BadOctet(String),
    /// An octet is larger than 255.
    #[error("octet \"{0}\" is out of range 0-255")]
    OctetOutOfRange(String),
}

// ---------------------------------------------------------------------------
// Exact decimal parsing helpers
// ---------------------------------------------------------------------------

/// A non-negative decimal number `mantissa / 10^scale`, fraction trimmed of
/// trailing zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decimal {
    mantissa: u128,
    scale: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DecimalError {
    Syntax,
    Overflow,
}

/// More decimal places than this can never describe a whole number of any
/// base unit used here, and `10^scale` must fit in a `u128`.
const MAX_SCALE: u32 = 30;

/// Parses `123`, `1.5`, `1_000` (digit separators allowed after the first
/// digit) exactly. No sign, no exponent; digits are required on both sides of
/// a decimal point.
fn parse_decimal(text: &str) -> Result<Decimal, DecimalError> {
    let (int_part, frac_part) = match text.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (text, None),
    };
    let valid_digits = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_digit())
            && s.chars().all(|c| c.is_ascii_digit() || c == '_')
    };
    if !valid_digits(int_part) {
        return Err(DecimalError::Syntax);
    }
    let frac_digits = match frac_part {
        Some(f) if !valid_digits(f) => return Err(DecimalError::Syntax),
        Some(f) => f.trim_end_matches(['0', '_']),
        None => "",
    };
    let mut mantissa: u128 = 0;
    let mut scale: u32 = 0;
    for c in int_part.chars().chain(frac_digits.chars()) {
        if let Some(d) = c.to_digit(10) {
            mantissa = mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(u128::from(d)))
                .ok_or(DecimalError::Overflow)?;
        }
    }
    for c in frac_digits.chars() {
        if c.is_ascii_digit() {
            scale += 1;
        }
    }
    if mantissa == 0 {
        scale = 0;
    }
    Ok(Decimal { mantissa, scale })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScaleError {
    Overflow,
    NotWhole,
}

/// `decimal * multiplier`, which must be a whole number fitting in `max`.
fn scale_exact(decimal: Decimal, multiplier: u128, max: u128) -> Result<u128, ScaleError> {
    if decimal.scale > MAX_SCALE {
        return Err(ScaleError::NotWhole);
    }
    let numerator = decimal
        .mantissa
        .checked_mul(multiplier)
        .ok_or(ScaleError::Overflow)?;
    let denominator = 10u128.pow(decimal.scale);
    if numerator % denominator != 0 {
        return Err(ScaleError::NotWhole);
    }
    let value = numerator / denominator;
    if value > max {
        return Err(ScaleError::Overflow);
    }
    Ok(value)
}

/// Splits `"1.5 Gbps"` into `("1.5", "Gbps")`. The number part is the longest
/// prefix made of digits, `.`, `_`, `+` and `-`.
fn split_number_unit(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '_' | '+' | '-')))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(end);
    (number, unit.trim_start())
}

/// Describes one kind of unit-carrying value for [`parse_scaled`].
struct Kind {
    what: &'static str,
    expected: &'static str,
    valid: &'static str,
    base: &'static str,
    lookup: fn(&str) -> Option<u128>,
    max: u128,
    max_text: fn() -> String,
}

/// Parses `<decimal> [space] <unit>` into an exact multiple of the base unit.
fn parse_scaled(input: &str, kind: &Kind) -> Result<u128, UnitError> {
    let text = input.trim();
    let found = || input.to_owned();
    let (number, unit) = split_number_unit(text);
    if number.is_empty() {
        return Err(UnitError::Syntax {
            expected: kind.expected,
            found: found(),
        });
    }
    if let Some(rest) = number.strip_prefix('-') {
        if parse_decimal(rest).is_ok() {
            return Err(UnitError::Negative {
                what: kind.what,
                found: found(),
            });
        }
    }
    let decimal = match parse_decimal(number) {
        Ok(d) => d,
        Err(DecimalError::Syntax) => {
            return Err(UnitError::Syntax {
                expected: kind.expected,
                found: found(),
            })
        }
        Err(DecimalError::Overflow) => {
            return Err(UnitError::Overflow {
                what: kind.what,
                found: found(),
                max: (kind.max_text)(),
            })
        }
    };
    if unit.is_empty() {
        return Err(UnitError::MissingUnit {
            what: kind.what,
            expected: kind.expected,
            found: found(),
        });
    }
    let multiplier = (kind.lookup)(unit).ok_or_else(|| UnitError::UnknownUnit {
        what: kind.what,
        unit: unit.to_owned(),
        found: found(),
        valid: kind.valid,
    })?;
    scale_exact(decimal, multiplier, kind.max).map_err(|e| match e {
        ScaleError::Overflow => UnitError::Overflow {
            what: kind.what,
            found: found(),
            max: (kind.max_text)(),
        },
        ScaleError::NotWhole => UnitError::NotWhole {
            what: kind.what,
            found: found(),
            base: kind.base,
        },
    })
}

/// Formats `value / unit` where `unit` is a power of ten, with the fraction
/// trimmed of trailing zeros: `fmt_decimal(1_500, 1_000) == "1.5"`.
fn fmt_decimal(value: u64, unit: u64) -> String {
    let int = value / unit;
    let rem = value % unit;
    if rem == 0 {
        return int.to_string();
    }
    let width = unit.ilog10() as usize;
    let frac = format!("{rem:0width$}");
    format!("{int}.{}", frac.trim_end_matches('0'))
}

/// Implements `Serialize` (as the `Display` string) and `Deserialize` (from a
/// string via `FromStr`) for a type.
macro_rules! serde_via_str {
    ($ty:ty, $expected:expr) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct StrVisitor;

                impl Visitor<'_> for StrVisitor {
                    type Value = $ty;

                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expected)
                    }

                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$ty, E> {
                        v.parse().map_err(E::custom)
                    }

                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$ty, E> {
                        Err(E::custom(UnitError::NotAString {
                            expected: $expected,
                            found: v.to_string(),
                        }))
                    }

                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$ty, E> {
                        Err(E::custom(UnitError::NotAString {
                            expected: $expected,
                            found: v.to_string(),
                        }))
                    }

                    fn visit_f64<E: de::Error>(self, v: f64) -> Result<$ty, E> {
                        Err(E::custom(UnitError::NotAString {
                            expected: $expected,
                            found: v.to_string(),
                        }))
                    }
                }

                deserializer.deserialize_any(StrVisitor)
            }
        }
    };
}

// ---------------------------------------------------------------------------
// Rate
// ---------------------------------------------------------------------------

const RATE_EXPECTED: &str = "a rate like \"100Mbps\", \"1.5Gbps\" or \"64kbps\"";

/// A data rate in bits per second; always greater than zero.
///
/// Written as `"100Mbps"`, `"1.5Gbps"`, `"64 kbps"`; units are `bps`, `kbps`,
/// `Mbps`, `Gbps` and `Tbps` (SI, powers of 1000). The prefix letter may be
/// upper or lower case (`Kbps`, `mbps`), and `bit/s` is accepted for `bps`
/// (`"10Mbit/s"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(u64);

impl Rate {
    /// A rate of `bps` bits per second, or `None` if `bps` is zero.
    pub const fn from_bits_per_sec(bps: u64) -> Option<Rate> {
        if bps == 0 {
            None
        } else {
            Some(Rate(bps))
        }
    }

    /// The rate in bits per second (never zero).
    pub const fn bits_per_sec(self) -> u64 {
        self.0
    }
}

fn rate_unit(unit: &str) -> Option<u128> {
    let prefix = unit
        .strip_suffix("bps")
        .or_else(|| unit.strip_suffix("bit/s"))?;
    match prefix {
        "" => Some(1),
        "k" | "K" => Some(1_000),
        "m" | "M" => Some(1_000_000),
        "g" | "G" => Some(1_000_000_000),
        "t" | "T" => Some(1_000_000_000_000),
        _ => None,
    }
}

const RATE_KIND: Kind = Kind {
    what: "rate",
    expected: RATE_EXPECTED,
    valid: "bps, kbps, Mbps, Gbps, Tbps",
    base: "bits per second",
    lookup: rate_unit,
    max: u64::MAX as u128,
    max_text: || Rate(u64::MAX).to_string(),
};

impl FromStr for Rate {
    type Err = UnitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bps = parse_scaled(s, &RATE_KIND)?;
        match u64::try_from(bps) {
            Ok(0) => Err(UnitError::Zero {
                what: "rate",
                found: s.to_owned(),
            }),
            Ok(v) => Ok(Rate(v)),
            Err(_) => Err(UnitError::Overflow {
                what: "rate",
                found: s.to_owned(),
                max: Rate(u64::MAX).to_string(),
            }),
        }
    }
}

impl fmt::Display for Rate {
    /// Uses the largest unit not exceeding the value, with an exact decimal
    /// fraction: `1.5Gbps`, `100Mbps`, `64kbps`, `1bps`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 5] = [
            (1_000_000_000_000, "Tbps"),
            (1_000_000_000, "Gbps"),
            (1_000_000, "Mbps"),
            (1_000, "kbps"),
            (1, "bps"),
        ];
        let v = self.0;
        let (unit, name) = UNITS
            .iter()
            .copied()
            .find(|&(u, _)| v >= u)
            .unwrap_or((1, "bps"));
        write!(f, "{}{name}", fmt_decimal(v, unit))
    }
}

serde_via_str!(Rate, RATE_EXPECTED);

// ---------------------------------------------------------------------------
// Duration
// ---------------------------------------------------------------------------

const DURATION_EXPECTED: &str = "a duration like \"10ms\", \"1.5s\", \"250us\" or \"2min\"";

const NS_PER_US: u64 = 1_000;
const NS_PER_MS: u64 = 1_000_000;
const NS_PER_S: u64 = 1_000_000_000;
const NS_PER_MIN: u64 = 60 * NS_PER_S;
const NS_PER_H: u64 = 60 * NS_PER_MIN;

/// A non-negative span of simulated time, in nanoseconds.
///
/// Written as `"20ms"`, `"1.5s"`, `"250 us"`; units are `ns`, `us` (also `µs`
/// or `μs`), `ms`, `s`, `min` and `h`. Zero (`"0s"`) is allowed. The value
/// must be a whole number of nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(u64);

impl Duration {
    /// The zero duration.
    pub const ZERO: Duration = Duration(0);

    /// A duration of `nanos` nanoseconds.
    pub const fn from_nanos(nanos: u64) -> Duration {
        Duration(nanos)
    }

    /// The duration in nanoseconds.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        std::time::Duration::from_nanos(d.0)
    }
}

fn duration_unit(unit: &str) -> Option<u128> {
    let ns = match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => NS_PER_US,
        "ms" => NS_PER_MS,
        "s" => NS_PER_S,
        "min" => NS_PER_MIN,
        "h" => NS_PER_H,
        _ => return None,
    };
    Some(u128::from(ns))
}

const DURATION_KIND: Kind = Kind {
    what: "duration",
    expected: DURATION_EXPECTED,
    valid: "ns, us (or µs), ms, s, min, h",
    base: "nanoseconds",
    lookup: duration_unit,
    max: u64::MAX as u128,
    max_text: || Duration(u64::MAX).to_string(),
};

impl FromStr for Duration {
    type Err = UnitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ns = parse_scaled(s, &DURATION_KIND)?;
        u64::try_from(ns)
            .map(Duration)
            .map_err(|_| UnitError::Overflow {
                what: "duration",
                found: s.to_owned(),
                max: Duration(u64::MAX).to_string(),
            })
    }
}

impl fmt::Display for Duration {
    /// Whole hours or minutes when exact (`2h`, `90min`), otherwise the
    /// largest of `s`, `ms`, `us`, `ns` not exceeding the value, with an exact
    /// decimal fraction (`1.5ms`, `90.5s`). Zero prints as `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if v == 0 {
            return f.write_str("0s");
        }
        if v.checked_rem(NS_PER_H) == Some(0) {
            return write!(f, "{}h", v / NS_PER_H);
        }
        if v.checked_rem(NS_PER_MIN) == Some(0) {
            return write!(f, "{}min", v / NS_PER_MIN);
        }
        let (unit, name) = if v >= NS_PER_S {
            (NS_PER_S, "s")
        } else if v >= NS_PER_MS {
            (NS_PER_MS, "ms")
        } else if v >= NS_PER_US {
            (NS_PER_US, "us")
        } else {
            (1, "ns")
        };
        write!(f, "{}{name}", fmt_decimal(v, unit))
    }
}

serde_via_str!(Duration, DURATION_EXPECTED);

// ---------------------------------------------------------------------------
// ByteSize
// ---------------------------------------------------------------------------

const BYTES_EXPECTED: &str = "a byte size like \"1500B\", \"64KiB\" or \"2MB\"";

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;

/// A number of bytes.
///
/// Written as `"1500B"`, `"1500 bytes"`, `"64KiB"`, `"2GB"`; decimal units
/// `KB` (also `kB`), `MB`, `GB`, `TB` are powers of 1000, binary units `KiB`,
/// `MiB`, `GiB`, `TiB` powers of 1024. Fractions are allowed when the result
/// is a whole number of bytes (`"1.5KiB"` = 1536). Zero is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(u64);

impl ByteSize {
    /// A size of `bytes` bytes.
    pub const fn from_bytes(bytes: u64) -> ByteSize {
        ByteSize(bytes)
    }

    /// The size in bytes.
    pub const fn as_bytes(self) -> u64 {
        self.0
    }
}

fn byte_unit(unit: &str) -> Option<u128> {
    let bytes = match unit {
        "B" | "byte" | "bytes" => 1,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        "KiB" => KIB,
        "MiB" => MIB,
        "GiB" => GIB,
        "TiB" => TIB,
        _ => return None,
    };
    Some(u128::from(bytes))
}

const BYTES_KIND: Kind = Kind {
    what: "byte size",
    expected: BYTES_EXPECTED,
    valid: "B (or bytes), KB, MB, GB, TB, KiB, MiB, GiB, TiB",
    base: "bytes",
    lookup: byte_unit,
    max: u64::MAX as u128,
    max_text: || ByteSize(u64::MAX).to_string(),
};

impl FromStr for ByteSize {
    type Err = UnitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = parse_scaled(s, &BYTES_KIND)?;
        u64::try_from(bytes)
            .map(ByteSize)
            .map_err(|_| UnitError::Overflow {
                what: "byte size",
                found: s.to_owned(),
                max: ByteSize(u64::MAX).to_string(),
            })
    }
}

impl fmt::Display for ByteSize {
    /// The largest unit that divides the value exactly (`64KiB`, `2MB`,
    /// `1500B`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 8] = [
            (TIB, "TiB"),
            (1_000_000_000_000, "TB"),
            (GIB, "GiB"),
            (1_000_000_000, "GB"),
            (MIB, "MiB"),
            (1_000_000, "MB"),
            (KIB, "KiB"),
            (1_000, "KB"),
        ];
        let v = self.0;
        if v != 0 {
            for (unit, name) in UNITS {
                if v.checked_rem(unit) == Some(0) {
                    return write!(f, "{}{name}", v / unit);
                }
            }
        }
        write!(f, "{v}B")
    }
}

serde_via_str!(ByteSize, BYTES_EXPECTED);

// ---------------------------------------------------------------------------
// QueueLimit
// ---------------------------------------------------------------------------

const QUEUE_EXPECTED: &str = "a queue limit like \"100 packets\" or \"64KiB\"";

/// The capacity of a queue: either a packet count or a byte size, never zero.
///
/// Written as `"100 packets"` (also `"100 pkts"`, `"100p"`, `"1 packet"`) or
/// as a [`ByteSize`] (`"64KiB"`, `"150KB"`, `"1500000 B"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueLimit {
    /// At most this many packets (greater than zero).
    Packets(u32),
    /// At most this many bytes (greater than zero).
    Bytes(u64),
}

fn is_packet_unit(unit: &str) -> bool {
    matches!(unit, "packets" | "packet" | "pkts" | "pkt" | "p")
}

const QUEUE_BYTES_KIND: Kind = Kind {
    what: "queue limit",
    expected: QUEUE_EXPECTED,
    valid: "packets (or pkts, p), B, KB, MB, GB, KiB, MiB, GiB",
    base: "bytes",
    lookup: byte_unit,
    max: u64::MAX as u128,
    max_text: || QueueLimit::Bytes(u64::MAX).to_string(),
};

fn packet_count(unit: &str) -> Option<u128> {
    is_packet_unit(unit).then_some(1)
}

const QUEUE_PACKETS_KIND: Kind = Kind {
    what: "queue limit",
    expected: QUEUE_EXPECTED,
    valid: "packets (or pkts, p), B, KB, MB, GB, KiB, MiB, GiB",
    base: "packets",
    lookup: packet_count,
    max: u32::MAX as u128,
    max_text: || QueueLimit::Packets(u32::MAX).to_string(),
};

impl FromStr for QueueLimit {
    type Err = UnitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (_, unit) = split_number_unit(s.trim());
        let zero = || UnitError::Zero {
            what: "queue limit",
            found: s.to_owned(),
        };
        if is_packet_unit(unit) {
            let n = parse_scaled(s, &QUEUE_PACKETS_KIND)?;
            match u32::try_from(n) {
                Ok(0) => Err(zero()),
                Ok(n) => Ok(QueueLimit::Packets(n)),
                Err(_) => Err(UnitError::Overflow {
                    what: "queue limit",
                    found: s.to_owned(),
                    max: QueueLimit::Packets(u32::MAX).to_string(),
                }),
            }
        } else {
            let n = parse_scaled(s, &QUEUE_BYTES_KIND)?;
            match u64::try_from(n) {
                Ok(0) => Err(zero()),
                Ok(n) => Ok(QueueLimit::Bytes(n)),
                Err(_) => Err(UnitError::Overflow {
                    what: "queue limit",
                    found: s.to_owned(),
                    max: QueueLimit::Bytes(u64::MAX).to_string(),
                }),
            }
        }
    }
}

impl fmt::Display for QueueLimit {
    /// `100 packets` / `1 packet`, or the [`ByteSize`] form (`64KiB`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            QueueLimit::Packets(1) => f.write_str("1 packet"),
            QueueLimit::Packets(n) => write!(f, "{n} packets"),
            QueueLimit::Bytes(n) => ByteSize(n).fmt(f),
        }
    }
}

serde_via_str!(QueueLimit, QUEUE_EXPECTED);

// ---------------------------------------------------------------------------
// Ipv4Net
// ---------------------------------------------------------------------------

const IPV4_EXPECTED: &str = "an IPv4 address with prefix length like \"10.0.1.0/24\"";

/// An IPv4 address with a prefix length, e.g. `"10.0.1.0/24"`.
///
/// The same type describes a network (`10.0.1.0/24`) and an interface address
/// within it (`10.0.1.5/24`): host bits may be set, [`addr`](Self::addr)
/// returns the address as written and [`network`](Self::network) the masked
/// network address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix_len: u8,
}

impl Ipv4Net {
    /// `addr/prefix_len`; fails if `prefix_len > 32`.
    pub fn new(addr: Ipv4Addr, prefix_len: u8) -> Result<Ipv4Net, UnitError> {
        if prefix_len > 32 {
            return Err(UnitError::Ipv4 {
                found: format!("{addr}/{prefix_len}"),
                problem: Ipv4Problem::PrefixTooLong(u32::from(prefix_len)),
            });
        }
        Ok(Ipv4Net { addr, prefix_len })
    }

    /// The address as written (host bits kept).
    pub const fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length, 0..=32.
    pub const fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// The netmask, e.g. `255.255.255.0` for `/24`.
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.mask_bits())
    }

    fn mask_bits(&self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix_len))
            .unwrap_or(0)
    }

    /// The network address: [`addr`](Self::addr) with the host bits cleared.
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask_bits())
    }

    /// The last address of the network (all host bits set).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask_bits())
    }

    /// The number of addresses in the network (`2^(32 - prefix_len)`).
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix_len))
    }

    /// Whether `ip` lies inside this network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask_bits() == u32::from(self.network())
    }

    /// The `n`-th address of the network, counting the network address as
    /// `host(0)` (so `10.0.1.0/24`.host(5) is `10.0.1.5`); `None` if
    /// `n >= size()`.
    pub fn host(&self, n: u64) -> Option<Ipv4Addr> {
        if n >= self.size() {
            return None;
        }
        let offset = u32::try_from(n).ok()?;
        u32::from(self.network())
            .checked_add(offset)
            .map(Ipv4Addr::from)
    }
}

fn parse_octet(text: &str) -> Result<u8, Ipv4Problem> {
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_digit()) {
        return Err(Ipv4Problem::BadOctet(text.to_owned()));
    }
    // Leading zeros are read as decimal (not octal) and do not count.
    let significant = text.trim_start_matches('0');
    if significant.is_empty() {
        return Ok(0);
    }
    significant
        .parse::<u8>()
        .map_err(|_| Ipv4Problem::OctetOutOfRange(text.to_owned()))
}

impl FromStr for Ipv4Net {
    type Err = UnitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let err = |problem| UnitError::Ipv4 {
            found: s.to_owned(),
            problem,
        };
        let (addr_text, prefix_text) = text
            .split_once('/')
            .ok_or_else(|| err(Ipv4Problem::MissingPrefix))?;
        let parts: Vec<&str> = addr_text.trim().split('.').collect();
        if parts.len() != 4 {
            return Err(err(Ipv4Problem::OctetCount(parts.len())));
        }
        let mut octets = [0u8; 4];
        for (slot, part) in octets.iter_mut().zip(&parts) {
            *slot = parse_octet(part).map_err(err)?;
        }
        let prefix_text = prefix_text.trim();
        if prefix_text.is_empty() || !prefix_text.chars().all(|c| c.is_ascii_digit()) {
            return Err(err(Ipv4Problem::BadPrefix(prefix_text.to_owned())));
        }
        let prefix = prefix_text.parse::<u32>().unwrap_or(u32::MAX);
        let prefix_len = u8::try_from(prefix)
            .ok()
            .filter(|&p| p <= 32)
            .ok_or_else(|| err(Ipv4Problem::PrefixTooLong(prefix)))?;
        Ok(Ipv4Net {
            addr: Ipv4Addr::from(octets),
            prefix_len,
        })
    }
}

impl fmt::Display for Ipv4Net {
    /// `10.0.1.5/24`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

serde_via_str!(Ipv4Net, IPV4_EXPECTED);

// ---------------------------------------------------------------------------
// Probability
// ---------------------------------------------------------------------------

const PROBABILITY_EXPECTED: &str = "a probability like 0.01 or \"1%\"";

/// A probability in `[0, 1]`.
///
/// Scenario files write it as a plain number (`loss: Bernoulli(0.01)`) or as a
/// percentage string (`"1%"`, `"0.5%"`); a numeric string (`"0.01"`) is also
/// accepted. It serializes as a number.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Probability(f64);

impl Probability {
    /// Probability zero.
    pub const ZERO: Probability = Probability(0.0);
    /// Probability one.
    pub const ONE: Probability = Probability(1.0);

    /// `p`, which must lie in `[0, 1]` (NaN is rejected).
    pub fn new(p: f64) -> Result<Probability, UnitError> {
        if (0.0..=1.0).contains(&p) {
            // Normalise -0.0 so that Display never prints "-0".
            Ok(Probability(p + 0.0))
        } else {
            Err(UnitError::ProbabilityRange {
                found: p.to_string(),
            })
        }
    }

    /// The probability as a number in `[0, 1]`.
    pub const fn value(self) -> f64 {
        self.0
    }
}

/// Whether `text` is a plain decimal number, optionally signed.
fn is_plain_number(text: &str) -> bool {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    !unsigned.contains('_') && !matches!(parse_decimal(unsigned), Err(DecimalError::Syntax))
}

impl FromStr for Probability {
    type Err = UnitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let syntax = || UnitError::Syntax {
            expected: PROBABILITY_EXPECTED,
            found: s.to_owned(),
        };
        let range = || UnitError::ProbabilityRange {
            found: format!("\"{s}\""),
        };
        let value = if let Some(percent) = text.strip_suffix('%') {
            let percent = percent.trim_end();
            if !is_plain_number(percent) {
                return Err(syntax());
            }
            // Shift the decimal point textually so that "1.1%" parses to
            // exactly the same f64 as "0.011".
            format!("{percent}e-2")
                .parse::<f64>()
                .map_err(|_| syntax())?
        } else {
            if !is_plain_number(text) {
                return Err(syntax());
            }
            text.parse::<f64>().map_err(|_| syntax())?
        };
        Probability::new(value).map_err(|_| range())
    }
}

impl fmt::Display for Probability {
    /// The plain number, e.g. `0.01` (never uses exponent notation).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Serialize for Probability {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.0)
    }
}

impl<'de> Deserialize<'de> for Probability {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ProbabilityVisitor;

        impl Visitor<'_> for ProbabilityVisitor {
            type Value = Probability;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(PROBABILITY_EXPECTED)
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Probability, E> {
                Probability::new(v).map_err(E::custom)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Probability, E> {
                match v {
                    0 => Ok(Probability::ZERO),
                    1 => Ok(Probability::ONE),
                    _ => Err(E::custom(UnitError::ProbabilityRange {
                        found: v.to_string(),
                    })),
                }
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Probability, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(UnitError::ProbabilityRange {
                        found: v.to_string(),
                    })),
                }
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Probability, E> {
                v.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_any(ProbabilityVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err<T: FromStr<Err = UnitError> + fmt::Debug>(s: &str) -> UnitError {
        match s.parse::<T>() {
            Ok(v) => panic!("{s:?} unexpectedly parsed as {v:?}"),
            Err(e) => e,
        }
    }

    fn roundtrip<T>(value: T)
    where
        T: FromStr<Err = UnitError> + fmt::Display + fmt::Debug + PartialEq,
    {
        let text = value.to_string();
        let back: T = text
            .parse()
            .unwrap_or_else(|e| panic!("{text:?} did not parse back: {e}"));
        assert_eq!(back, value, "round trip through {text:?}");
    }

    // ----- decimal helpers -----

    #[test]
    fn decimal_parsing() {
        assert_eq!(
            parse_decimal("1.50"),
            Ok(Decimal {
                mantissa: 15,
                scale: 1
            })
        );
        assert_eq!(
            parse_decimal("1_000"),
            Ok(Decimal {
                mantissa: 1000,
                scale: 0
            })
        );
        assert_eq!(
            parse_decimal("0.000"),
            Ok(Decimal {
                mantissa: 0,
                scale: 0
            })
        );
        for bad in ["", ".5", "1.", "1.2.3", "_1", "1e3", "+1", "-1", "1 2"] {
            assert_eq!(parse_decimal(bad), Err(DecimalError::Syntax), "{bad:?}");
        }
        let huge = "9".repeat(60);
        assert_eq!(parse_decimal(&huge), Err(DecimalError::Overflow));
    }

    #[test]
    fn decimal_formatting() {
        assert_eq!(fmt_decimal(1_500, 1_000), "1.5");
        assert_eq!(fmt_decimal(1_005, 1_000), "1.005");
        assert_eq!(fmt_decimal(2_000, 1_000), "2");
        assert_eq!(fmt_decimal(7, 1), "7");
    }

    // ----- Rate -----

    #[test]
    fn rate_parses_units_exactly() {
        let cases: &[(&str, u64)] = &[
            ("1bps", 1),
            ("64kbps", 64_000),
            ("64Kbps", 64_000),
            ("100Mbps", 100_000_000),
            ("100mbps", 100_000_000),
            ("100 Mbps", 100_000_000),
            ("  10 Mbps  ", 10_000_000),
            ("1.5Gbps", 1_500_000_000),
            ("1.5gbps", 1_500_000_000),
            ("0.001Gbps", 1_000_000),
            ("2.5Tbps", 2_500_000_000_000),
            ("10Mbit/s", 10_000_000),
            ("1_000kbps", 1_000_000),
            ("1.000000001Gbps", 1_000_000_001),
            ("18446744073709551615bps", u64::MAX),
        ];
        for &(text, bps) in cases {
            let rate: Rate = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(rate.bits_per_sec(), bps, "{text}");
        }
    }

    #[test]
    fn rate_errors_are_actionable() {
        assert_eq!(
            err::<Rate>("fast").to_string(),
            "expected a rate like \"100Mbps\", \"1.5Gbps\" or \"64kbps\", found \"fast\""
        );
        assert!(matches!(err::<Rate>("0Mbps"), UnitError::Zero { .. }));
        assert_eq!(
            err::<Rate>("0Mbps").to_string(),
            "a rate must be greater than zero, found \"0Mbps\""
        );
        assert!(matches!(err::<Rate>("0.0bps"), UnitError::Zero { .. }));
        assert!(matches!(err::<Rate>("-5Mbps"), UnitError::Negative { .. }));
        assert!(matches!(err::<Rate>("100"), UnitError::MissingUnit { .. }));
        assert!(err::<Rate>("100").to_string().contains("missing unit"));
        let unknown = err::<Rate>("5MBps");
        assert!(matches!(unknown, UnitError::UnknownUnit { ref unit, .. } if unit == "MBps"));
        assert!(unknown.to_string().contains("valid units are bps, kbps"));
        assert!(matches!(err::<Rate>("1.5bps"), UnitError::NotWhole { .. }));
        assert!(matches!(
            err::<Rate>("20000000Tbps"),
            UnitError::Overflow { .. }
        ));
        assert!(matches!(
            err::<Rate>("18446744073709551616bps"),
            UnitError::Overflow { .. }
        ));
        assert!(matches!(
            err::<Rate>(&format!("{}Gbps", "9".repeat(80))),
            UnitError::Overflow { .. }
        ));
        for bad in [
            "", "Mbps", "1.Gbps", ".5Gbps", "1..5Gbps", "1,5Gbps", "+1Gbps",
        ] {
            let e = err::<Rate>(bad);
            assert!(
                matches!(e, UnitError::Syntax { .. } | UnitError::UnknownUnit { .. }),
                "{bad:?}: {e:?}"
            );
        }
    }

    #[test]
    fn rate_display_round_trips() {
        let r = |s: &str| s.parse::<Rate>().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r("1.5Gbps").to_string(), "1.5Gbps");
        assert_eq!(r("1000Mbps").to_string(), "1Gbps");
        assert_eq!(r("64Kbps").to_string(), "64kbps");
        assert_eq!(r("999bps").to_string(), "999bps");
        for bps in [
            1,
            999,
            1_000,
            1_001,
            64_000,
            1_500_000_000,
            1_000_000_001,
            u64::MAX,
        ] {
            roundtrip(Rate(bps));
        }
        assert_eq!(Rate::from_bits_per_sec(0), None);
        assert_eq!(Rate::from_bits_per_sec(5).map(Rate::bits_per_sec), Some(5));
    }

    // ----- Duration -----

    #[test]
    fn duration_parses_units_exactly() {
        let cases: &[(&str, u64)] = &[
            ("0s", 0),
            ("0ns", 0),
            ("7ns", 7),
            ("250us", 250_000),
            ("250µs", 250_000),
            ("250μs", 250_000),
            ("1.5ms", 1_500_000),
            ("0.1ms", 100_000),
            ("20 ms", 20_000_000),
            ("60s", 60_000_000_000),
            ("1.000000001s", 1_000_000_001),
            ("2min", 120_000_000_000),
            ("1.5h", 5_400_000_000_000),
            ("0.5min", 30_000_000_000),
        ];
        for &(text, ns) in cases {
            let d: Duration = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(d.as_nanos(), ns, "{text}");
        }
    }

    #[test]
    fn duration_errors() {
        assert!(matches!(
            err::<Duration>("-1ms"),
            UnitError::Negative { .. }
        ));
        assert_eq!(
            err::<Duration>("-1ms").to_string(),
            "a duration cannot be negative, found \"-1ms\""
        );
        assert!(matches!(
            err::<Duration>("1.5ns"),
            UnitError::NotWhole { .. }
        ));
        assert_eq!(
            err::<Duration>("1.5ns").to_string(),
            "duration \"1.5ns\" is not a whole number of nanoseconds"
        );
        assert!(matches!(
            err::<Duration>("10"),
            UnitError::MissingUnit { .. }
        ));
        assert!(matches!(
            err::<Duration>("10m"),
            UnitError::UnknownUnit { .. }
        ));
        assert!(matches!(err::<Duration>("soon"), UnitError::Syntax { .. }));
        assert!(matches!(
            err::<Duration>("10000000000h"),
            UnitError::Overflow { .. }
        ));
        assert!(matches!(
            err::<Duration>("0.0000000000000000000000000000000000000001s"),
            UnitError::NotWhole { .. }
        ));
        assert!(err::<Duration>("3 fortnights")
            .to_string()
            .contains("valid units are ns, us"));
    }

    #[test]
    fn duration_display_round_trips() {
        let d = |s: &str| s.parse::<Duration>().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d("0ms").to_string(), "0s");
        assert_eq!(d("1.5ms").to_string(), "1.5ms");
        assert_eq!(d("1500us").to_string(), "1.5ms");
        assert_eq!(d("90s").to_string(), "90s");
        assert_eq!(d("120s").to_string(), "2min");
        assert_eq!(d("1.5h").to_string(), "90min");
        assert_eq!(d("7200s").to_string(), "2h");
        assert_eq!(d("90.5s").to_string(), "90.5s");
        assert_eq!(d("12ns").to_string(), "12ns");
        for ns in [
            0,
            1,
            999,
            1_000,
            1_500_000,
            1_000_000_001,
            NS_PER_MIN,
            NS_PER_H * 3 + 1,
            u64::MAX,
        ] {
            roundtrip(Duration(ns));
        }
        assert_eq!(
            std::time::Duration::from(d("1.5s")),
            std::time::Duration::from_millis(1500)
        );
    }

    // ----- ByteSize -----

    #[test]
    fn byte_size_parsing() {
        let cases: &[(&str, u64)] = &[
            ("0B", 0),
            ("1500B", 1500),
            ("1500 B", 1500),
            ("1500 bytes", 1500),
            ("1 byte", 1),
            ("64KiB", 65_536),
            ("1.5KiB", 1_536),
            ("2GB", 2_000_000_000),
            ("150KB", 150_000),
            ("150kB", 150_000),
            ("3MiB", 3 * MIB),
            ("1GiB", GIB),
            ("1TB", 1_000_000_000_000),
            ("2TiB", 2 * TIB),
        ];
        for &(text, bytes) in cases {
            let b: ByteSize = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(b.as_bytes(), bytes, "{text}");
        }
        assert!(matches!(
            err::<ByteSize>("0.1KiB"),
            UnitError::NotWhole { .. }
        ));
        assert!(matches!(
            err::<ByteSize>("12"),
            UnitError::MissingUnit { .. }
        ));
        assert!(matches!(
            err::<ByteSize>("12kb"),
            UnitError::UnknownUnit { .. }
        ));
        assert!(matches!(err::<ByteSize>("-1B"), UnitError::Negative { .. }));
        assert!(matches!(
            err::<ByteSize>("20000000TiB"),
            UnitError::Overflow { .. }
        ));
        assert_eq!(
            err::<ByteSize>("big").to_string(),
            "expected a byte size like \"1500B\", \"64KiB\" or \"2MB\", found \"big\""
        );
    }

    #[test]
    fn byte_size_display_round_trips() {
        assert_eq!(ByteSize(65_536).to_string(), "64KiB");
        assert_eq!(ByteSize(2_000_000_000).to_string(), "2GB");
        assert_eq!(ByteSize(1500).to_string(), "1500B");
        assert_eq!(ByteSize(150_000).to_string(), "150KB");
        assert_eq!(ByteSize(0).to_string(), "0B");
        for b in [
            0,
            1,
            1_000,
            1_024,
            1_536,
            1_000_000,
            MIB,
            GIB,
            TIB,
            u64::MAX,
        ] {
            roundtrip(ByteSize(b));
        }
    }

    // ----- QueueLimit -----

    #[test]
    fn queue_limit_parsing() {
        let q = |s: &str| {
            s.parse::<QueueLimit>()
                .unwrap_or_else(|e| panic!("{s}: {e}"))
        };
        assert_eq!(q("100 packets"), QueueLimit::Packets(100));
        assert_eq!(q("100packets"), QueueLimit::Packets(100));
        assert_eq!(q("100 pkts"), QueueLimit::Packets(100));
        assert_eq!(q("100p"), QueueLimit::Packets(100));
        assert_eq!(q("1 packet"), QueueLimit::Packets(1));
        assert_eq!(q("64KiB"), QueueLimit::Bytes(65_536));
        assert_eq!(q("1500000 B"), QueueLimit::Bytes(1_500_000));
        assert_eq!(q("150KB"), QueueLimit::Bytes(150_000));
        assert_eq!(q("4294967295 packets"), QueueLimit::Packets(u32::MAX));

        assert!(matches!(
            err::<QueueLimit>("0 packets"),
            UnitError::Zero { .. }
        ));
        assert!(matches!(err::<QueueLimit>("0B"), UnitError::Zero { .. }));
        assert!(matches!(
            err::<QueueLimit>("4294967296 packets"),
            UnitError::Overflow { .. }
        ));
        assert!(matches!(
            err::<QueueLimit>("1.5 packets"),
            UnitError::NotWhole { .. }
        ));
        assert!(matches!(
            err::<QueueLimit>("100"),
            UnitError::MissingUnit { .. }
        ));
        assert!(matches!(
            err::<QueueLimit>("-3 packets"),
            UnitError::Negative { .. }
        ));
        let unknown = err::<QueueLimit>("100 frames");
        assert!(matches!(unknown, UnitError::UnknownUnit { .. }));
        assert!(unknown.to_string().contains("packets (or pkts, p)"));
        assert_eq!(
            err::<QueueLimit>("lots").to_string(),
            "expected a queue limit like \"100 packets\" or \"64KiB\", found \"lots\""
        );
    }

    #[test]
    fn queue_limit_display_round_trips() {
        assert_eq!(QueueLimit::Packets(100).to_string(), "100 packets");
        assert_eq!(QueueLimit::Packets(1).to_string(), "1 packet");
        assert_eq!(QueueLimit::Bytes(65_536).to_string(), "64KiB");
        for q in [
            QueueLimit::Packets(1),
            QueueLimit::Packets(100),
            QueueLimit::Packets(u32::MAX),
            QueueLimit::Bytes(1),
            QueueLimit::Bytes(1500),
            QueueLimit::Bytes(u64::MAX),
        ] {
            roundtrip(q);
        }
    }

    // ----- Ipv4Net -----

    #[test]
    fn ipv4_net_parsing_and_accessors() {
        let n: Ipv4Net = "10.0.1.5/24".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.addr(), Ipv4Addr::new(10, 0, 1, 5));
        assert_eq!(n.prefix_len(), 24);
        assert_eq!(n.network(), Ipv4Addr::new(10, 0, 1, 0));
        assert_eq!(n.broadcast(), Ipv4Addr::new(10, 0, 1, 255));
        assert_eq!(n.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(n.size(), 256);
        assert!(n.contains(Ipv4Addr::new(10, 0, 1, 200)));
        assert!(!n.contains(Ipv4Addr::new(10, 0, 2, 1)));
        assert_eq!(n.host(0), Some(Ipv4Addr::new(10, 0, 1, 0)));
        assert_eq!(n.host(7), Some(Ipv4Addr::new(10, 0, 1, 7)));
        assert_eq!(n.host(255), Some(Ipv4Addr::new(10, 0, 1, 255)));
        assert_eq!(n.host(256), None);
        assert_eq!(n.to_string(), "10.0.1.5/24");

        let all: Ipv4Net = "0.0.0.0/0".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(all.size(), 1 << 32);
        assert_eq!(all.netmask(), Ipv4Addr::new(0, 0, 0, 0));
        assert!(all.contains(Ipv4Addr::new(192, 168, 1, 1)));
        assert_eq!(all.broadcast(), Ipv4Addr::BROADCAST);
        assert_eq!(all.host(u64::from(u32::MAX)), Some(Ipv4Addr::BROADCAST));
        assert_eq!(all.host(1 << 32), None);

        let single: Ipv4Net = " 192.168.7.9/32 ".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(single.size(), 1);
        assert_eq!(single.network(), Ipv4Addr::new(192, 168, 7, 9));
        assert_eq!(single.broadcast(), Ipv4Addr::new(192, 168, 7, 9));
        assert!(single.contains(Ipv4Addr::new(192, 168, 7, 9)));
        assert!(!single.contains(Ipv4Addr::new(192, 168, 7, 8)));
        assert_eq!(single.host(1), None);

        let odd: Ipv4Net = "172.16.5.77/20".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(odd.network(), Ipv4Addr::new(172, 16, 0, 0));
        assert_eq!(odd.broadcast(), Ipv4Addr::new(172, 16, 15, 255));

        assert_eq!(
            Ipv4Net::new(Ipv4Addr::new(10, 0, 0, 1), 8).map(|n| n.to_string()),
            Ok("10.0.0.1/8".to_owned())
        );
        assert!(Ipv4Net::new(Ipv4Addr::new(10, 0, 0, 1), 33).is_err());
        roundtrip(odd);
    }

    #[test]
    fn ipv4_net_errors() {
        let problem = |s: &str| match err::<Ipv4Net>(s) {
            UnitError::Ipv4 { problem, .. } => problem,
            other => panic!("{s}: unexpected {other:?}"),
        };
        assert_eq!(
            problem("10.0.300.1/24"),
            Ipv4Problem::OctetOutOfRange("300".into())
        );
        assert_eq!(
            problem("10.0.99999999999999999999999.1/24"),
            Ipv4Problem::OctetOutOfRange("99999999999999999999999".into())
        );
        assert_eq!(problem("10.0.1.0/33"), Ipv4Problem::PrefixTooLong(33));
        assert_eq!(
            problem("10.0.1.0/99999999999"),
            Ipv4Problem::PrefixTooLong(u32::MAX)
        );
        assert_eq!(problem("10.0.1.0"), Ipv4Problem::MissingPrefix);
        assert_eq!(problem("10.0.1.0/"), Ipv4Problem::BadPrefix(String::new()));
        assert_eq!(problem("10.0.1.0/x"), Ipv4Problem::BadPrefix("x".into()));
        assert_eq!(problem("10.0.1/24"), Ipv4Problem::OctetCount(3));
        assert_eq!(problem("10.0.1.2.3/24"), Ipv4Problem::OctetCount(5));
        assert_eq!(problem("10.0.a.1/24"), Ipv4Problem::BadOctet("a".into()));
        assert_eq!(problem("10..1.1/24"), Ipv4Problem::BadOctet(String::new()));
        assert_eq!(problem("10.-1.1.1/24"), Ipv4Problem::BadOctet("-1".into()));
        assert_eq!(
            err::<Ipv4Net>("10.0.300.1/24").to_string(),
            "invalid IPv4 network \"10.0.300.1/24\": octet \"300\" is out of range 0-255; \
             expected an address with prefix length like \"10.0.1.0/24\""
        );
        // Leading zeros are plain decimal, not octal.
        let n: Ipv4Net = "010.000.001.007/24"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.addr(), Ipv4Addr::new(10, 0, 1, 7));
    }

    // ----- Probability -----

    #[test]
    fn probability_parsing() {
        let p = |s: &str| {
            s.parse::<Probability>()
                .unwrap_or_else(|e| panic!("{s}: {e}"))
                .value()
        };
        assert_eq!(p("0.01"), 0.01);
        assert_eq!(p("1%"), 0.01);
        assert_eq!(p("0.5%"), 0.005);
        assert_eq!(p("1.1%"), 0.011);
        assert_eq!(p("100%"), 1.0);
        assert_eq!(p("0"), 0.0);
        assert_eq!(p("1"), 1.0);
        assert_eq!(p(" 25 % "), 0.25);
        assert!(matches!(
            err::<Probability>("1.5"),
            UnitError::ProbabilityRange { .. }
        ));
        assert!(matches!(
            err::<Probability>("101%"),
            UnitError::ProbabilityRange { .. }
        ));
        assert!(matches!(
            err::<Probability>("-0.1"),
            UnitError::ProbabilityRange { .. }
        ));
        for bad in ["", "%", "often", "NaN", "inf", "1e-3", "0.5%%", "1_0%"] {
            assert!(
                matches!(err::<Probability>(bad), UnitError::Syntax { .. }),
                "{bad:?}"
            );
        }
        assert!(Probability::new(f64::NAN).is_err());
        assert!(Probability::new(1.0000001).is_err());
        assert_eq!(
            Probability::new(-0.0).map(|p| p.to_string()),
            Ok("0".into())
        );
        for v in [0.0, 0.01, 0.5, 1.0, 1e-12, 0.1 + 0.2] {
            let prob = Probability::new(v).unwrap_or_else(|e| panic!("{e}"));
            roundtrip(prob);
        }
    }

    // ----- serde through ron -----

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct LinkSpec {
        rate: Rate,
        delay: Duration,
        buffer: ByteSize,
        queue: QueueLimit,
        addr: Ipv4Net,
        loss: Probability,
    }

    #[test]
    fn ron_round_trip() {
        let text = r#"(rate: "1.5Gbps", delay: "20ms", buffer: "64KiB",
                        queue: "100 packets", addr: "10.0.1.5/24", loss: 0.01)"#;
        let spec: LinkSpec = ron::from_str(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(spec.rate.bits_per_sec(), 1_500_000_000);
        assert_eq!(spec.delay.as_nanos(), 20_000_000);
        assert_eq!(spec.buffer.as_bytes(), 65_536);
        assert_eq!(spec.queue, QueueLimit::Packets(100));
        assert_eq!(spec.addr.addr(), Ipv4Addr::new(10, 0, 1, 5));
        assert_eq!(spec.loss.value(), 0.01);

        let out = ron::to_string(&spec).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            out,
            r#"(rate:"1.5Gbps",delay:"20ms",buffer:"64KiB",queue:"100 packets",addr:"10.0.1.5/24",loss:0.01)"#
        );
        let back: LinkSpec = ron::from_str(&out).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, spec);
    }

    #[test]
    fn ron_probability_forms() {
        #[derive(Deserialize)]
        struct P {
            p: Probability,
        }
        let p = |text: &str| ron::from_str::<P>(text).map(|p| p.p.value());
        assert_eq!(p("(p: 0.5)"), Ok(0.5));
        assert_eq!(p("(p: 0.1)"), Ok(0.1));
        assert_eq!(p("(p: 1)"), Ok(1.0));
        assert_eq!(p("(p: 0)"), Ok(0.0));
        assert_eq!(p("(p: \"2.5%\")"), Ok(0.025));
        assert!(p("(p: 2)").is_err());
        assert!(p("(p: -1)").is_err());
        assert!(p("(p: 1.5)").is_err());
        assert!(p("(p: NaN)").is_err());
        assert!(p("(p: \"lots\")").is_err());
    }

    #[test]
    fn ron_errors_carry_position_and_message() {
        let text = "(\n  rate: \"fast\",\n  delay: \"1ms\", buffer: \"1B\", queue: \"1p\",\n  addr: \"10.0.0.1/8\", loss: 0)";
        let e = match ron::from_str::<LinkSpec>(text) {
            Ok(v) => panic!("parsed {v:?}"),
            Err(e) => e,
        };
        let msg = e.to_string();
        assert!(
            msg.contains(
                "expected a rate like \"100Mbps\", \"1.5Gbps\" or \"64kbps\", found \"fast\""
            ),
            "{msg}"
        );
        assert_eq!(e.span.start.line, 2, "{msg}");

        let text = "(rate: 100, delay: \"1ms\", buffer: \"1B\", queue: \"1p\", addr: \"10.0.0.1/8\", loss: 0)";
        let msg = match ron::from_str::<LinkSpec>(text) {
            Ok(v) => panic!("parsed {v:?}"),
            Err(e) => e.to_string(),
        };
        assert!(msg.contains("found the bare number 100"), "{msg}");
    }

    #[test]
    fn never_panics_on_odd_input() {
        let inputs = [
            "",
            " ",
            "-",
            "--1ms",
            ".",
            "..",
            "_",
            "1_",
            "1__0ms",
            "µ",
            "1µ",
            "1 µs µs",
            "\u{0}",
            "１ms",
            "1.5.5ms",
            "/",
            "1/24",
            "...//",
            "255.255.255.255/32",
            "4294967296",
            "%",
            "-%",
            "1e400%",
            "99999999999999999999999999999999999999999%",
        ];
        for s in inputs {
            let _ = s.parse::<Rate>();
            let _ = s.parse::<Duration>();
            let _ = s.parse::<ByteSize>();
            let _ = s.parse::<QueueLimit>();
            let _ = s.parse::<Ipv4Net>();
            let _ = s.parse::<Probability>();
        }
    }
}
