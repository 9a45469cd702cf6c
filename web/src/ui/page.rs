//! The HTML pages: `web/ui/pages/*.html` filled in on the server with the request's
//! language, theme and asset URLs. Pages hold no inline script, handler or style
//! (the CSP allows neither); the dictionary rides along as a JSON data block, which
//! browsers never execute.

use std::borrow::Cow;

use super::assets;
use super::i18n::{self, Dictionary};

macro_rules! page_source {
    ($name:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/ui/pages/", $name))
    };
}

const LAYOUT: &str = page_source!("layout.html");
const HEADER: &str = page_source!("header.html");
const PREFS: &str = page_source!("prefs.html");

/// One page of the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// `/login`
    Login,
    /// `/`
    Overview,
    /// `/hosts/{host}`
    Host,
    /// `/alerts`
    Alerts,
}

impl Page {
    /// Every page.
    pub const ALL: [Page; 4] = [Page::Login, Page::Overview, Page::Host, Page::Alerts];

    fn name(self) -> &'static str {
        match self {
            Page::Login => "login",
            Page::Overview => "overview",
            Page::Host => "host",
            Page::Alerts => "alerts",
        }
    }

    fn body(self) -> &'static str {
        match self {
            Page::Login => page_source!("login.html"),
            Page::Overview => page_source!("overview.html"),
            Page::Host => page_source!("host.html"),
            Page::Alerts => page_source!("alerts.html"),
        }
    }

    fn title_key(self) -> &'static str {
        match self {
            Page::Login => "page.login",
            Page::Overview => "page.overview",
            Page::Host => "page.host",
            Page::Alerts => "page.alerts",
        }
    }

    /// Whether the page draws charts (and so loads ECharts).
    fn uses_echarts(self) -> bool {
        self == Page::Host
    }

    /// The top bar with navigation, for pages behind the login.
    fn has_header(self) -> bool {
        self != Page::Login
    }
}

/// Escape text for HTML content and quoted attribute values.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Replace every `{{name}}` in `template` with `value(name)`, in one pass (inserted
/// text is not scanned again); a name `value` does not know stays as it is.
fn fill<'a>(template: &str, mut value: impl FnMut(&str) -> Option<Cow<'a, str>>) -> String {
    let mut out = String::with_capacity(template.len() * 2);
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        match after.find("}}") {
            Some(close) => {
                let name = &after[..close];
                match value(name) {
                    Some(v) => out.push_str(&v),
                    None => {
                        out.push_str("{{");
                        out.push_str(name);
                        out.push_str("}}");
                    }
                }
                rest = &after[close + 2..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn scripts(page: Page, base: &str) -> String {
    let mut s = format!("<link rel=\"modulepreload\" href=\"{base}/common.js\">\n");
    if page.uses_echarts() {
        s.push_str(&format!(
            "<link rel=\"modulepreload\" href=\"{base}/charts.js\">\n"
        ));
        // Classic and module scripts that defer run in document order: ECharts first.
        s.push_str(&format!(
            "<script defer src=\"{base}/echarts.min.js\"></script>\n"
        ));
    }
    s.push_str(&format!(
        "<script type=\"module\" src=\"{base}/{}.js\"></script>",
        page.name()
    ));
    s
}

/// The page's HTML in `lang` with `theme` (`light`, `dark` or `auto`).
pub fn render(page: Page, lang: &str, theme: &str) -> String {
    let dict: &Dictionary = i18n::dictionary(lang);
    let base = assets::base();
    let header = if page.has_header() {
        HEADER.replace("{{prefs}}", PREFS)
    } else {
        String::new()
    };
    let body = page.body().replace("{{prefs}}", PREFS);
    let doc = LAYOUT
        .replacen("{{header}}", &header, 1)
        .replacen("{{body}}", &body, 1);
    let theme = match theme {
        "light" | "dark" => theme,
        _ => "auto",
    };
    fill(&doc, |name| {
        Some(match name {
            "lang" => Cow::Borrowed(dict.lang),
            "theme" => Cow::Borrowed(theme),
            "assets" => Cow::Owned(base.clone()),
            "page" => Cow::Borrowed(page.name()),
            "title" => Cow::Owned(escape(dict.text(page.title_key())).into_owned()),
            "scripts" => Cow::Owned(scripts(page, &base)),
            "dict" => Cow::Owned(dict.script_json().to_owned()),
            other => Cow::Owned(escape(dict.text(other.strip_prefix("t:")?)).into_owned()),
        })
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::collections::BTreeSet;

    use super::*;
    use crate::config::LANGUAGES;

    #[test]
    fn fill_replaces_known_names_once() {
        let check = |template: &str, expected: &str| {
            let got = fill(template, |n| match n {
                "a" => Some(Cow::Borrowed("{{b}}")),
                "b" => Some(Cow::Borrowed("B")),
                _ => None,
            });
            assert_eq!(got, expected, "{template}");
        };
        check("x{{a}}y", "x{{b}}y");
        check("{{b}}{{b}}", "BB");
        check("{{c}} {{b}}", "{{c}} B");
        check("open {{b", "open {{b");
        check("", "");
    }

    #[test]
    fn escape_html() {
        assert_eq!(
            escape("a<b & \"c\" 'd'>"),
            "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;"
        );
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
    }

    /// Keys the templates and scripts ask for: `{{t:key}}` and `t('key')`.
    fn used_keys() -> BTreeSet<String> {
        let mut keys = BTreeSet::new();
        let templates = [LAYOUT, HEADER, PREFS]
            .into_iter()
            .chain(Page::ALL.iter().map(|p| p.body()));
        for src in templates {
            for part in src.split("{{t:").skip(1) {
                keys.insert(part.split("}}").next().unwrap().to_owned());
            }
        }
        for asset in assets::ASSETS
            .iter()
            .filter(|a| a.path.ends_with(".js") && a.path != "echarts.min.js")
        {
            let src = std::str::from_utf8(asset.body).unwrap();
            for part in src.split("t('").skip(1) {
                let key = part.split('\'').next().unwrap();
                // `t('` also ends words like `set('`; keys have a dot and no spaces.
                if key.contains('.') && !key.contains([' ', '/']) {
                    keys.insert(key.to_owned());
                }
            }
        }
        keys
    }

    #[test]
    fn every_key_the_ui_uses_is_translated() {
        let used = used_keys();
        assert!(
            used.len() > 100,
            "found only {} keys; did the scan break?",
            used.len()
        );
        for lang in LANGUAGES {
            let dict = i18n::dictionary(lang);
            let missing: Vec<_> = used.iter().filter(|k| dict.get(k).is_none()).collect();
            assert!(missing.is_empty(), "{lang} lacks {missing:?}");
        }
    }

    #[test]
    fn pages_render_without_leftovers_or_inline_code() {
        for page in Page::ALL {
            for lang in LANGUAGES {
                let html = render(page, lang, "auto");
                assert!(
                    !html.contains("{{"),
                    "{page:?}/{lang}: unfilled placeholder"
                );
                assert!(
                    html.starts_with("<!doctype html>\n<html lang=\"")
                        && html.contains(&format!("lang=\"{lang}\""))
                );
                // Every <script> has a src, except the JSON data block.
                for tag in html.split("<script").skip(1) {
                    let open = tag.split('>').next().unwrap();
                    assert!(
                        open.contains(" src=\"/assets/")
                            || open.contains("type=\"application/json\""),
                        "{page:?}: inline script <script{open}>"
                    );
                }
                let lower = html.to_ascii_lowercase();
                assert!(
                    !lower.contains(" style=") && !lower.contains("<style"),
                    "{page:?}: inline style"
                );
                assert!(!lower.contains("javascript:"), "{page:?}: javascript: URL");
                for word in lower
                    .split(|c: char| c.is_whitespace())
                    .filter(|w| w.starts_with("on"))
                {
                    assert!(!word.contains('='), "{page:?}: inline handler {word}");
                }
                assert!(
                    html.contains(&assets::base()),
                    "{page:?}: assets not versioned"
                );
            }
        }
    }

    #[test]
    fn pages_speak_the_chosen_language() {
        let zh = render(Page::Overview, "zh-CN", "dark");
        assert!(zh.contains("<html lang=\"zh-CN\" data-theme=\"dark\""));
        assert!(zh.contains("<title>总览 · hostscope</title>"));
        assert!(zh.contains(">总览</a>"));
        let en = render(Page::Host, "en", "bogus");
        assert!(en.contains("data-theme=\"auto\""));
        assert!(en.contains("echarts.min.js"));
        assert!(!render(Page::Login, "en", "auto").contains("echarts.min.js"));
        assert!(!render(Page::Login, "en", "auto").contains("id=\"logout\""));
    }
}
