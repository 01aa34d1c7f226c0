//! The `memory` and `cpu` options: limits beyond time.

use quote::ToTokens;

use crate::attr::Opt;
use crate::valid::{number_value, string_value, Problem, MAX_SECS};

/// Units `memory` accepts, with their size in bytes.
const UNITS: [(&str, u64); 7] = [
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
];

fn unit_list() -> String {
    let names: Vec<&str> = UNITS.iter().map(|(u, _)| *u).collect();
    names.join(", ")
}

/// `memory = "512 MiB"`: the number of bytes.
pub(crate) fn memory(opt: &Opt) -> Result<u64, Problem> {
    let text = string_value(
        opt,
        "`memory` expects a string with a unit, like `memory = \"512 MiB\"`",
    )?;
    bytes(&text).map_err(|msg| (opt.value.to_token_stream(), msg))
}

/// "512 MiB", "1.5 GiB", "800KiB" in bytes, or what is wrong with it.
fn bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(text.len());
    let (num, unit) = (text[..split].replace('_', ""), text[split..].trim());
    if num.is_empty() {
        return Err(format!(
            "`memory` expects a number and a unit, like \"512 MiB\"; got \"{text}\""
        ));
    }
    if unit.is_empty() {
        return Err(format!(
            "`memory` needs a unit after the number: one of {}",
            unit_list()
        ));
    }
    let Some(&(_, scale)) = UNITS.iter().find(|(u, _)| *u == unit) else {
        let near = UNITS
            .iter()
            .find(|(u, _)| u.eq_ignore_ascii_case(unit))
            .map_or(String::new(), |(u, _)| format!("; did you mean `{u}`?"));
        return Err(format!(
            "`memory`: unknown unit `{unit}`; expected one of {}{near}",
            unit_list()
        ));
    };
    let too_big = || format!("`memory` of \"{text}\" does not fit in 64 bits of bytes");
    let total = if let Ok(whole) = num.parse::<u64>() {
        whole.checked_mul(scale).ok_or_else(too_big)?
    } else {
        let value: f64 = num
            .parse()
            .map_err(|_| format!("`memory`: `{num}` is not a number"))?;
        let total = (value * scale as f64).round();
        if total >= u64::MAX as f64 {
            return Err(too_big());
        }
        total as u64
    };
    if total == 0 {
        return Err("`memory` must be more than 0 bytes".into());
    }
    Ok(total)
}

/// `cpu = 2.0`: seconds of CPU time.
pub(crate) fn cpu(opt: &Opt) -> Result<f64, Problem> {
    let span = opt.value.to_token_stream();
    let value = number_value(
        opt,
        "cpu",
        "`cpu` expects a number of seconds of CPU time, like `cpu = 2.0`",
    )?;
    let problem = if !value.is_finite() {
        "`cpu` must be a finite number"
    } else if value <= 0.0 {
        "`cpu` must be greater than 0"
    } else if value > MAX_SECS {
        "`cpu` must be at most 3155760000 (100 years)"
    } else {
        return Ok(value);
    };
    Err((span, problem.into()))
}

#[cfg(test)]
mod tests {
    use super::bytes;

    #[test]
    fn units_are_binary_or_decimal_as_written() {
        assert_eq!(bytes("512 MiB"), Ok(512 << 20));
        assert_eq!(bytes("2 GiB"), Ok(2 << 30));
        assert_eq!(bytes("64 MB"), Ok(64_000_000));
        assert_eq!(bytes("800KiB"), Ok(800 << 10));
        assert_eq!(bytes("1.5 GiB"), Ok(3 << 29));
        assert_eq!(bytes("100 B"), Ok(100));
        assert_eq!(bytes("1_000 KB"), Ok(1_000_000));
    }

    #[test]
    fn mistakes_say_what_is_allowed() {
        assert!(bytes("512").unwrap_err().contains("needs a unit"));
        assert!(bytes("512 mib").unwrap_err().contains("did you mean `MiB`"));
        assert!(bytes("512 MiBs").unwrap_err().contains("unknown unit"));
        assert!(bytes("0 MiB").unwrap_err().contains("more than 0"));
        assert!(bytes("99999999999 GiB")
            .unwrap_err()
            .contains("does not fit"));
        assert!(bytes("MiB").unwrap_err().contains("a number and a unit"));
        assert!(bytes("1.2.3 MiB").unwrap_err().contains("not a number"));
    }
}
