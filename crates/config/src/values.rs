//! Value parsers with Java's number rules and rzk's error wording.
//!
//! Each returns `Err(message)`; the caller adds the key and the line.

/// Optional sign then ASCII digits, as `Long.parseLong` (radix 10) takes them.
fn java_parse_i128(s: &str) -> Option<i128> {
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 30 {
        return None;
    }
    let v: i128 = digits.parse().ok()?;
    Some(if neg { -v } else { v })
}

/// `Integer.parseInt`.
pub(crate) fn java_parse_int(s: &str) -> Option<i32> {
    java_parse_i128(s).and_then(|v| i32::try_from(v).ok())
}

/// `Double.parseDouble`, for the decimal forms (surrounding whitespace, a sign, digits with
/// an optional point and exponent, an optional `d`/`f` suffix, `NaN`, `Infinity`); its
/// hexadecimal form is refused (with the value in the message).
pub(crate) fn java_parse_double(v: &str) -> Result<f64, String> {
    let t = v.trim_matches(|c: char| c <= ' ');
    let bad = || format!("expected a decimal number, got \"{v}\"");
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    if unsigned == "NaN" {
        return Ok(f64::NAN);
    }
    if unsigned == "Infinity" {
        return Ok(if t.starts_with('-') { f64::NEG_INFINITY } else { f64::INFINITY });
    }
    let num = t.strip_suffix(['d', 'D', 'f', 'F']).unwrap_or(t);
    let body = num.strip_prefix(['+', '-']).unwrap_or(num);
    let mantissa = body.split(['e', 'E']).next().unwrap_or("");
    if !mantissa.chars().any(|c| c.is_ascii_digit()) || !num.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) {
        return Err(bad());
    }
    num.parse::<f64>().map_err(|_| bad())
}

/// `Long.parseLong`.
pub(crate) fn java_parse_long(s: &str) -> Option<i64> {
    java_parse_i128(s).and_then(|v| i64::try_from(v).ok())
}

/// `Integer.decode`, which `Integer.getInteger` uses for system properties:
/// decimal, `0x`/`0X`/`#` hexadecimal, or `0`-prefixed octal, with an
/// optional sign.
pub(crate) fn java_decode_int(s: &str) -> Option<i32> {
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(h) = rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X")) {
        (16, h)
    } else if let Some(h) = rest.strip_prefix('#') {
        (16, h)
    } else if rest.len() > 1 && rest.starts_with('0') {
        (8, &rest[1..])
    } else {
        (10, rest)
    };
    if digits.is_empty() || digits.starts_with(['-', '+']) || digits.len() > 40 {
        return None;
    }
    let v = i128::from_str_radix(digits, radix).ok()?;
    i32::try_from(if neg { -v } else { v }).ok()
}

pub(crate) fn positive_int(v: &str) -> Result<u32, String> {
    match java_parse_int(v) {
        Some(n) if n > 0 => Ok(n as u32),
        _ => Err(format!("expected a positive integer, got \"{v}\"")),
    }
}

pub(crate) fn non_negative_int(v: &str) -> Result<u32, String> {
    match java_parse_int(v) {
        Some(n) if n >= 0 => Ok(n as u32),
        _ => Err(format!("expected a non-negative integer, got \"{v}\"")),
    }
}

pub(crate) fn int(v: &str) -> Result<i32, String> {
    java_parse_int(v).ok_or_else(|| format!("expected an integer, got \"{v}\""))
}

/// A port in 1..=65535.
pub(crate) fn port(v: &str) -> Result<u16, String> {
    match java_parse_int(v) {
        Some(n) if (1..=65535).contains(&n) => Ok(n as u16),
        _ => Err(format!("expected a port number (1-65535), got \"{v}\"")),
    }
}

/// A port in 1..=65535, or 0 meaning "not set" (as ZooKeeper's `clientPort`).
pub(crate) fn port_or_unset(v: &str) -> Result<Option<u16>, String> {
    match java_parse_int(v) {
        Some(0) => Ok(None),
        Some(n) if (1..=65535).contains(&n) => Ok(Some(n as u16)),
        _ => Err(format!("expected a port number (1-65535), got \"{v}\"")),
    }
}

/// `true` / `false`, case-insensitively (QuorumPeerConfig.parseBoolean).
pub(crate) fn boolean(v: &str) -> Result<bool, String> {
    if v.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if v.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(format!("expected true or false, got \"{v}\""))
    }
}

/// `yes` / `no`, exactly, as ZooKeeper compares `zookeeper.forceSync` and
/// `zookeeper.skipACL` (case-sensitively: `YES` would not mean yes to it, so
/// rzk refuses it rather than guess).
pub(crate) fn yes_no(v: &str) -> Result<bool, String> {
    match v {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(format!("expected yes or no, got \"{v}\"")),
    }
}

/// A system property read with `Integer.getInteger` (decimal, hex or octal).
pub(crate) fn decoded_int(v: &str, min: i32, what: &str) -> Result<i32, String> {
    match java_decode_int(v) {
        Some(n) if n >= min => Ok(n),
        _ => Err(format!("expected {what}, got \"{v}\"")),
    }
}

pub(crate) fn non_empty<'a>(v: &'a str, what: &str) -> Result<&'a str, String> {
    if v.is_empty() {
        Err(format!("expected {what}, got an empty value"))
    } else {
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn java_parse_double_takes_the_decimal_forms() {
        use super::java_parse_double as d;
        assert_eq!(d("0.33"), Ok(0.33));
        assert_eq!(d(" 1e-1 "), Ok(0.1));
        assert_eq!(d("-1"), Ok(-1.0));
        assert_eq!(d("+.5d"), Ok(0.5));
        assert_eq!(d("2F"), Ok(2.0));
        assert_eq!(d("0"), Ok(0.0));
        assert_eq!(d("-Infinity"), Ok(f64::NEG_INFINITY));
        assert!(d("NaN").unwrap().is_nan());
        for bad in ["", "x", "0x1p3", "1,5", ".", "e5", "inf", "nan", "1..2"] {
            assert!(d(bad).is_err(), "{bad}");
        }
    }

    use super::*;

    #[test]
    fn parse_int_like_java() {
        assert_eq!(java_parse_int("42"), Some(42));
        assert_eq!(java_parse_int("+42"), Some(42));
        assert_eq!(java_parse_int("-42"), Some(-42));
        assert_eq!(java_parse_int("2147483647"), Some(i32::MAX));
        assert_eq!(java_parse_int("2147483648"), None);
        assert_eq!(java_parse_int(""), None);
        assert_eq!(java_parse_int("-"), None);
        assert_eq!(java_parse_int("1 2"), None);
        assert_eq!(java_parse_int("0x10"), None);
        assert_eq!(java_parse_long("9223372036854775807"), Some(i64::MAX));
        assert_eq!(java_parse_long("9223372036854775808"), None);
    }

    #[test]
    fn decode_like_java() {
        assert_eq!(java_decode_int("0xfffff"), Some(0xfffff));
        assert_eq!(java_decode_int("0XFF"), Some(255));
        assert_eq!(java_decode_int("#10"), Some(16));
        assert_eq!(java_decode_int("010"), Some(8));
        assert_eq!(java_decode_int("0"), Some(0));
        assert_eq!(java_decode_int("-0x10"), Some(-16));
        assert_eq!(java_decode_int("1048575"), Some(1048575));
        assert_eq!(java_decode_int("09"), None);
        assert_eq!(java_decode_int("0x"), None);
        assert_eq!(java_decode_int("0x-1"), None);
        assert_eq!(java_decode_int("abc"), None);
    }

    #[test]
    fn messages() {
        assert_eq!(positive_int("abc").unwrap_err(), "expected a positive integer, got \"abc\"");
        assert!(positive_int("0").is_err());
        assert_eq!(non_negative_int("0"), Ok(0));
        assert!(port("-1").is_err());
        assert!(port("65536").is_err());
        assert_eq!(port("65535"), Ok(65535));
        assert_eq!(port_or_unset("0"), Ok(None));
        assert_eq!(boolean("TRUE"), Ok(true));
        assert_eq!(boolean("False"), Ok(false));
        assert!(boolean("yes").is_err());
        assert_eq!(yes_no("no"), Ok(false));
        assert!(yes_no("YES").is_err());
    }
}
