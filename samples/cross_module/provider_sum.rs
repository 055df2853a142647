// SPDX-License-Identifier: GPL-2.0

//! Pure logic of `rvio_test_provider_sum()`: it uses no kernel API, so
//! `rvio_test_provider` includes it and `cargo test` runs its unit tests on
//! the host (the `rvio-pure` crate in `rust/pure/`). The model for every
//! pure-logic file of rvio: wire formats, protocols, tables, checks.

/// Most values one sum accepts (`test_provider.h`).
pub const MAX_VALS: usize = 4096;

/// Why a sum was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SumError {
    /// No values.
    Empty,
    /// More than [`MAX_VALS`] values.
    TooMany,
}

/// Checks a count of values before anything is read.
pub fn check_len(n: usize) -> Result<(), SumError> {
    match n {
        0 => Err(SumError::Empty),
        n if n > MAX_VALS => Err(SumError::TooMany),
        _ => Ok(()),
    }
}

/// The sum of 1 to [`MAX_VALS`] values. It cannot overflow: the largest is
/// `MAX_VALS * u32::MAX`, below 2^44.
pub fn sum(vals: &[u32]) -> Result<u64, SumError> {
    check_len(vals.len())?;
    Ok(vals.iter().map(|&v| u64::from(v)).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_small_inputs() {
        assert_eq!(sum(&[1, 2, 3]), Ok(6));
        assert_eq!(sum(&[0]), Ok(0));
    }

    #[test]
    fn refuses_empty_and_oversized_inputs() {
        assert_eq!(sum(&[]), Err(SumError::Empty));
        assert_eq!(sum(&[1; MAX_VALS + 1]), Err(SumError::TooMany));
        assert_eq!(check_len(usize::MAX), Err(SumError::TooMany));
    }

    #[test]
    fn largest_input_does_not_overflow() {
        let max = [u32::MAX; MAX_VALS];
        assert_eq!(sum(&max), Ok(MAX_VALS as u64 * u64::from(u32::MAX)));
    }
}
