//! The UI's languages: one dictionary per language (`web/ui/i18n/<lang>.json`, flat
//! `"key": "text"`), and the choice of language for a request: the `hs_lang` cookie
//! (set by the language switch), else `Accept-Language`, else `web.default_language`.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::http::{header, HeaderMap};

use crate::config::LANGUAGES;

/// The cookie the language switch sets.
pub const LANG_COOKIE: &str = "hs_lang";
/// The cookie the theme switch sets (`light` or `dark`; absent: follow the system).
pub const THEME_COOKIE: &str = "hs_theme";

/// Each language's dictionary source, in the order of [`LANGUAGES`].
const SOURCES: [(&str, &str); 2] = [
    (
        "en",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/ui/i18n/en.json")),
    ),
    (
        "zh-CN",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/ui/i18n/zh-CN.json")),
    ),
];

/// One language's strings.
#[derive(Debug)]
pub struct Dictionary {
    /// The language tag, e.g. `zh-CN`.
    pub lang: &'static str,
    entries: BTreeMap<String, String>,
    /// The entries as JSON that is safe inside `<script type="application/json">`.
    script_json: String,
}

impl Dictionary {
    fn parse(lang: &'static str, source: &str) -> Self {
        let entries: BTreeMap<String, String> = match serde_json::from_str(source) {
            Ok(e) => e,
            Err(error) => {
                // The unit tests parse every dictionary, so this is a build gone wrong.
                tracing::error!(message = "UI dictionary does not parse", lang, %error);
                BTreeMap::new()
            }
        };
        let json = serde_json::to_string(&entries).unwrap_or_else(|_| "{}".to_owned());
        // `<` only occurs inside JSON strings, where `\u003c` means the same; this keeps
        // `</script>` in a translation from ending the data block.
        let script_json = json.replace('<', "\\u003c");
        Dictionary {
            lang,
            entries,
            script_json,
        }
    }

    /// The text for `key`, if this language has it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    /// The text for `key`: this language's, else English, else the key itself.
    pub fn text<'a>(&'a self, key: &'a str) -> &'a str {
        self.get(key).or_else(|| english().get(key)).unwrap_or(key)
    }

    /// Every key, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The dictionary as JSON for the page's `#i18n` data block.
    pub fn script_json(&self) -> &str {
        &self.script_json
    }
}

static DICTIONARIES: LazyLock<Vec<Dictionary>> = LazyLock::new(|| {
    SOURCES
        .iter()
        .map(|(lang, src)| Dictionary::parse(lang, src))
        .collect()
});

fn english() -> &'static Dictionary {
    &DICTIONARIES[0]
}

/// The dictionary of `lang` (one of [`LANGUAGES`]); English for anything else.
pub fn dictionary(lang: &str) -> &'static Dictionary {
    DICTIONARIES
        .iter()
        .find(|d| d.lang == lang)
        .unwrap_or_else(english)
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The supported language a language tag asks for: any `zh` → `zh-CN`, any `en` →
/// `en`, an exact (case-insensitive) match otherwise.
fn supported(tag: &str) -> Option<&'static str> {
    let tag = tag.trim().to_ascii_lowercase();
    let primary = tag.split(['-', '_']).next().unwrap_or_default();
    LANGUAGES
        .iter()
        .find(|l| l.eq_ignore_ascii_case(&tag))
        .or_else(|| {
            LANGUAGES.iter().find(|l| {
                l.split('-')
                    .next()
                    .is_some_and(|p| p.eq_ignore_ascii_case(primary))
            })
        })
        .copied()
}

/// The best supported language in an `Accept-Language` value, by quality.
fn from_accept_language(value: &str) -> Option<&'static str> {
    let mut wanted: Vec<(f32, usize, &str)> = value
        .split(',')
        .enumerate()
        .filter_map(|(i, item)| {
            let mut parts = item.split(';').map(str::trim);
            let tag = parts.next().filter(|t| !t.is_empty())?;
            let q = parts
                .find_map(|p| p.strip_prefix("q="))
                .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
            (q > 0.0).then_some((q, i, tag))
        })
        .collect();
    wanted.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    wanted.iter().find_map(|(_, _, tag)| supported(tag))
}

/// The language for a request: the `hs_lang` cookie when it names a supported
/// language, else the best match in `Accept-Language`, else `default`.
pub fn negotiate(headers: &HeaderMap, default: &str) -> &'static str {
    if let Some(lang) =
        cookie(headers, LANG_COOKIE).and_then(|c| LANGUAGES.iter().find(|l| **l == c))
    {
        return lang;
    }
    headers
        .get_all(header::ACCEPT_LANGUAGE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(from_accept_language)
        .or_else(|| LANGUAGES.iter().find(|l| **l == default).copied())
        .unwrap_or("en")
}

/// The theme the user chose (`light` or `dark`), or `auto`.
pub fn theme(headers: &HeaderMap) -> &'static str {
    match cookie(headers, THEME_COOKIE) {
        Some("light") => "light",
        Some("dark") => "dark",
        _ => "auto",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_language_has_a_dictionary_that_parses() {
        let langs: Vec<&str> = SOURCES.iter().map(|(l, _)| *l).collect();
        assert_eq!(
            langs, LANGUAGES,
            "SOURCES must list config::LANGUAGES in order"
        );
        for (lang, src) in SOURCES {
            let parsed: BTreeMap<String, String> =
                serde_json::from_str(src).unwrap_or_else(|e| panic!("ui/i18n/{lang}.json: {e}"));
            assert!(parsed.len() > 50, "{lang}: suspiciously few entries");
            for (k, v) in &parsed {
                assert!(!v.trim().is_empty(), "{lang}: {k} is empty");
            }
        }
    }

    #[test]
    fn both_dictionaries_have_the_same_keys() {
        let en: BTreeSet<&str> = dictionary("en").keys().collect();
        let zh: BTreeSet<&str> = dictionary("zh-CN").keys().collect();
        let only_en: Vec<_> = en.difference(&zh).collect();
        let only_zh: Vec<_> = zh.difference(&en).collect();
        assert!(
            only_en.is_empty() && only_zh.is_empty(),
            "only in en.json: {only_en:?}; only in zh-CN.json: {only_zh:?}"
        );
    }

    #[test]
    fn placeholders_match_across_languages() {
        let placeholders = |s: &str| -> BTreeSet<String> {
            s.split('{')
                .skip(1)
                .filter_map(|p| p.split_once('}'))
                .map(|(name, _)| name.to_owned())
                .collect()
        };
        let en = dictionary("en");
        let zh = dictionary("zh-CN");
        for key in en.keys() {
            assert_eq!(
                placeholders(en.text(key)),
                placeholders(zh.text(key)),
                "placeholders of {key}"
            );
        }
    }

    #[test]
    fn script_json_cannot_close_the_script_element() {
        let d = Dictionary::parse("en", r#"{"a": "</script><b>"}"#);
        assert!(!d.script_json().contains('<'));
        let back: BTreeMap<String, String> = serde_json::from_str(d.script_json()).unwrap();
        assert_eq!(back["a"], "</script><b>");
    }

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), v.parse().unwrap());
        }
        h
    }

    #[test]
    fn language_negotiation() {
        let check = |cookie: Option<&str>, accept: Option<&str>, default: &str, expected: &str| {
            let mut pairs = Vec::new();
            if let Some(c) = cookie {
                pairs.push((header::COOKIE, c));
            }
            if let Some(a) = accept {
                pairs.push((header::ACCEPT_LANGUAGE, a));
            }
            assert_eq!(
                negotiate(&headers(&pairs), default),
                expected,
                "cookie {cookie:?}, accept {accept:?}"
            );
        };
        check(None, None, "en", "en");
        check(None, None, "zh-CN", "zh-CN");
        check(None, Some("zh-CN,zh;q=0.9,en;q=0.8"), "en", "zh-CN");
        check(None, Some("zh"), "en", "zh-CN");
        check(None, Some("zh-Hans-CN"), "en", "zh-CN");
        check(None, Some("en-US,en;q=0.9"), "zh-CN", "en");
        check(None, Some("fr-FR, en;q=0.5, zh;q=0.7"), "en", "zh-CN");
        check(None, Some("de, fr"), "zh-CN", "zh-CN");
        check(None, Some("zh;q=0, en"), "zh-CN", "en");
        check(None, Some("*"), "zh-CN", "zh-CN");
        check(Some("hs_lang=zh-CN"), Some("en"), "en", "zh-CN");
        check(Some("a=b; hs_lang=en"), Some("zh"), "zh-CN", "en");
        check(Some("hs_lang=fr"), Some("zh"), "en", "zh-CN");
        check(Some("hs_lang=<x>"), None, "en", "en");
    }

    #[test]
    fn theme_cookie() {
        assert_eq!(
            theme(&headers(&[(header::COOKIE, "hs_theme=dark")])),
            "dark"
        );
        assert_eq!(
            theme(&headers(&[(header::COOKIE, "x=1; hs_theme=light")])),
            "light"
        );
        assert_eq!(
            theme(&headers(&[(header::COOKIE, "hs_theme=\"><script>")])),
            "auto"
        );
        assert_eq!(theme(&HeaderMap::new()), "auto");
    }
}
