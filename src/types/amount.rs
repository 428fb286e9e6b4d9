//! Amounts in base units: 1 TIME = 100,000,000 units. Checked arithmetic only;
//! text parsing and display are exact decimal, never floating point.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

pub const UNITS_PER_TIME: u64 = 100_000_000;
const DECIMALS: usize = 8;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Amount(pub u64);

impl Amount {
    pub const ZERO: Amount = Amount(0);

    pub const fn from_units(units: u64) -> Amount {
        Amount(units)
    }

    pub const fn units(self) -> u64 {
        self.0
    }

    pub fn from_time(whole: u64) -> Option<Amount> {
        whole.checked_mul(UNITS_PER_TIME).map(Amount)
    }

    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }

    /// Sum of many amounts, `None` on overflow.
    pub fn checked_sum<I: IntoIterator<Item = Amount>>(items: I) -> Option<Amount> {
        items
            .into_iter()
            .try_fold(Amount::ZERO, Amount::checked_add)
    }

    /// Exact decimal TIME without the unit (`12.345`), for JSON and tables.
    pub fn to_decimal(self) -> String {
        let whole = self.0 / UNITS_PER_TIME;
        let frac = self.0 % UNITS_PER_TIME;
        let digits = format!("{frac:08}");
        let trimmed = digits.trim_end_matches('0');
        let trimmed = if trimmed.is_empty() { "0" } else { trimmed };
        format!("{whole}.{trimmed}")
    }
}

/// `12.345 TIME`: trailing zeros trimmed, at least one digit after the point.
impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} TIME", self.to_decimal())
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseAmountError {
    #[error("'{0}' is not an amount: expected digits with an optional '.' and up to 8 decimals, e.g. 12.345, 12.345TIME or '12.345 TIME'")]
    Syntax(String),
    #[error("'{0}' has more than 8 decimal places (1 unit = 0.00000001 TIME)")]
    TooPrecise(String),
    #[error("'{0}' exceeds the largest representable amount")]
    Overflow(String),
}

/// Parses `12`, `12.5`, `0.00000001`, optionally followed by ` TIME`.
impl FromStr for Amount {
    type Err = ParseAmountError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let s = text.trim();
        let s = s.strip_suffix("TIME").map(str::trim_end).unwrap_or(s);
        let (whole, frac) = match s.split_once('.') {
            Some((w, f)) => (w, f),
            None => (s, ""),
        };
        let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !all_digits(whole)
            || !all_digits(frac)
            || (s.contains('.') && frac.is_empty())
        {
            return Err(ParseAmountError::Syntax(text.to_string()));
        }
        if frac.len() > DECIMALS {
            return Err(ParseAmountError::TooPrecise(text.to_string()));
        }
        let overflow = || ParseAmountError::Overflow(text.to_string());
        let whole: u64 = whole.parse().map_err(|_| overflow())?;
        let frac_units: u64 = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<8}").parse().map_err(|_| overflow())?
        };
        whole
            .checked_mul(UNITS_PER_TIME)
            .and_then(|w| w.checked_add(frac_units))
            .map(Amount)
            .ok_or_else(overflow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_trimmed_decimal() {
        assert_eq!(Amount(1_234_500_000).to_string(), "12.345 TIME");
        assert_eq!(Amount(100_000).to_string(), "0.001 TIME");
        assert_eq!(Amount(0).to_string(), "0.0 TIME");
        assert_eq!(Amount(1).to_string(), "0.00000001 TIME");
    }

    #[test]
    fn parses_exactly_without_floats() {
        assert_eq!("12.345 TIME".parse(), Ok(Amount(1_234_500_000)));
        assert_eq!("12.345".parse(), Ok(Amount(1_234_500_000)));
        assert_eq!("7".parse(), Ok(Amount(700_000_000)));
        assert_eq!("0.00000001".parse(), Ok(Amount(1)));
        assert!(matches!(
            "0.000000001".parse::<Amount>(),
            Err(ParseAmountError::TooPrecise(_))
        ));
        assert!(matches!(
            "1e3".parse::<Amount>(),
            Err(ParseAmountError::Syntax(_))
        ));
        assert!(matches!(
            "-1".parse::<Amount>(),
            Err(ParseAmountError::Syntax(_))
        ));
        assert!(matches!(
            "1.".parse::<Amount>(),
            Err(ParseAmountError::Syntax(_))
        ));
        assert!(matches!(
            "184467440737.1".parse::<Amount>(),
            Err(ParseAmountError::Overflow(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn display_parse_round_trip(units: u64) {
            let a = Amount(units);
            proptest::prop_assert_eq!(a.to_string().parse::<Amount>(), Ok(a));
        }
    }
}
