//! InfluxDB line protocol, read with the grammar of Telegraf's influx parser.
//!
//! The reader is a byte scanner: one pass, no allocation for names, keys and values that hold
//! no escape (they borrow the input). Every accepted line becomes a [`Line`]; a line that breaks
//! the grammar becomes a [`LineError`] at the byte where it stopped making sense, and reading
//! goes on at the next line, so one bad line costs only itself.

use std::borrow::Cow;

/// A field value as the grammar types it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Float(f64),
    Int(i64),
    UInt(u64),
    Bool(bool),
    Str(Cow<'a, [u8]>),
}

/// A tag's key and value.
pub type Tag<'a> = (Cow<'a, [u8]>, Cow<'a, [u8]>);

/// One metric line: tags sorted by key (a repeated key keeps its last value), fields in the
/// order of their first appearance (a repeated key keeps its last value there). Texts are
/// bytes, UTF-8 once the line is accepted (the reader checks it).
#[derive(Debug, Clone, PartialEq)]
pub struct Line<'a> {
    pub name: Cow<'a, [u8]>,
    pub tags: Vec<Tag<'a>>,
    pub fields: Vec<(Cow<'a, [u8]>, Value<'a>)>,
    /// Nanoseconds since the epoch; None when the line carries no timestamp.
    pub time_ns: Option<i64>,
    /// The raw text of measurement and tag set, which lines of one series share.
    pub series_text: &'a [u8],
}

/// Where and why a line was refused. `offset` is a byte index into the data; `line` is 1-based.
#[derive(Debug, Clone, PartialEq)]
pub struct LineError {
    pub offset: usize,
    pub line: usize,
    pub line_start: usize,
    pub message: String,
}

/// What one read of a text yields, in order of appearance.
pub enum Item<'a> {
    Metric(Line<'a>),
    Error(LineError),
}

/// Whitespace between sections: space, tab, vertical tab, form feed.
const WHITESPACE: u8 = 1;
/// Bytes that end a line or never appear in names: tab, newline, vertical tab, form feed, CR.
const CONTROL: u8 = 2;
/// Bytes that end a measurement or a field value: the controls, space and comma.
const NAME_STOP: u8 = 4;
/// Bytes that end a tag key, tag value or field key: a name's, and the equals sign.
const KEY_STOP: u8 = 8;
const BACKSLASH: u8 = 16;

/// The classes of each byte value, looked up once per byte by the scanning loops.
static CLASSES: [u8; 256] = byte_classes();

const fn byte_classes() -> [u8; 256] {
    let mut classes = [0u8; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        let mut class = 0;
        if matches!(b, b' ' | b'\t' | 0x0b | 0x0c) {
            class |= WHITESPACE;
        }
        if matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
            class |= CONTROL | NAME_STOP | KEY_STOP;
        }
        if matches!(b, b' ' | b',') {
            class |= NAME_STOP | KEY_STOP;
        }
        if b == b'=' {
            class |= KEY_STOP;
        }
        if b == b'\\' {
            class |= BACKSLASH;
        }
        classes[byte] = class;
        byte += 1;
    }
    classes
}

fn is_ws(byte: u8) -> bool {
    CLASSES[byte as usize] & WHITESPACE != 0
}

fn is_control_stop(byte: u8) -> bool {
    CLASSES[byte as usize] & CONTROL != 0
}

struct Refusal {
    offset: usize,
    message: String,
}

fn refuse<T>(offset: usize, message: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal {
        offset,
        message: message.into(),
    })
}

/// Reads `data` line by line. `scale` multiplies timestamps (1 for nanoseconds, 10^9 for
/// seconds); a timestamp whose nanoseconds do not fit 64 bits refuses its line.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    line: usize,
    line_start: usize,
    scale: i64,
    /// Whether the whole data is known to be UTF-8 (else each line is checked).
    utf8_checked: bool,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8], scale: i64) -> Self {
        let utf8_checked = std::str::from_utf8(data).is_ok();
        Reader {
            data,
            pos: 0,
            line: 1,
            line_start: 0,
            scale,
            utf8_checked,
        }
    }

    /// The text is known to be UTF-8 already (it came from a Python str).
    pub fn new_utf8(data: &'a str, scale: i64) -> Self {
        Reader {
            data: data.as_bytes(),
            pos: 0,
            line: 1,
            line_start: 0,
            scale,
            utf8_checked: true,
        }
    }

    fn at(&self, pos: usize) -> Option<u8> {
        self.data.get(pos).copied()
    }

    fn newline(&mut self, after: usize) {
        self.line += 1;
        self.line_start = after;
    }

    /// Skips blank lines, comment lines and whitespace; false at the end of the data.
    fn align(&mut self) -> bool {
        loop {
            while self.at(self.pos).is_some_and(is_ws) {
                self.pos += 1;
            }
            match self.at(self.pos) {
                None => return false,
                Some(b'\n') => {
                    self.pos += 1;
                    self.newline(self.pos);
                }
                Some(b'\r') if self.at(self.pos + 1) == Some(b'\n') => {
                    self.pos += 2;
                    self.newline(self.pos);
                }
                // As in Telegraf, a carriage return that is the last byte ends the data.
                Some(b'\r') if self.pos + 1 == self.data.len() => {
                    self.pos += 1;
                    return false;
                }
                Some(b'#') => match memchr(b'\n', &self.data[self.pos..]) {
                    Some(index) => {
                        self.pos += index + 1;
                        self.newline(self.pos);
                    }
                    None => {
                        self.pos = self.data.len();
                        return false;
                    }
                },
                Some(_) => return true,
            }
        }
    }

    /// Moves past the rest of a refused line (to just after its next newline).
    fn discard_line(&mut self, from: usize) {
        match memchr(b'\n', &self.data[from.min(self.data.len())..]) {
            Some(index) => {
                self.pos = from + index + 1;
                self.newline(self.pos);
            }
            None => self.pos = self.data.len(),
        }
    }

    fn measurement(&self, start: usize) -> Result<(Cow<'a, [u8]>, usize), Refusal> {
        let data = self.data;
        let mut pos = start;
        if data.get(pos) == Some(&b'#') {
            return refuse(pos, "expected measurement name");
        }
        let mut escaped = false;
        while let Some(&byte) = data.get(pos) {
            let class = CLASSES[byte as usize];
            if class & (NAME_STOP | BACKSLASH) == 0 {
                pos += 1;
            } else if class & BACKSLASH != 0 {
                match data.get(pos + 1) {
                    Some(&next) if !is_control_stop(next) => {
                        escaped |= next == b',' || next == b' ';
                        pos += 2;
                    }
                    _ => break,
                }
            } else {
                break;
            }
        }
        if pos == start {
            return refuse(start, "expected measurement name");
        }
        let raw = &data[start..pos];
        let name = if escaped {
            Cow::Owned(replace_pairs(raw, b", "))
        } else {
            Cow::Borrowed(raw)
        };
        Ok((name, pos))
    }

    /// A tag key, tag value or field key: text up to an unescaped space, comma, equals sign
    /// or control byte. A backslash makes the next byte part of the text; in tags (as in
    /// Telegraf) a second backslash is not taken with it but starts over, in field keys the
    /// two are a pair. The text is unescaped only where it holds a space, comma or equals.
    fn key_or_tag_text(&self, start: usize, in_tags: bool) -> (Cow<'a, [u8]>, usize) {
        let data = self.data;
        let mut pos = start;
        let mut special = false;
        while let Some(&byte) = data.get(pos) {
            let class = CLASSES[byte as usize];
            if class & (KEY_STOP | BACKSLASH) == 0 {
                pos += 1;
            } else if class & BACKSLASH != 0 {
                match data.get(pos + 1) {
                    Some(b'\\') if in_tags => pos += 1,
                    Some(&next) if !is_control_stop(next) => {
                        special |= matches!(next, b' ' | b',' | b'=');
                        pos += 2;
                    }
                    _ => break,
                }
            } else {
                break;
            }
        }
        (key_text(&data[start..pos], special), pos)
    }

    /// A quoted string starting at the quote; may run over newlines.
    fn string(&mut self, quote: usize) -> Result<(Cow<'a, [u8]>, usize), Refusal> {
        let data = self.data;
        let mut pos = quote + 1;
        let mut escaped = false;
        loop {
            match data.get(pos) {
                None => return refuse(quote, "unterminated string (no closing '\"')"),
                Some(b'"') => break,
                Some(b'\\') => match data.get(pos + 1) {
                    Some(b'\\') | Some(b'"') => {
                        escaped = true;
                        pos += 2;
                    }
                    _ => return refuse(pos, "a backslash in a string escapes only '\\' or '\"'"),
                },
                Some(b'\n') => {
                    pos += 1;
                    self.newline(pos);
                }
                Some(_) => pos += 1,
            }
        }
        let raw = &data[quote + 1..pos];
        let value = if escaped {
            Cow::Owned(unescape_string(raw))
        } else {
            Cow::Borrowed(raw)
        };
        Ok((value, pos + 1))
    }

    fn field_value(&mut self, start: usize) -> Result<(Value<'a>, usize), Refusal> {
        let data = self.data;
        if data.get(start) == Some(&b'"') {
            let (value, end) = self.string(start)?;
            return Ok((Value::Str(value), end));
        }
        let end = data[start..]
            .iter()
            .position(|&byte| CLASSES[byte as usize] & NAME_STOP != 0)
            .map_or(data.len(), |length| start + length);
        let token = &data[start..end];
        if token.is_empty() {
            return refuse(start, "expected field value");
        }
        match number_or_bool(token) {
            Ok(value) => Ok((value, end)),
            Err(message) => refuse(start, message),
        }
    }

    fn timestamp(&self, start: usize) -> Result<(i64, usize), Refusal> {
        let data = self.data;
        let mut end = start;
        if data.get(end) == Some(&b'-') {
            end += 1;
        }
        let digits_start = end;
        while data.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        let digits = end - digits_start;
        let stops_cleanly = match data.get(end) {
            None => true,
            Some(&byte) => is_ws(byte) || byte == b'\n' || byte == b'\r',
        };
        if digits == 0 || digits > 19 || !stops_cleanly {
            let found = &data[start..end.max(start + 1).min(data.len())];
            return refuse(
                start,
                format!(
                    "expected timestamp (an integer of at most 19 digits), found {}",
                    shown(found)
                ),
            );
        }
        // At most 19 digits and ASCII: the text is valid.
        let stamp: i64 = match std::str::from_utf8(&data[start..end]).unwrap().parse() {
            Ok(stamp) => stamp,
            Err(_) => return refuse(start, "timestamp out of the 64-bit range"),
        };
        match stamp.checked_mul(self.scale) {
            Some(ns) => Ok((ns, end)),
            None => refuse(
                start,
                "timestamp out of range: 64-bit nanoseconds count from 1677-09-21 to 2262-04-11 UTC",
            ),
        }
    }

    /// One metric line from `start` (its first non-blank byte); the index just past it.
    fn metric(&mut self, start: usize) -> Result<(Line<'a>, usize), Refusal> {
        let data = self.data;
        let (name, mut pos) = self.measurement(start)?;
        let mut tags: Vec<Tag<'a>> = Vec::with_capacity(4);
        while data.get(pos) == Some(&b',') {
            let (key, after_key) = self.key_or_tag_text(pos + 1, true);
            if key.is_empty() {
                return refuse(after_key, "expected tag key");
            }
            if data.get(after_key) != Some(&b'=') {
                return refuse(after_key, "expected '=' after tag key");
            }
            let (value, after_value) = self.key_or_tag_text(after_key + 1, true);
            if value.is_empty() {
                return refuse(after_value, "expected tag value");
            }
            add_tag(&mut tags, key, value);
            pos = after_value;
        }
        let series_text = &data[start..pos];
        if !data.get(pos).copied().is_some_and(is_ws) {
            return match data.get(pos) {
                Some(b'=') => refuse(pos, "unescaped '=' in tag value (write \\=)"),
                Some(b'\\') => refuse(pos, "a backslash before a tab, CR or line end"),
                _ => refuse(pos, "expected a space and the fields"),
            };
        }
        while data.get(pos).copied().is_some_and(is_ws) {
            pos += 1;
        }
        let mut fields: Vec<(Cow<'a, [u8]>, Value<'a>)> = Vec::with_capacity(16);
        loop {
            let (key, after_key) = self.key_or_tag_text(pos, false);
            if key.is_empty() {
                return refuse(after_key, "expected field key");
            }
            if data.get(after_key) != Some(&b'=') {
                return refuse(after_key, "expected '=' after field key");
            }
            let (value, after_value) = self.field_value(after_key + 1)?;
            add_field(&mut fields, key, value);
            pos = after_value;
            if data.get(pos) == Some(&b',') {
                pos += 1;
            } else {
                break;
            }
        }
        let mut time_ns = None;
        if data.get(pos).copied().is_some_and(is_ws) {
            while data.get(pos).copied().is_some_and(is_ws) {
                pos += 1;
            }
            match data.get(pos) {
                None | Some(b'\n') => {}
                Some(b'\r') if ends_line_at_cr(data, pos) => {}
                Some(_) => {
                    let (stamp, after) = self.timestamp(pos)?;
                    time_ns = Some(stamp);
                    pos = after;
                    while data.get(pos).copied().is_some_and(is_ws) {
                        pos += 1;
                    }
                }
            }
        }
        let end = match data.get(pos) {
            None => pos,
            Some(b'\n') => pos + 1,
            Some(b'\r') if data.get(pos + 1) == Some(&b'\n') => pos + 2,
            Some(b'\r') if pos + 1 == data.len() => pos + 1,
            Some(b'\r') => return refuse(pos, "a carriage return inside a line"),
            Some(b'\\') => return refuse(pos, "a backslash before a tab, CR or line end"),
            Some(_) => return refuse(pos, "expected end of line"),
        };
        let line = Line {
            name,
            tags,
            fields,
            time_ns,
            series_text,
        };
        Ok((line, end))
    }

    /// Where the first byte that is not UTF-8 lies in `start..end`, if any.
    fn invalid_utf8(&self, start: usize, end: usize) -> Option<usize> {
        if self.utf8_checked {
            return None;
        }
        match std::str::from_utf8(&self.data[start..end]) {
            Ok(_) => None,
            Err(error) => Some(start + error.valid_up_to()),
        }
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Item<'a>> {
        if !self.align() {
            return None;
        }
        let start = self.pos;
        let first_line = self.line;
        let first_line_start = self.line_start;
        match self.metric(start) {
            Ok((line, end)) => {
                // A newline ends the metric: it counts once the line is read.
                let ends_with_newline = end > start && self.data[end - 1] == b'\n';
                if let Some(bad) = self.invalid_utf8(start, end) {
                    let error = self.error_at(bad, first_line, first_line_start, "not UTF-8 text");
                    self.pos = end;
                    if ends_with_newline {
                        self.newline(end);
                    }
                    return Some(Item::Error(error));
                }
                self.pos = end;
                if ends_with_newline {
                    self.newline(end);
                }
                Some(Item::Metric(line))
            }
            Err(refusal) => {
                let error = self.error_at(
                    refusal.offset,
                    first_line,
                    first_line_start,
                    &refusal.message,
                );
                // A string may have counted newlines past the refusal: count from it again.
                self.line = error.line;
                self.line_start = error.line_start;
                self.discard_line(refusal.offset);
                Some(Item::Error(error))
            }
        }
    }
}

impl<'a> Reader<'a> {
    /// The error at byte `offset`: its line is counted from the line where the metric began
    /// (a string may have run over newlines before it).
    fn error_at(
        &self,
        offset: usize,
        first_line: usize,
        first_line_start: usize,
        message: &str,
    ) -> LineError {
        let offset = offset.min(self.data.len());
        let between = &self.data[first_line_start..offset];
        let newlines = between.iter().filter(|&&byte| byte == b'\n').count();
        let line_start = match between.iter().rposition(|&byte| byte == b'\n') {
            Some(index) => first_line_start + index + 1,
            None => first_line_start,
        };
        LineError {
            offset,
            line: first_line + newlines,
            line_start,
            message: message.to_string(),
        }
    }
}

/// Whether the carriage return at `pos` ends a line: before a newline, or as the last byte
/// of the data (Telegraf takes both as a line end).
fn ends_line_at_cr(data: &[u8], pos: usize) -> bool {
    data.get(pos + 1) == Some(&b'\n') || pos + 1 == data.len()
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&byte| byte == needle)
}

/// Telegraf's unescaping of names: each `\X` with X in `chars` becomes X, scanning left to
/// right; any other byte (a lone backslash included) stays.
fn replace_pairs(raw: &[u8], chars: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut index = 0;
    while index < raw.len() {
        if raw[index] == b'\\' && index + 1 < raw.len() && chars.contains(&raw[index + 1]) {
            out.push(raw[index + 1]);
            index += 2;
        } else {
            out.push(raw[index]);
            index += 1;
        }
    }
    out
}

/// Tag keys, tag values and field keys: unescaped (`\,` `\"` `\ ` `\=`) only when the raw
/// text holds a space, comma or equals sign, as Telegraf does.
fn key_text(raw: &[u8], special: bool) -> Cow<'_, [u8]> {
    if special {
        Cow::Owned(replace_pairs(raw, b",\" ="))
    } else {
        Cow::Borrowed(raw)
    }
}

fn unescape_string(raw: &[u8]) -> Vec<u8> {
    replace_pairs(raw, b"\\\"")
}

fn add_tag<'a>(tags: &mut Vec<Tag<'a>>, key: Cow<'a, [u8]>, value: Cow<'a, [u8]>) {
    match tags.binary_search_by(|(existing, _)| existing.as_ref().cmp(key.as_ref())) {
        Ok(index) => tags[index].1 = value,
        Err(index) => tags.insert(index, (key, value)),
    }
}

fn add_field<'a>(
    fields: &mut Vec<(Cow<'a, [u8]>, Value<'a>)>,
    key: Cow<'a, [u8]>,
    value: Value<'a>,
) {
    if let Some(slot) = fields.iter_mut().find(|(existing, _)| *existing == key) {
        slot.1 = value;
    } else {
        fields.push((key, value));
    }
}

const BOOLEANS: [(&[u8], bool); 10] = [
    (b"t", true),
    (b"T", true),
    (b"true", true),
    (b"True", true),
    (b"TRUE", true),
    (b"f", false),
    (b"F", false),
    (b"false", false),
    (b"False", false),
    (b"FALSE", false),
];

/// Digits without a leading zero (a lone 0 is fine).
fn plain_digits(digits: &[u8]) -> bool {
    !digits.is_empty()
        && digits.iter().all(u8::is_ascii_digit)
        && (digits[0] != b'0' || digits.len() == 1)
}

/// Telegraf's float grammar: `-`? (digits (`.` digits?)? | `.` digits) ([eE] [+-]? digits)?
fn float_shape(token: &[u8]) -> bool {
    let mut index = usize::from(token.first() == Some(&b'-'));
    let integer_start = index;
    while token.get(index).is_some_and(u8::is_ascii_digit) {
        index += 1;
    }
    let integer_digits = index - integer_start;
    let mut fraction_digits = 0;
    if token.get(index) == Some(&b'.') {
        index += 1;
        let fraction_start = index;
        while token.get(index).is_some_and(u8::is_ascii_digit) {
            index += 1;
        }
        fraction_digits = index - fraction_start;
    }
    if integer_digits == 0 && fraction_digits == 0 {
        return false;
    }
    if matches!(token.get(index), Some(b'e') | Some(b'E')) {
        index += 1;
        if matches!(token.get(index), Some(b'+') | Some(b'-')) {
            index += 1;
        }
        let exponent_start = index;
        while token.get(index).is_some_and(u8::is_ascii_digit) {
            index += 1;
        }
        if index == exponent_start {
            return false;
        }
    }
    index == token.len()
}

fn number_or_bool(token: &[u8]) -> Result<Value<'static>, String> {
    let last = token[token.len() - 1];
    if last == b'i' {
        let body = &token[..token.len() - 1];
        let digits = body.strip_prefix(b"-").unwrap_or(body);
        if !plain_digits(digits) {
            return Err(invalid_value(token));
        }
        // ASCII digits with an optional minus: valid UTF-8.
        return std::str::from_utf8(body)
            .unwrap()
            .parse::<i64>()
            .map(Value::Int)
            .map_err(|_| {
                format!(
                    "invalid field value {} (out of the 64-bit integer range)",
                    shown(token)
                )
            });
    }
    if last == b'u' {
        let digits = &token[..token.len() - 1];
        if !plain_digits(digits) {
            return Err(invalid_value(token));
        }
        return std::str::from_utf8(digits)
            .unwrap()
            .parse::<u64>()
            .map(Value::UInt)
            .map_err(|_| {
                format!(
                    "invalid field value {} (out of the 64-bit unsigned integer range)",
                    shown(token)
                )
            });
    }
    if let Some((_, value)) = BOOLEANS.iter().find(|(word, _)| *word == token) {
        return Ok(Value::Bool(*value));
    }
    if !float_shape(token) {
        return Err(invalid_value(token));
    }
    // SAFETY: float_shape accepted only ASCII digits, signs, '.', 'e' and 'E'.
    let text = unsafe { std::str::from_utf8_unchecked(token) };
    let number: f64 = text.parse().map_err(|_| invalid_value(token))?;
    if number.is_infinite() {
        return Err(format!(
            "invalid field value {} (out of the 64-bit float range)",
            shown(token)
        ));
    }
    Ok(Value::Float(number))
}

const SHOWN_VALUE_BYTES: usize = 40;

/// A value as error messages show it, in single quotes: cut short if long.
fn shown(token: &[u8]) -> String {
    let text = String::from_utf8_lossy(token);
    if text.chars().count() <= SHOWN_VALUE_BYTES {
        return format!("'{text}'");
    }
    let start: String = text.chars().take(SHOWN_VALUE_BYTES).collect();
    format!("'{start}…' ({} bytes)", token.len())
}

fn invalid_value(token: &[u8]) -> String {
    let last = token[token.len() - 1];
    let hint = if last == b'i' {
        "not a 64-bit integer: digits without leading zeros"
    } else if last == b'u' {
        "not a 64-bit unsigned integer: digits without leading zeros"
    } else if token[0].is_ascii_digit() || token[0] == b'-' || token[0] == b'.' {
        "not a number"
    } else {
        "expected a number, 1i, 1u, true/false or a \"string\""
    };
    format!("invalid field value {} ({hint})", shown(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(text: &str) -> Cow<'_, [u8]> {
        Cow::Borrowed(text.as_bytes())
    }

    fn read(text: &str) -> Vec<Result<Line<'_>, LineError>> {
        Reader::new(text.as_bytes(), 1)
            .map(|item| match item {
                Item::Metric(line) => Ok(line),
                Item::Error(error) => Err(error),
            })
            .collect()
    }

    fn one(text: &str) -> Line<'_> {
        let mut all = read(text);
        assert_eq!(all.len(), 1, "{text:?}");
        all.remove(0)
            .unwrap_or_else(|error| panic!("{text:?}: {error:?}"))
    }

    fn refused(text: &str) -> LineError {
        let mut all = read(text);
        assert_eq!(all.len(), 1, "{text:?}");
        all.remove(0).expect_err(text)
    }

    #[test]
    fn reads_measurement_tags_fields_and_timestamp() {
        let line =
            one("cpu,host=a,cpu=cpu0 usage=1.5,n=3i,u=4u,ok=true,msg=\"hi\" 1700000000000000000\n");
        assert_eq!(line.name, b("cpu"));
        assert_eq!(line.tags, vec![(b("cpu"), b("cpu0")), (b("host"), b("a"))]);
        assert_eq!(
            line.fields,
            vec![
                (b("usage"), Value::Float(1.5)),
                (b("n"), Value::Int(3)),
                (b("u"), Value::UInt(4)),
                (b("ok"), Value::Bool(true)),
                (b("msg"), Value::Str(b("hi"))),
            ]
        );
        assert_eq!(line.time_ns, Some(1_700_000_000_000_000_000));
    }

    #[test]
    fn an_even_run_of_backslashes_before_a_comma_ends_the_measurement() {
        let line = one("cpu\\\\,host=a value=1i 1");
        assert_eq!(line.name, b("cpu\\\\"));
        assert_eq!(line.tags, vec![(b("host"), b("a"))]);
    }

    #[test]
    fn a_backslash_in_a_tag_escapes_the_next_byte_even_after_a_backslash() {
        let line = one("cpu,a\\\\=b=c v=1");
        assert_eq!(line.tags, vec![(b("a\\=b"), b("c"))]);
    }

    #[test]
    fn field_keys_take_double_backslashes_as_a_pair() {
        let line = one("cpu a\\\\=1i 1");
        assert_eq!(line.fields, vec![(b("a\\\\"), Value::Int(1))]);
    }

    #[test]
    fn escaped_quote_in_a_key_is_unescaped_only_beside_another_escape() {
        assert_eq!(one("m k\\\"=1").fields[0].0, b("k\\\""));
        assert_eq!(one("m k\\\"\\ x=1").fields[0].0, b("k\" x"));
    }

    #[test]
    fn a_string_refuses_a_backslash_before_other_characters() {
        refused("m s=\"a\\nb\"");
        assert_eq!(
            one("m s=\"a\\\\b\\\"c\"").fields[0].1,
            Value::Str(b("a\\b\"c"))
        );
    }

    #[test]
    fn a_string_may_span_lines_and_counts_them() {
        let all = read("m s=\"a\nb\" 1\nbad\n");
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].as_ref().unwrap().fields[0].1, Value::Str(b("a\nb")));
        assert_eq!(all[1].as_ref().unwrap_err().line, 3);
    }

    #[test]
    fn a_bare_carriage_return_refuses_the_line() {
        let error = refused("m v=1 1\rm v=2 2");
        assert_eq!(error.offset, 7);
    }

    #[test]
    fn a_carriage_return_as_the_last_byte_ends_the_line() {
        for text in [
            "m f=1i\r",
            "m f=1i 1\r",
            "m f=1i \t\r",
            "m s=\"a\"\r",
            "m f=1i\n\r",
        ] {
            let all = read(text);
            assert_eq!(all.len(), 1, "{text:?}");
            assert!(all[0].is_ok(), "{text:?}");
        }
        for text in ["\r", " \r", "#c\n\r"] {
            assert!(read(text).is_empty(), "{text:?}");
        }
        for text in [
            "m f=1i\r\r",
            "m,t=v\r",
            "m\r",
            "m f=1i\rm g=2i",
            "m f=1i\r \n",
        ] {
            assert!(read(text).iter().all(|item| item.is_err()), "{text:?}");
        }
    }

    #[test]
    fn crlf_ends_a_line() {
        assert_eq!(read("m v=1 1\r\nm v=2 2\r\n").len(), 2);
    }

    #[test]
    fn huge_integers_are_refused_not_fatal() {
        let digits = "9".repeat(5000);
        let error = refused(&format!("m v={digits}i 1"));
        assert!(
            error.message.contains("64-bit integer"),
            "{}",
            error.message
        );
        assert!(error.message.len() < 200);
    }

    #[test]
    fn a_backslash_before_a_tab_is_refused() {
        refused("cpu\\\tv=1");
        refused("cpu,a=b\\\tv=1");
    }

    #[test]
    fn numbers_follow_telegraf_grammar() {
        for good in [
            "1", "-1.5", ".5", "1.", "1e5", "1.5E-7", "007", "-0", "1.e5",
        ] {
            assert!(
                matches!(one(&format!("m v={good}")).fields[0].1, Value::Float(_)),
                "{good}"
            );
        }
        for bad in [
            "+1", "1_0", "nan", "inf", "1e", ".", "-", "01i", "-01i", "-1u", "1.5i", "0x10",
        ] {
            refused(&format!("m v={bad}"));
        }
        assert_eq!(one("m v=-0i").fields[0].1, Value::Int(0));
        assert_eq!(one("m v=0u").fields[0].1, Value::UInt(0));
        refused("m v=1e400");
        refused("m v=18446744073709551616u");
        refused("m v=9223372036854775808i");
    }

    #[test]
    fn timestamps_are_checked_for_range_after_scaling() {
        let mut reader = Reader::new(b"m v=1 9300000000", 1_000_000_000);
        assert!(matches!(reader.next(), Some(Item::Error(_))));
        refused("m v=1 12345678901234567890");
        assert_eq!(one("m v=1 -5").time_ns, Some(-5));
    }

    #[test]
    fn comments_blank_lines_and_leading_whitespace_are_skipped() {
        let all = read("# c\n\n  \t m v=1 1  \n#x");
        assert_eq!(all.len(), 1);
        assert!(all[0].is_ok());
    }

    #[test]
    fn an_invalid_utf8_line_is_refused_alone() {
        let data = b"m v=1 1\nm,h=\xff v=2 2\nm v=3 3\n";
        let items: Vec<_> = Reader::new(data, 1).collect();
        assert_eq!(items.len(), 3);
        match &items[1] {
            Item::Error(error) => {
                assert_eq!(error.line, 2);
                assert_eq!(error.offset - error.line_start, 4);
            }
            _ => panic!("expected an error"),
        }
    }

    #[test]
    fn repeated_tag_and_field_keys_keep_the_last_value() {
        let line = one("m,b=1,a=2,b=3 x=1,y=2,x=3");
        assert_eq!(line.tags, vec![(b("a"), b("2")), (b("b"), b("3"))]);
        assert_eq!(
            line.fields,
            vec![(b("x"), Value::Float(3.0)), (b("y"), Value::Float(2.0))]
        );
    }
}
