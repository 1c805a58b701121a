//! JSON text to [`Js`] values exactly as the original service reads a body:
//! Node's UTF-8 decoding, secure-json-parse's BOM strip, `JSON.parse`
//! (numbers are doubles, a duplicate key keeps its first position and its
//! last value, a lone surrogate escape is kept — and becomes U+FFFD, as
//! Node's UTF-8 encoder writes it), then secure-json-parse's refusal of
//! `__proto__` and `constructor.prototype` keys.

use std::fmt::Write as _;

/// A parsed JSON value as JavaScript holds it. Objects keep their keys in
/// insertion order (the order `for … in` and the prototype scan walk).
#[derive(Debug, Clone, PartialEq)]
pub enum Js {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Js>),
    Object(Vec<(String, Js)>),
}

impl Js {
    /// The value of an own property.
    pub fn get(&self, key: &str) -> Option<&Js> {
        match self {
            Js::Object(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// As `serde_json` holds it. Only numbers lose something: a non-finite
    /// number (JSON has none to write) becomes `null`, as
    /// `JSON.stringify` writes it. Decoded bodies hold no numbers at all.
    pub fn into_json(self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Js::Null => Value::Null,
            Js::Bool(b) => Value::Bool(b),
            Js::Number(n) => serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number),
            Js::String(s) => Value::String(s),
            Js::Array(a) => Value::Array(a.into_iter().map(Js::into_json).collect()),
            Js::Object(m) => {
                Value::Object(m.into_iter().map(|(k, v)| (k, v.into_json())).collect())
            }
        }
    }
}

/// Nesting deeper than this is refused (V8 has no small limit; a recursive
/// parser needs one to keep its stack bounded). A body within the size
/// limit that nests this deep is no client's real request.
pub const MAX_DEPTH: usize = 256;

/// Why a body is not JSON; the message is shown to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError(pub String);

/// Decodes raw body bytes the way Fastify's JSON parser does.
pub fn parse_body(text: &str) -> Result<Js, SyntaxError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let value = Parser::new(text).parse_document()?;
    forbid_prototype_keys(&value)?;
    Ok(value)
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Parser<'a> {
        Parser {
            s: text.as_bytes(),
            text,
            pos: 0,
            depth: 0,
        }
    }

    fn parse_document(mut self) -> Result<Js, SyntaxError> {
        self.skip_ws();
        let v = self.value()?;
        self.skip_ws();
        if self.pos < self.s.len() {
            return Err(self.error("Unexpected non-whitespace character after JSON"));
        }
        Ok(v)
    }

    /// Positions count UTF-16 code units, as V8's messages do.
    fn error(&self, what: &str) -> SyntaxError {
        if self.pos >= self.s.len() {
            return SyntaxError("Unexpected end of JSON input".into());
        }
        let at: usize = self.text[..self.pos].chars().map(char::len_utf16).sum();
        SyntaxError(format!("{what} in JSON at position {at}"))
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.pos) {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Result<Js, SyntaxError> {
        match self.s.get(self.pos) {
            None => Err(self.error("Unexpected end of JSON input")),
            Some(b'{') => self.nested(Parser::object),
            Some(b'[') => self.nested(Parser::array),
            Some(b'"') => self.string().map(Js::String),
            Some(b't') => self.literal("true", Js::Bool(true)),
            Some(b'f') => self.literal("false", Js::Bool(false)),
            Some(b'n') => self.literal("null", Js::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("Unexpected token")),
        }
    }

    fn nested(&mut self, f: fn(&mut Self) -> Result<Js, SyntaxError>) -> Result<Js, SyntaxError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error("Nesting too deep"));
        }
        self.depth += 1;
        let v = f(self);
        self.depth -= 1;
        v
    }

    fn literal(&mut self, word: &str, v: Js) -> Result<Js, SyntaxError> {
        for &b in word.as_bytes() {
            if self.s.get(self.pos) != Some(&b) {
                return Err(self.error("Unexpected token"));
            }
            self.pos += 1;
        }
        Ok(v)
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.s.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Js, SyntaxError> {
        let start = self.pos;
        if self.s[self.pos] == b'-' {
            self.pos += 1;
        }
        match self.s.get(self.pos) {
            Some(b'0') => {
                self.pos += 1;
                if self.s.get(self.pos).is_some_and(u8::is_ascii_digit) {
                    return Err(self.error("Unexpected number"));
                }
            }
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.error("No number after minus sign")),
        }
        if self.s.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error("Unterminated fractional number"));
            }
        }
        if let Some(b'e' | b'E') = self.s.get(self.pos) {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.s.get(self.pos) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("Exponent part is missing a number"));
            }
        }
        // Rust's float parsing rounds correctly and overflows to ±inf, as
        // JavaScript's does (`1e400` is Infinity).
        let n = self.text[start..self.pos]
            .parse::<f64>()
            .map_err(|_| self.error("Unexpected number"))?;
        Ok(Js::Number(n))
    }

    fn hex4(&mut self) -> Result<u16, SyntaxError> {
        let h = self
            .s
            .get(self.pos..self.pos + 4)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .ok_or_else(|| self.error("Bad Unicode escape"))?;
        let v = u16::from_str_radix(std::str::from_utf8(h).unwrap_or("x"), 16)
            .map_err(|_| self.error("Bad Unicode escape"))?;
        self.pos += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        self.pos += 1; // the opening quote
        let mut out = String::new();
        loop {
            // Copy the run of plain characters in one go.
            let run = self.pos;
            while let Some(&b) = self.s.get(self.pos) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.text[run..self.pos]);
            match self.s.get(self.pos) {
                None => return Err(self.error("Unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = match self.s.get(self.pos) {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.pos += 1;
                            out.push(self.unicode_escape()?);
                            continue;
                        }
                        _ => return Err(self.error("Bad escaped character")),
                    };
                    self.pos += 1;
                    out.push(c);
                }
                Some(_) => return Err(self.error("Bad control character in string literal")),
            }
        }
    }

    /// After `\u`: one UTF-16 unit, or a surrogate pair written as two
    /// escapes. A lone surrogate is legal in JavaScript; it becomes U+FFFD,
    /// which is what Node writes when such a string is encoded as UTF-8.
    fn unicode_escape(&mut self) -> Result<char, SyntaxError> {
        let hi = self.hex4()?;
        if (0xD800..0xDC00).contains(&hi) && self.s.get(self.pos..self.pos + 2) == Some(b"\\u") {
            let save = self.pos;
            self.pos += 2;
            let lo = self.hex4()?;
            if (0xDC00..0xE000).contains(&lo) {
                let c = 0x10000 + ((u32::from(hi) - 0xD800) << 10) + (u32::from(lo) - 0xDC00);
                return Ok(char::from_u32(c).unwrap_or('\u{fffd}'));
            }
            self.pos = save; // not a pair: the second escape stands alone
        }
        Ok(char::from_u32(u32::from(hi)).unwrap_or('\u{fffd}'))
    }

    fn array(&mut self) -> Result<Js, SyntaxError> {
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.s.get(self.pos) == Some(&b']') {
            self.pos += 1;
            return Ok(Js::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value()?);
            self.skip_ws();
            match self.s.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Js::Array(items));
                }
                _ => return Err(self.error("Expected ',' or ']' after array element")),
            }
        }
    }

    fn object(&mut self) -> Result<Js, SyntaxError> {
        self.pos += 1;
        let mut members: Vec<(String, Js)> = Vec::new();
        self.skip_ws();
        if self.s.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            return Ok(Js::Object(members));
        }
        loop {
            self.skip_ws();
            if self.s.get(self.pos) != Some(&b'"') {
                return Err(self.error("Expected double-quoted property name"));
            }
            let key = self.string()?;
            self.skip_ws();
            if self.s.get(self.pos) != Some(&b':') {
                return Err(self.error("Expected ':' after property name"));
            }
            self.pos += 1;
            self.skip_ws();
            let value = self.value()?;
            // JSON.parse: a repeated key keeps its place, takes the new value.
            match members.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => members.push((key, value)),
            }
            self.skip_ws();
            match self.s.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Js::Object(members));
                }
                _ => return Err(self.error("Expected ',' or '}' after property value")),
            }
        }
    }
}

/// secure-json-parse with Fastify's defaults (`onProtoPoisoning` and
/// `onConstructorPoisoning` both `'error'`): breadth first, an object with
/// an own `__proto__` key, or with a `constructor` whose value has an own
/// `prototype` key, is refused. (A `constructor` of `null` makes its check
/// throw a TypeError, which Fastify answers as a 400 as well.)
fn forbid_prototype_keys(root: &Js) -> Result<(), SyntaxError> {
    const FORBIDDEN: &str = "Object contains forbidden prototype property";
    let mut level = vec![root];
    while !level.is_empty() {
        let mut next = Vec::new();
        for node in level {
            match node {
                Js::Object(members) => {
                    if node.get("__proto__").is_some() {
                        return Err(SyntaxError(FORBIDDEN.into()));
                    }
                    match node.get("constructor") {
                        Some(Js::Null) => {
                            return Err(SyntaxError(
                                "Cannot convert undefined or null to object".into(),
                            ));
                        }
                        Some(c @ Js::Object(_)) if c.get("prototype").is_some() => {
                            return Err(SyntaxError(FORBIDDEN.into()));
                        }
                        _ => {}
                    }
                    next.extend(members.iter().map(|(_, v)| v).filter(|v| is_object(v)));
                }
                Js::Array(items) => next.extend(items.iter().filter(|v| is_object(v))),
                _ => {}
            }
        }
        level = next;
    }
    Ok(())
}

fn is_object(v: &Js) -> bool {
    matches!(v, Js::Object(_) | Js::Array(_))
}

/// JavaScript's `Number.prototype.toString()` (ECMA-262 Number::toString,
/// radix 10): the shortest digits that round-trip, in plain notation from
/// 1e-6 up to 1e21 and in exponent notation (`1e+21`, `1.5e-7`) outside.
pub fn js_number_to_string(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x == 0.0 {
        return "0".into(); // -0 too
    }
    if x < 0.0 {
        return format!("-{}", js_number_to_string(-x));
    }
    if x.is_infinite() {
        return "Infinity".into();
    }
    // Rust's `{:e}` prints the shortest round-trip digits: "d.ddde±x".
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let k = digits.len() as i64;
    let n = exp.parse::<i64>().unwrap_or(0) + 1;
    let mut out = String::new();
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(n as usize);
        let _ = write!(out, "{int}.{frac}");
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-n) as usize));
        out.push_str(&digits);
    } else {
        let e = n - 1;
        let sign = if e < 0 { '-' } else { '+' };
        let (first, rest) = digits.split_at(1);
        if rest.is_empty() {
            let _ = write!(out, "{first}e{sign}{}", e.abs());
        } else {
            let _ = write!(out, "{first}.{rest}e{sign}{}", e.abs());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Js, String> {
        parse_body(s).map_err(|e| e.0)
    }

    #[test]
    fn numbers_print_as_javascript_prints_them() {
        for (n, s) in [
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1e-7, "1e-7"),
            (0.000001, "0.000001"),
            (1.234e-7, "1.234e-7"),
            (-0.0, "0"),
            (0.1, "0.1"),
            (1500.0, "1500"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (12345678901234567890.0, "12345678901234567000"),
            (1.2345678901234568e29, "1.2345678901234568e+29"),
            (-1.5, "-1.5"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
            (123.456, "123.456"),
        ] {
            assert_eq!(js_number_to_string(n), s, "{n:e}");
        }
    }

    #[test]
    fn json_parse_semantics() {
        // Duplicate keys: first position, last value.
        assert_eq!(
            parse(r#"{"a":1,"b":2,"a":3}"#).unwrap(),
            Js::Object(vec![
                ("a".into(), Js::Number(3.0)),
                ("b".into(), Js::Number(2.0))
            ])
        );
        assert_eq!(parse("1e400").unwrap(), Js::Number(f64::INFINITY));
        assert_eq!(parse("-1E-400").unwrap(), Js::Number(-0.0));
        assert_eq!(parse("\u{feff}{}").unwrap(), Js::Object(vec![]));
        assert_eq!(
            parse(r#""\ud83d\ude00\ud800x\udc00""#).unwrap(),
            Js::String("\u{1F600}\u{fffd}x\u{fffd}".into())
        );
        assert_eq!(
            parse(r#""\ud800\u0041""#).unwrap(),
            Js::String("\u{fffd}A".into())
        );
        for bad in [
            "",
            " ",
            "{",
            "{,}",
            r#"{"a":1,}"#,
            "[1,]",
            "01",
            "-",
            "1.",
            "1e",
            ".5",
            "+1",
            "\"a\tb\"",
            r#""\x""#,
            r#""\u12""#,
            "{} x",
            "tru",
            "NaN",
            "Infinity",
            "'a'",
            "\u{a0}{}",
            "{\"a\" 1}",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(parse(&deep).is_err());
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn prototype_keys_are_refused_as_secure_json_parse_refuses_them() {
        for bad in [
            r#"{"__proto__":1}"#,
            r#"{"a":[{"\u005f_proto__":{}}]}"#,
            r#"{"constructor":{"prototype":null}}"#,
            r#"{"a":{"constructor":{"\u0070rototype":1}}}"#,
            r#"{"constructor":null}"#,
            r#"{"constructor":{"prototype":1},"constructor":{"prototype":2}}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad} accepted");
        }
        for fine in [
            r#"{"constructor":{"prototype":1},"constructor":2}"#,
            r#"{"constructor":[{"prototype":1}]}"#,
            r#"{"constructor":"s","proto":1}"#,
            r#"{"a":"__proto__"}"#,
            r#"["__proto__"]"#,
        ] {
            assert!(parse(fine).is_ok(), "{fine} refused");
        }
    }
}
