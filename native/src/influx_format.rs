//! Line protocol as Telegraf's influx serializer writes it: escaping and number forms.
//!
//! Measurement: tab/newline/form feed/CR are written as `\t` `\n` `\f` `\r`, comma and space
//! escaped. Tag keys, tag values and field keys: the same, and `=` escaped too; tag keys and
//! values also lose trailing backslashes (which would escape the separator after them), as
//! Telegraf does. String values: backslash and double quote escaped. Floats in the shortest
//! decimal that reads back as the same value, never in exponent form.

/// Appends `text` escaped as a measurement name.
pub fn push_measurement(out: &mut Vec<u8>, text: &str) {
    push_escaped(out, text, false);
}

/// Appends `text` escaped as a tag key or tag value, trailing backslashes dropped.
pub fn push_tag_text(out: &mut Vec<u8>, text: &str) {
    push_escaped(out, text.trim_end_matches('\\'), true);
}

/// Appends `text` escaped as a field key.
pub fn push_field_key(out: &mut Vec<u8>, text: &str) {
    push_escaped(out, text, true);
}

/// Whether a tag key or value writes as nothing (empty, or only backslashes): such a tag is
/// left out.
pub fn tag_text_is_empty(text: &str) -> bool {
    text.trim_end_matches('\\').is_empty()
}

/// Bytes escaped in names (`ESCAPED_IN_NAMES`) and in keys (both flags).
const ESCAPED_IN_NAMES: u8 = 1;
const ESCAPED_IN_KEYS: u8 = 2;

static ESCAPES: [u8; 256] = escape_classes();

const fn escape_classes() -> [u8; 256] {
    let mut classes = [0u8; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        if matches!(b, b',' | b' ' | b'\t' | b'\n' | 0x0c | b'\r') {
            classes[byte] = ESCAPED_IN_NAMES | ESCAPED_IN_KEYS;
        } else if b == b'=' {
            classes[byte] = ESCAPED_IN_KEYS;
        }
        byte += 1;
    }
    classes
}

fn push_escaped(out: &mut Vec<u8>, text: &str, equals_too: bool) {
    let bytes = text.as_bytes();
    let flag = if equals_too {
        ESCAPED_IN_KEYS
    } else {
        ESCAPED_IN_NAMES
    };
    let needs = bytes.iter().any(|&byte| ESCAPES[byte as usize] & flag != 0);
    if !needs {
        out.extend_from_slice(bytes);
        return;
    }
    for &byte in bytes {
        match byte {
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b',' | b' ' => {
                out.push(b'\\');
                out.push(byte);
            }
            b'=' if equals_too => out.extend_from_slice(b"\\="),
            _ => out.push(byte),
        }
    }
}

/// Appends a string field value with its quotes.
pub fn push_string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    for &byte in text.as_bytes() {
        if byte == b'\\' || byte == b'"' {
            out.push(b'\\');
        }
        out.push(byte);
    }
    out.push(b'"');
}

/// Appends a finite float in the shortest decimal form that reads back as `value`, without
/// an exponent (`1e20` → `100000000000000000000`, `1.5e-7` → `0.00000015`, `3.0` → `3`).
pub fn push_float(out: &mut Vec<u8>, value: f64) {
    let mut buffer = zmij::Buffer::new();
    let shortest = buffer.format_finite(value).as_bytes();
    // An exponent is at most `e-324`: only the last five bytes can hold its `e`.
    let exponent_room = &shortest[shortest.len().saturating_sub(5)..];
    if !exponent_room.contains(&b'e') {
        // zmij writes most values as the line form wants them, but integral ones as "3.0".
        out.extend_from_slice(shortest.strip_suffix(b".0").unwrap_or(shortest));
        return;
    }
    Decimal::of(shortest).push_positional(out);
}

/// The shortest decimal digits that read back to a finite float (no leading or trailing
/// zeros; none for zero), its sign, and where the point sits: after `point` digits, so 0.05
/// is "5" at -1 and 1200 is "12" at 4.
pub struct Decimal {
    pub negative: bool,
    digits: [u8; 32],
    length: usize,
    pub point: i32,
}

impl Decimal {
    pub fn of_float(value: f64) -> Decimal {
        let mut buffer = zmij::Buffer::new();
        Decimal::of(buffer.format_finite(value).as_bytes())
    }

    /// From zmij's text: `-`, digits with a point, and maybe `e`, a sign and an exponent.
    fn of(shortest: &[u8]) -> Decimal {
        let (negative, unsigned) = match shortest.strip_prefix(b"-") {
            Some(rest) => (true, rest),
            None => (false, shortest),
        };
        let (mantissa, exponent) = match unsigned.iter().position(|&byte| byte == b'e') {
            Some(index) => {
                let exponent =
                    std::str::from_utf8(&unsigned[index + 1..]).expect("zmij writes ASCII");
                (
                    &unsigned[..index],
                    exponent.parse::<i32>().expect("zmij writes an integer"),
                )
            }
            None => (unsigned, 0),
        };
        let mut decimal = Decimal {
            negative,
            digits: [0; 32],
            length: 0,
            point: exponent,
        };
        let mut before_point = true;
        for &byte in mantissa {
            if byte == b'.' {
                before_point = false;
                continue;
            }
            if byte == b'0' && decimal.length == 0 {
                // A leading zero: the digits start one place further right.
                if !before_point {
                    decimal.point -= 1;
                }
                continue;
            }
            if before_point {
                decimal.point += 1;
            }
            decimal.digits[decimal.length] = byte;
            decimal.length += 1;
        }
        while decimal.length > 0 && decimal.digits[decimal.length - 1] == b'0' {
            decimal.length -= 1;
        }
        decimal
    }

    pub fn digits(&self) -> &[u8] {
        &self.digits[..self.length]
    }

    /// Appends the sign and the digits with the point where it belongs, never an exponent
    /// (zero is "0"); true when the number is integral, so no point was written.
    pub fn push_positional(&self, out: &mut Vec<u8>) -> bool {
        let (digits, point) = (self.digits(), self.point);
        if self.negative {
            out.push(b'-');
        }
        if digits.is_empty() {
            out.push(b'0');
            true
        } else if point <= 0 {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', point.unsigned_abs() as usize));
            out.extend_from_slice(digits);
            false
        } else if point as usize >= digits.len() {
            out.extend_from_slice(digits);
            out.extend(std::iter::repeat_n(b'0', point as usize - digits.len()));
            true
        } else {
            out.extend_from_slice(&digits[..point as usize]);
            out.push(b'.');
            out.extend_from_slice(&digits[point as usize..]);
            false
        }
    }
}

pub fn push_int(out: &mut Vec<u8>, value: i64) {
    let mut buffer = itoa::Buffer::new();
    out.extend_from_slice(buffer.format(value).as_bytes());
}

pub fn push_uint(out: &mut Vec<u8>, value: u64) {
    let mut buffer = itoa::Buffer::new();
    out.extend_from_slice(buffer.format(value).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float(value: f64) -> String {
        let mut out = Vec::new();
        push_float(&mut out, value);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_are_shortest_and_positional() {
        assert_eq!(float(3.0), "3");
        assert_eq!(float(-0.0), "-0");
        assert_eq!(float(0.1), "0.1");
        assert_eq!(float(1e20), "100000000000000000000");
        assert_eq!(float(1.5e-7), "0.00000015");
        assert_eq!(float(-1.2345e-10), "-0.00000000012345");
        assert_eq!(float(1.2345678901234566e25), "12345678901234566000000000");
        assert_eq!(float(123.456), "123.456");
        assert_eq!(float(f64::MAX).len(), 309);
        assert_eq!(float(5e-324), format!("0.{}5", "0".repeat(323)));
    }

    #[test]
    fn keys_escape_separators_and_controls() {
        let mut out = Vec::new();
        push_tag_text(&mut out, "a b,c=d\te\\");
        assert_eq!(out, b"a\\ b\\,c\\=d\\te");
        let mut field_key = Vec::new();
        push_field_key(&mut field_key, "k\\");
        assert_eq!(field_key, b"k\\");
        let mut name = Vec::new();
        push_measurement(&mut name, "a=b c");
        assert_eq!(name, b"a=b\\ c");
    }

    #[test]
    fn strings_escape_quotes_and_backslashes() {
        let mut out = Vec::new();
        push_string(&mut out, "a\"b\\c");
        assert_eq!(out, b"\"a\\\"b\\\\c\"");
    }
}
