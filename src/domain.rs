//! Domain values parsed once at the boundary: usernames, passwords and role
//! profiles. Once a value of these types exists it is valid everywhere, so
//! handlers and the store never re-validate.

use serde::{Deserialize, Serialize};
use std::fmt;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

/// Longest accepted username, in characters.
pub const USERNAME_MAX_CHARS: usize = 256;
/// Shortest accepted password, in characters (the API schema's `minLength: 8`).
pub const PASSWORD_MIN_CHARS: usize = 8;
/// Longest accepted password, in bytes of UTF-8 (bounds the work of one hash).
pub const PASSWORD_MAX_BYTES: usize = 1024;

/// Why a username or password was refused. The message is the one clients
/// and the CLI show, as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInput {
    #[error("Username must not be empty")]
    UsernameEmpty,
    #[error("Username must be at most {USERNAME_MAX_CHARS} characters")]
    UsernameTooLong,
    #[error("Username must not contain control characters")]
    UsernameControl,
    #[error("Username must not start or end with whitespace")]
    UsernameWhitespace,
    #[error("Username must not contain invisible or formatting characters")]
    UsernameInvisible,
    #[error("Username must not mix Latin, Greek and Cyrillic letters")]
    UsernameMixedScripts,
    #[error("Password must be at least {PASSWORD_MIN_CHARS} characters")]
    PasswordTooShort,
    #[error("Password must be at most {PASSWORD_MAX_BYTES} bytes")]
    PasswordTooLong,
}

/// A validated username: 1 to 256 characters; no control characters; no
/// invisible or formatting characters (see [`is_invisible`]); no leading or
/// trailing whitespace; and letters of at most one of the Latin, Greek and
/// Cyrillic scripts (see [`Script`]). Stored and listed exactly as given;
/// uniqueness is decided on [`Username::folded`].
///
/// These rules apply when a name is created (`POST /user`, `user add`,
/// `recover-admin`). Users created before a rule existed keep their names and
/// log in with them: lookups never parse a name, they only [`fold`] it.
#[derive(Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(s: &str) -> Result<Username, InvalidInput> {
        let chars = s.chars().count();
        if chars == 0 {
            return Err(InvalidInput::UsernameEmpty);
        }
        if chars > USERNAME_MAX_CHARS {
            return Err(InvalidInput::UsernameTooLong);
        }
        if s.chars().any(char::is_control) {
            return Err(InvalidInput::UsernameControl);
        }
        if s.chars().any(is_invisible) {
            return Err(InvalidInput::UsernameInvisible);
        }
        if s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
            return Err(InvalidInput::UsernameWhitespace);
        }
        if mixes_scripts(s) {
            return Err(InvalidInput::UsernameMixedScripts);
        }
        Ok(Username(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key that makes usernames unique: see [`fold`].
    pub fn folded(&self) -> String {
        fold(&self.0)
    }
}

/// The uniqueness key of a name; used for every lookup by name, also of a
/// name that is not a valid username at all (a login's). Two names are the
/// same user when their folds are equal:
///
/// - NFKC first, so compatibility variants are one name: fullwidth `ａｄｍｉｎ`
///   is `admin`, the ligature `ﬁ` is `fi`, and a decomposed `a` + U+0300 is
///   the precomposed `à`.
/// - Then case: lower, upper, lower. Upper-casing maps e.g. `ß` to `SS`, so
///   `straße` and `STRASSE` collide, which plain lower-casing would miss; the
///   first lower-casing is there because `ẞ` (capital sharp s) lower-cases to
///   `ß`, which then upper-cases to `SS`: without it `STRAẞE` and `strasse`
///   would be different users (found by the `credentials` fuzz target).
/// - Case mapping can undo NFKC (U+0345 upper-cases to a base letter, which
///   then composes differently), so both steps repeat until nothing changes,
///   which makes the fold idempotent: `fold(fold(x)) == fold(x)`, and the
///   `credentials` fuzz target checks it.
///
/// Look-alikes from different scripts (Cyrillic `а` for Latin `a`) are not
/// folded together: [`Username::parse`] refuses the names that mix them.
pub fn fold(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    let mut current = nfkc(s.to_owned());
    // Real text settles in one or two rounds; the bound only makes the loop
    // obviously finite.
    for _ in 0..FOLD_ROUNDS {
        let next = nfkc(current.to_lowercase().to_uppercase().to_lowercase());
        if next == current {
            break;
        }
        current = next;
    }
    current
}

/// Rounds of [`fold`]'s case mapping and NFKC at most.
const FOLD_ROUNDS: usize = 8;

/// `s` in NFKC, without the normalization pass when the quick check can
/// tell it already is (most text): a login's name is folded on every
/// attempt, also a throttled one.
fn nfkc(s: String) -> String {
    match is_nfkc_quick(s.chars()) {
        IsNormalized::Yes => s,
        _ => s.nfkc().collect(),
    }
}

/// Whether `c` is invisible or changes how the text around it is shown:
/// every format character (general category Cf: zero-width spaces and
/// joiners, bidirectional controls, the byte order mark, the soft hyphen,
/// tag characters, ...) and the other default-ignorable code points, which
/// render as nothing (the combining grapheme joiner, Hangul fillers,
/// variation selectors). A name holding one looks like another name, or
/// reorders the text printed after it.
pub fn is_invisible(c: char) -> bool {
    in_table(FORMAT, c) || in_table(OTHER_DEFAULT_IGNORABLE, c)
}

fn in_table(table: &[(char, char)], c: char) -> bool {
    range_of(table, c, |&(lo, hi)| (lo, hi)).is_some()
}

/// The entry of `table` (ascending, disjoint ranges) whose range holds `c`.
fn range_of<T>(table: &[T], c: char, range: impl Fn(&T) -> (char, char)) -> Option<&T> {
    let i = table
        .binary_search_by(|entry| {
            let (lo, hi) = range(entry);
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .ok()?;
    table.get(i)
}

/// General category Cf (format), all of it: Unicode 16.0's
/// DerivedGeneralCategory.txt. Ascending, as [`in_table`] needs.
const FORMAT: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),   // soft hyphen
    ('\u{0600}', '\u{0605}'),   // Arabic number signs
    ('\u{061C}', '\u{061C}'),   // Arabic letter mark (bidi)
    ('\u{06DD}', '\u{06DD}'),   // Arabic end of ayah
    ('\u{070F}', '\u{070F}'),   // Syriac abbreviation mark
    ('\u{0890}', '\u{0891}'),   // Arabic pound and piastre marks above
    ('\u{08E2}', '\u{08E2}'),   // Arabic disputed end of ayah
    ('\u{180E}', '\u{180E}'),   // Mongolian vowel separator
    ('\u{200B}', '\u{200F}'),   // zero width space, ZWNJ, ZWJ, LRM, RLM
    ('\u{202A}', '\u{202E}'),   // bidi embeddings and overrides
    ('\u{2060}', '\u{2064}'),   // word joiner, invisible operators
    ('\u{2066}', '\u{206F}'),   // bidi isolates, deprecated format characters
    ('\u{FEFF}', '\u{FEFF}'),   // zero width no-break space (byte order mark)
    ('\u{FFF9}', '\u{FFFB}'),   // interlinear annotation
    ('\u{110BD}', '\u{110BD}'), // Kaithi number sign
    ('\u{110CD}', '\u{110CD}'), // Kaithi number sign above
    ('\u{13430}', '\u{1343F}'), // Egyptian hieroglyph format controls
    ('\u{1BCA0}', '\u{1BCA3}'), // shorthand format controls
    ('\u{1D173}', '\u{1D17A}'), // musical symbol beam and phrase controls
    ('\u{E0001}', '\u{E0001}'), // language tag
    ('\u{E0020}', '\u{E007F}'), // tag characters
];

/// Default_Ignorable_Code_Point (Unicode 16.0's DerivedCoreProperties.txt)
/// less what [`FORMAT`] holds: characters that are not Cf but are shown as
/// nothing all the same. Ascending.
const OTHER_DEFAULT_IGNORABLE: &[(char, char)] = &[
    ('\u{034F}', '\u{034F}'),   // combining grapheme joiner
    ('\u{115F}', '\u{1160}'),   // Hangul choseong and jungseong fillers
    ('\u{17B4}', '\u{17B5}'),   // Khmer inherent vowels
    ('\u{180B}', '\u{180D}'),   // Mongolian free variation selectors
    ('\u{180F}', '\u{180F}'),   // Mongolian free variation selector four
    ('\u{2065}', '\u{2065}'),   // reserved
    ('\u{3164}', '\u{3164}'),   // Hangul filler
    ('\u{FE00}', '\u{FE0F}'),   // variation selectors
    ('\u{FFA0}', '\u{FFA0}'),   // halfwidth Hangul filler
    ('\u{FFF0}', '\u{FFF8}'),   // reserved
    ('\u{E0000}', '\u{E0000}'), // reserved
    ('\u{E0002}', '\u{E001F}'), // reserved
    ('\u{E0080}', '\u{E0FFF}'), // reserved, variation selectors supplement
];

/// The scripts whose letters pass for one another (Cyrillic `а`, `е`, `о`,
/// `р`, `с`; Greek `ο`, `ν`, `Α`, `Β`, ... for Latin ones). A username may
/// use letters of one of them, so `аdmin` with a Cyrillic `а` is refused,
/// while all-Cyrillic `админ` and all-Greek names are fine, as are names
/// that add other scripts' letters (`山田-yamada`), digits or punctuation.
///
/// Deliberately simple: letters are placed by the Unicode block they are in
/// (blocks of these scripts hold almost nothing else), after NFKC, which has
/// already turned fullwidth, mathematical and other compatibility letters
/// into plain ones (so the micro sign `µ` counts as Greek `μ`). Look-alikes
/// within one script (`rn` and `m`) or from other scripts (Armenian `օ`,
/// Cherokee `Ꭺ`) are not caught.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    Latin,
    Greek,
    Cyrillic,
}

/// Unicode blocks of [`Script`]'s scripts. Ascending.
const SCRIPT_BLOCKS: &[(char, char, Script)] = &[
    ('A', 'Z', Script::Latin),
    ('a', 'z', Script::Latin),
    ('\u{00C0}', '\u{024F}', Script::Latin), // Latin-1 letters, Latin Extended-A and -B
    ('\u{0250}', '\u{02AF}', Script::Latin), // IPA Extensions
    ('\u{0370}', '\u{03FF}', Script::Greek), // Greek and Coptic
    ('\u{0400}', '\u{052F}', Script::Cyrillic), // Cyrillic, Cyrillic Supplement
    ('\u{1C80}', '\u{1C8F}', Script::Cyrillic), // Cyrillic Extended-C
    ('\u{1E00}', '\u{1EFF}', Script::Latin), // Latin Extended Additional
    ('\u{1F00}', '\u{1FFF}', Script::Greek), // Greek Extended
    ('\u{2C60}', '\u{2C7F}', Script::Latin), // Latin Extended-C
    ('\u{2DE0}', '\u{2DFF}', Script::Cyrillic), // Cyrillic Extended-A
    ('\u{A640}', '\u{A69F}', Script::Cyrillic), // Cyrillic Extended-B
    ('\u{A720}', '\u{A7FF}', Script::Latin), // Latin Extended-D
    ('\u{AB30}', '\u{AB6F}', Script::Latin), // Latin Extended-E
];

fn script_of(c: char) -> Option<Script> {
    if !c.is_alphabetic() {
        return None;
    }
    range_of(SCRIPT_BLOCKS, c, |&(lo, hi, _)| (lo, hi)).map(|&(_, _, script)| script)
}

/// Whether `s` (after NFKC) holds letters of more than one [`Script`].
fn mixes_scripts(s: &str) -> bool {
    let mut seen = None;
    for script in s.nfkc().filter_map(script_of) {
        match seen {
            None => seen = Some(script),
            Some(first) if first != script => return true,
            Some(_) => {}
        }
    }
    false
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Username {
    /// Debug-quoted so that a username can never forge a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// A password that meets the length rules. Its `Debug` never prints it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Passwords are compared exactly: no trimming, no case folding, no
    /// Unicode normalisation.
    pub fn parse(s: String) -> Result<Password, InvalidInput> {
        if s.chars().count() < PASSWORD_MIN_CHARS {
            return Err(InvalidInput::PasswordTooShort);
        }
        if s.len() > PASSWORD_MAX_BYTES {
            return Err(InvalidInput::PasswordTooLong);
        }
        Ok(Password(s))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A password (or other secret) as received, not yet judged by the rules:
/// a login's password, a `currentPassword`, an admin request's new
/// password. Like [`Password`], its `Debug` never prints it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Secret {
        Secret(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret(s.to_string())
    }
}

/// Deserializes `T` only from a JSON object. serde's derived `Deserialize`
/// also accepts a struct written as an array of its fields in order
/// (`["admin", "pw"]`); the API's bodies are objects, so arrays are refused.
pub struct ObjectOnly<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visit<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
            .map(ObjectOnly)
    }
}

/// The six role flags of the API. All six are required in every request
/// body that carries a role profile (unknown flags are removed before this
/// sees them: `http::body`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
// For the OpenAPI schema (additionalProperties: false); parsing is below.
#[serde(deny_unknown_fields)]
pub struct Roles {
    pub admin: bool,
    pub flows: bool,
    pub configure: bool,
    pub subscribe: bool,
    pub write: bool,
    pub read: bool,
}

/// The derived form of [`Roles`], wrapped in [`ObjectOnly`] below.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RolesFields {
    admin: bool,
    flows: bool,
    configure: bool,
    subscribe: bool,
    write: bool,
    read: bool,
}

impl<'de> Deserialize<'de> for Roles {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let ObjectOnly(f) = ObjectOnly::<RolesFields>::deserialize(d)?;
        Ok(Roles {
            admin: f.admin,
            flows: f.flows,
            configure: f.configure,
            subscribe: f.subscribe,
            write: f.write,
            read: f.read,
        })
    }
}

/// Roles in storage and in tokens: the bitmask ([`Roles::bits`]), for
/// `#[serde(with = "crate::domain::role_bits")]`.
pub mod role_bits {
    use super::Roles;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(roles: &Roles, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(roles.bits())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Roles, D::Error> {
        u8::deserialize(d).map(Roles::from_bits)
    }
}

impl Roles {
    pub const READ: u8 = 1;
    pub const WRITE: u8 = 2;
    pub const SUBSCRIBE: u8 = 4;
    pub const CONFIGURE: u8 = 8;
    pub const FLOWS: u8 = 16;
    pub const ADMIN: u8 = 128;

    pub const ALL: Roles = Roles {
        admin: true,
        flows: true,
        configure: true,
        subscribe: true,
        write: true,
        read: true,
    };

    /// The token's bitmask: read=1, write=2, subscribe=4, configure=8,
    /// flows=16, admin=128 (so all six flags are 159, as the original issues).
    pub fn bits(self) -> u8 {
        let mut b = 0;
        for (on, bit) in [
            (self.read, Self::READ),
            (self.write, Self::WRITE),
            (self.subscribe, Self::SUBSCRIBE),
            (self.configure, Self::CONFIGURE),
            (self.flows, Self::FLOWS),
            (self.admin, Self::ADMIN),
        ] {
            if on {
                b |= bit;
            }
        }
        b
    }

    /// Decodes a bitmask; bits 5 and 6 (set by older releases' 255) are
    /// ignored.
    pub fn from_bits(b: u8) -> Roles {
        Roles {
            read: b & Self::READ != 0,
            write: b & Self::WRITE != 0,
            subscribe: b & Self::SUBSCRIBE != 0,
            configure: b & Self::CONFIGURE != 0,
            flows: b & Self::FLOWS != 0,
            admin: b & Self::ADMIN != 0,
        }
    }

    /// The names of the flags that are on, in the order admin, flows,
    /// configure, subscribe, write, read.
    pub fn names(self) -> Vec<&'static str> {
        [
            (self.admin, "admin"),
            (self.flows, "flows"),
            (self.configure, "configure"),
            (self.subscribe, "subscribe"),
            (self.write, "write"),
            (self.read, "read"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }

    /// Does `self` have every flag `required` has?
    pub fn includes(self, required: Roles) -> bool {
        self.bits() & required.bits() == required.bits()
    }

    /// Parses the CLI form: a comma-separated list of flag names, `all` or
    /// `none`.
    pub fn parse_list(s: &str) -> Result<Roles, String> {
        let mut bits = 0u8;
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            bits |= match name {
                "all" => Roles::ALL.bits(),
                "none" => 0,
                "admin" => Self::ADMIN,
                "flows" => Self::FLOWS,
                "configure" => Self::CONFIGURE,
                "subscribe" => Self::SUBSCRIBE,
                "write" => Self::WRITE,
                "read" => Self::READ,
                other => {
                    return Err(format!(
                        "unknown role {other:?} (expected admin, flows, configure, subscribe, write, read, all or none)"
                    ));
                }
            };
        }
        Ok(Roles::from_bits(bits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_roles_make_159_and_255_decodes_to_all() {
        assert_eq!(Roles::ALL.bits(), 159);
        assert_eq!(Roles::from_bits(255), Roles::ALL);
        assert_eq!(Roles::from_bits(159), Roles::ALL);
        assert_eq!(Roles::from_bits(0).bits(), 0);
        for b in 0..=255u8 {
            assert_eq!(Roles::from_bits(b).bits(), b & 159);
        }
    }

    #[test]
    fn usernames() {
        assert!(Username::parse("bobz@home.com").is_ok());
        assert!(Username::parse("Zoë Ünïcødé 名前").is_ok());
        assert!(Username::parse("").is_err());
        assert!(Username::parse(" lead").is_err());
        assert!(Username::parse("trail\u{a0}").is_err());
        assert!(Username::parse("nul\0").is_err());
        assert!(Username::parse("tab\tx").is_err());
        assert!(Username::parse(&"é".repeat(256)).is_ok());
        assert!(Username::parse(&"é".repeat(257)).is_err());
        assert_eq!(
            Username::parse("Straße").unwrap().folded(),
            Username::parse("STRASSE").unwrap().folded()
        );
        assert_eq!(fold("STRAẞE"), fold("strasse"));
        for s in ["ẞ", "ß", "ΐ", "İ", "ﬃ", "Ǆ"] {
            assert_eq!(fold(&fold(s)), fold(s), "fold is stable for {s}");
        }
    }

    /// The fold before NFKC, which older stores' index keys were made with.
    fn fold_before_nfkc(s: &str) -> String {
        s.to_lowercase().to_uppercase().to_lowercase()
    }

    #[test]
    fn look_alikes_fold_together_or_are_refused() {
        // Compatibility and canonical variants are one name.
        for (variant, plain) in [
            ("ａｄｍｉｎ", "admin"),
            ("ＡＤＭＩＮ", "admin"),
            ("a\u{300}dmin", "àdmin"),
            ("A\u{300}DMIN", "àdmin"),
            ("ﬁnance", "finance"),
            ("𝐚𝐝𝐦𝐢𝐧", "admin"),
            ("ⓐdmin", "admin"),
            ("\u{212A}elvin", "kelvin"), // the Kelvin sign
            ("ad\u{a0}min", "ad min"),
            ("ſtraße", "STRASSE"),
        ] {
            assert_eq!(fold(variant), fold(plain), "{variant:?} vs {plain:?}");
            assert!(Username::parse(variant).is_ok(), "{variant:?}");
        }
        assert_eq!(fold("ａｄｍｉｎ"), "admin");
        // Invisible and formatting characters, anywhere.
        for s in [
            "ad\u{200b}min",
            "admin\u{feff}",
            "adm\u{ad}in",
            "\u{202e}nimda",
            "ad\u{200c}min",
            "ad\u{200d}min",
            "\u{200e}admin",
            "admin\u{2069}",
            "\u{61c}admin",
            "admin\u{e0041}",
            "ad\u{34f}min",
            "admin\u{3164}",
            "admin\u{fe0f}",
            "admin\u{e0100}",
        ] {
            assert_eq!(
                Username::parse(s).err(),
                Some(InvalidInput::UsernameInvisible),
                "{s:?}"
            );
        }
        // Latin mixed with Cyrillic or Greek letters; also once NFKC has
        // made a compatibility letter plain (the micro sign is Greek mu).
        for s in [
            "\u{430}dmin",      // Cyrillic а
            "adm\u{456}n",      // Ukrainian і
            "\u{3b1}dmin",      // Greek α
            "p\u{430}ypal.com", // Cyrillic а
            "\u{3a9}mega",      // Greek Ω
            "\u{b5}admin",      // the micro sign
            "админ-\u{3bf}",    // Greek ο among Cyrillic
        ] {
            assert_eq!(
                Username::parse(s).err(),
                Some(InvalidInput::UsernameMixedScripts),
                "{s:?}"
            );
        }
        // One script, or others beside it, or none.
        for s in [
            "админ",
            "Ελένη",
            "Zoë Ünïcødé 名前",
            "山田-yamada",
            "ДИМА_2024",
            "user@example.com",
            "Ω-3",
            "Ǆemal",
            "ἈΡΧΗ",
        ] {
            assert!(Username::parse(s).is_ok(), "{s:?}");
        }
        assert_eq!(
            InvalidInput::UsernameInvisible.to_string(),
            "Username must not contain invisible or formatting characters"
        );
    }

    /// NFKC and case mapping undo each other on some inputs (U+0345 becomes
    /// a base letter when upper-cased; Greek with ypogegrammeni recomposes
    /// differently); the fold must still be stable. Case variants of the
    /// text (in NFC, as typed: upper-casing `α` U+0345 U+0301, out of
    /// canonical order, moves the accent onto the iota, which is another
    /// name) fold alike, also after the fold before NFKC.
    #[test]
    fn fold_is_idempotent_and_case_blind_on_tricky_inputs() {
        for s in [
            "ẞ",
            "ß",
            "ΐ",
            "İ",
            "ı",
            "ſ",
            "ﬃ",
            "ﬅ",
            "Ǆ",
            "ǅ",
            "\u{345}",
            "α\u{345}",
            "α\u{345}\u{301}",
            "α\u{301}\u{345}",
            "ᾳ",
            "ᾼ",
            "ῼ\u{301}",
            "ϐ",
            "ϑ",
            "ϴ",
            "ℌ",
            "Ω",
            "Å",
            "㍱",
            "㏂",
            "ﷺ",
            "Ϊ́",
            "İ\u{307}",
            "i\u{307}\u{301}",
            "ǰ\u{323}",
            "ᾀ\u{345}",
            "ΐ\u{345}",
            "ⓂⒶⓍ",
            "Ⅻ",
            "\u{1E9E}\u{345}",
        ] {
            let f = fold(s);
            assert_eq!(fold(&f), f, "fold is stable for {s:?}");
            let typed: String = s.nfc().collect();
            assert_eq!(fold(&typed), f, "NFC of {s:?}");
            assert_eq!(fold(&typed.to_uppercase()), f, "upper-case {s:?}");
            assert_eq!(fold(&typed.to_lowercase()), f, "lower-case {s:?}");
            assert_eq!(fold(&fold_before_nfkc(&typed)), f, "old fold of {s:?}");
        }
    }

    /// Every code point of planes 0 and 1, the CJK compatibility
    /// ideographs and plane 14: one character alone, and after `a`.
    #[test]
    fn fold_is_idempotent_for_every_character() {
        let planes = (0..0x2_0000u32)
            .chain(0x2_F800..0x2_FA20)
            .chain(0xE_0000..0xE_1000);
        for c in planes.filter_map(char::from_u32) {
            for s in [c.to_string(), format!("a{c}")] {
                let f = fold(&s);
                assert_eq!(fold(&f), f, "fold is stable for {s:?}");
                assert_eq!(fold(&s.to_uppercase()), f, "upper-case variant of {s:?}");
                assert_eq!(fold(&fold_before_nfkc(&s)), f, "old fold of {s:?}");
            }
        }
    }

    #[test]
    fn the_tables_are_ascending_and_disjoint() {
        fn check(ranges: &[(char, char)]) {
            for w in ranges.windows(2) {
                assert!(w[0].0 <= w[0].1 && w[0].1 < w[1].0, "{w:?}");
            }
        }
        check(FORMAT);
        check(OTHER_DEFAULT_IGNORABLE);
        let blocks: Vec<_> = SCRIPT_BLOCKS.iter().map(|&(a, b, _)| (a, b)).collect();
        check(&blocks);
        // Cf and the rest of Default_Ignorable_Code_Point do not overlap.
        for &(lo, hi) in OTHER_DEFAULT_IGNORABLE {
            assert!(!in_table(FORMAT, lo) && !in_table(FORMAT, hi));
        }
        assert!(is_invisible('\u{200b}') && is_invisible('\u{e007f}'));
        assert!(!is_invisible('a') && !is_invisible(' ') && !is_invisible('\u{300}'));
    }

    #[test]
    fn passwords() {
        assert!(Password::parse("1234567".into()).is_err());
        assert!(Password::parse("12345678".into()).is_ok());
        assert!(Password::parse("éééé".into()).is_err());
        assert!(Password::parse("a".repeat(1024)).is_ok());
        assert!(Password::parse("a".repeat(1025)).is_err());
        assert_eq!(
            format!("{:?}", Password::parse("secret-pw".into()).unwrap()),
            "Password(***)"
        );
    }

    #[test]
    fn roles_and_bodies_must_be_objects() {
        let ok = r#"{"admin":true,"flows":false,"configure":false,"subscribe":false,"write":false,"read":true}"#;
        assert_eq!(serde_json::from_str::<Roles>(ok).unwrap().bits(), 129);
        assert!(serde_json::from_str::<Roles>("[true,true,true,true,true,true]").is_err());
        assert!(serde_json::from_str::<Roles>(&ok.replace("}", r#","root":true}"#)).is_err());
        assert!(serde_json::from_str::<Roles>(r#"{"admin":true}"#).is_err());
        #[derive(Deserialize)]
        struct Pair {
            _a: String,
        }
        assert!(serde_json::from_str::<ObjectOnly<Pair>>(r#"["x"]"#).is_err());
        assert!(serde_json::from_str::<ObjectOnly<Pair>>(r#"{"_a":"x"}"#).is_ok());
    }

    #[test]
    fn role_lists() {
        assert_eq!(Roles::parse_list("all").unwrap(), Roles::ALL);
        assert_eq!(Roles::parse_list("read,write").unwrap().bits(), 3);
        assert!(Roles::parse_list("root").is_err());
    }
}
