//! Fixed-point logarithm for consensus arithmetic (rewards, sortition).
//!
//! Integers only: it must never use floating point (libm's `ln` is not
//! guaranteed bit-identical across platforms, and validators that disagree
//! by one unit reject each other's blocks).

/// Fractional bits of the fixed-point logarithm.
pub const FRAC_BITS: u32 = 60;
pub const ONE: u128 = 1 << FRAC_BITS;
/// `floor(ln 2 · 2^60)`.
pub const LN2_Q60: u128 = 0x0B17_217F_7D1C_F79A;
/// `ln(n)` in Q.60 fixed point, truncated; `n = 0` counts as 1.
///
/// `log2` bit by bit (integer part from the leading zeros, each fractional
/// bit by squaring the mantissa), then times `ln 2`. Each squaring truncates
/// by at most 2^-60, which keeps the total error far below one base unit of
/// any reward.
pub fn ln_q60(n: u64) -> u128 {
    let n = n.max(1);
    let int_part = 63 - n.leading_zeros();
    // Mantissa n / 2^int_part, in [1, 2).
    let mut mantissa = (u128::from(n) << FRAC_BITS) >> int_part;
    let mut frac_part: u128 = 0;
    for bit in (0..FRAC_BITS).rev() {
        // mantissa < 2^61, so the square fits in u128.
        mantissa = (mantissa * mantissa) >> FRAC_BITS;
        if mantissa >= 2 * ONE {
            mantissa >>= 1;
            frac_part |= 1 << bit;
        }
    }
    let log2 = (u128::from(int_part) << FRAC_BITS) | frac_part;
    // log2 < 2^66 and LN2_Q60 < 2^60: the product fits in u128.
    (log2 * LN2_Q60) >> FRAC_BITS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_of_powers_of_two_is_exact_multiple_of_ln2() {
        assert_eq!(ln_q60(1), 0);
        assert_eq!(ln_q60(0), 0);
        assert_eq!(ln_q60(2), LN2_Q60);
        assert_eq!(ln_q60(1 << 40), (40 * ONE * LN2_Q60) >> FRAC_BITS);
    }
}
