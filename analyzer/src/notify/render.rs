//! A notification as people read it: a subject, plain text, HTML (e-mail) and Markdown
//! (chat), in English or Simplified Chinese.
//!
//! Everything is built from one [`View`]: the words and formatted values of each event,
//! still unescaped. Each output escapes for its own syntax at the last step, so a rule or
//! host named `<script>` is text everywhere. Control characters in names and reasons
//! become spaces, so nothing can add a header line or break a Markdown list.

use std::fmt::Write as _;

use hostscope_core::calendar::civil_from_days;
use hostscope_core::detect::Severity;
use reqwest::Url;

use super::config::Language;
use super::{AlertEvent, EventKind, Notification};

/// How to render.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RenderOptions {
    pub language: Language,
    /// The web UI's base URL; with it every event links to its host's page.
    pub web_url: Option<Url>,
}

/// One notification, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// One line, e.g. `[CRITICAL] web-1: cpu-ewma firing`.
    pub subject: String,
    /// Plain text (e-mail text part, webhook `text`).
    pub text: String,
    /// A whole HTML document with inline styles (e-mail HTML part).
    pub html: String,
    /// Markdown for chat robots: a `###` heading with the subject, then the events.
    pub markdown: String,
}

/// Render `n` for people.
pub fn render(n: &Notification, opts: &RenderOptions) -> Rendered {
    let view = View::new(n, opts);
    let markdown = format!(
        "### {}\n\n{}",
        escape_md(&view.subject),
        view.markdown(Dialect::Markdown, usize::MAX)
    );
    Rendered {
        subject: view.subject.clone(),
        text: view.text(),
        html: view.html(),
        markdown,
    }
}

/// The overall colour of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tone {
    Critical,
    Warning,
    Resolved,
}

impl Tone {
    pub(crate) fn of_events<'a>(events: impl IntoIterator<Item = &'a AlertEvent>) -> Tone {
        let mut tone = Tone::Resolved;
        for e in events {
            if e.kind == EventKind::Resolved {
                continue;
            }
            match e.severity {
                Severity::Critical => return Tone::Critical,
                Severity::Warning => tone = Tone::Warning,
            }
        }
        tone
    }

    pub(crate) fn hex(self) -> &'static str {
        match self {
            Tone::Critical => "#d32f2f",
            Tone::Warning => "#ef6c00",
            Tone::Resolved => "#2e7d32",
        }
    }
}

/// Markdown flavours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// CommonMark-like, as DingTalk, WeCom and Feishu's `lark_md` read it.
    Markdown,
    /// Slack's `mrkdwn`: `*bold*`, `<url|label>`, `&<>` escaped as entities.
    Slack,
}

/// One event's words, unescaped.
#[derive(Debug, Clone)]
pub(crate) struct EventView {
    /// `cpu-ewma on web-1`.
    pub heading: String,
    /// `FIRING (critical)`.
    pub status: String,
    /// (label, value) lines.
    pub rows: Vec<(&'static str, String)>,
    /// The host page: (label, URL).
    pub link: Option<(String, Url)>,
    pub tone: Tone,
}

/// A whole notification's words, unescaped.
#[derive(Debug, Clone)]
pub(crate) struct View {
    pub subject: String,
    pub events: Vec<EventView>,
    pub tone: Tone,
    pub language: Language,
}

impl View {
    pub(crate) fn new(n: &Notification, opts: &RenderOptions) -> View {
        let lang = opts.language;
        View {
            subject: subject(n, lang),
            events: n
                .events
                .iter()
                .map(|e| event_view(e, lang, opts.web_url.as_ref()))
                .collect(),
            tone: Tone::of_events(&n.events),
            language: lang,
        }
    }

    fn text(&self) -> String {
        let mut out = String::new();
        out.push_str(&self.subject);
        out.push_str("\n\n");
        for ev in &self.events {
            let _ = writeln!(out, "{}: {}", ev.heading, ev.status);
            for (label, value) in &ev.rows {
                let _ = writeln!(out, "  {label}: {value}");
            }
            if let Some((label, url)) = &ev.link {
                let _ = writeln!(out, "  {label}: {url}");
            }
            out.push('\n');
        }
        out.push_str("-- \n");
        out.push_str(footer(self.language));
        out.push('\n');
        out
    }

    fn html(&self) -> String {
        let mut out = String::with_capacity(2048);
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width\"><title>{}</title></head>\n\
             <body style=\"margin:0;padding:16px;font-family:-apple-system,'Segoe UI',Helvetica,Arial,\
             'PingFang SC','Microsoft YaHei',sans-serif;color:#222;background:#fff\">\n\
             <h1 style=\"font-size:18px;margin:0 0 16px;color:{}\">{}</h1>\n",
            self.language.tag(),
            escape_html(&self.subject),
            self.tone.hex(),
            escape_html(&self.subject),
        );
        for ev in &self.events {
            let _ = write!(
                out,
                "<div style=\"border-left:4px solid {};padding:8px 12px;margin:0 0 16px\">\n\
                 <h2 style=\"font-size:16px;margin:0 0 8px\">{} <span style=\"color:{}\">{}</span></h2>\n\
                 <table style=\"border-collapse:collapse;font-size:14px\">\n",
                ev.tone.hex(),
                escape_html(&ev.heading),
                ev.tone.hex(),
                escape_html(&ev.status),
            );
            for (label, value) in &ev.rows {
                let _ = writeln!(
                    out,
                    "<tr><th style=\"text-align:left;padding:2px 12px 2px 0;color:#555;\
                     font-weight:normal;vertical-align:top;white-space:nowrap\">{}</th>\
                     <td style=\"padding:2px 0\">{}</td></tr>",
                    escape_html(label),
                    escape_html(value)
                );
            }
            out.push_str("</table>\n");
            if let Some((label, url)) = &ev.link {
                let _ = writeln!(
                    out,
                    "<p style=\"margin:8px 0 0\"><a href=\"{}\">{}</a></p>",
                    escape_html(url.as_str()),
                    escape_html(label)
                );
            }
            out.push_str("</div>\n");
        }
        let _ = write!(
            out,
            "<p style=\"color:#888;font-size:12px\">{}</p>\n</body></html>\n",
            escape_html(footer(self.language))
        );
        out
    }

    /// The events as Markdown, at most `budget` bytes: events that do not fit are
    /// summarised in one "and N more" line.
    pub(crate) fn markdown(&self, dialect: Dialect, budget: usize) -> String {
        let mut out = String::new();
        let total = self.events.len();
        for (i, ev) in self.events.iter().enumerate() {
            let part = event_markdown(ev, dialect, true);
            let reserve = if i + 1 < total { 64 } else { 0 };
            if out.len() + part.len() + reserve <= budget {
                out.push_str(&part);
                continue;
            }
            let mut skipped = total - i;
            if out.is_empty() {
                // Not even the first event fits: cut it.
                out.push_str(truncate_utf8(&part, budget.saturating_sub(64 + 5)));
                out.push_str("…\n\n");
                skipped -= 1;
            }
            if skipped > 0 {
                out.push_str(&escape(&more_line(self.language, skipped), dialect));
            }
            break;
        }
        while out.ends_with('\n') {
            out.pop();
        }
        out
    }
}

/// One event as Markdown: the bold heading and status (unless `heading` is false, for
/// Slack, which shows them as the attachment's title), a list of rows, the link.
pub(crate) fn event_markdown(ev: &EventView, dialect: Dialect, heading: bool) -> String {
    let mut out = String::new();
    let bullet = match dialect {
        Dialect::Markdown => "- ",
        Dialect::Slack => "• ",
    };
    if heading {
        let _ = match dialect {
            Dialect::Markdown => writeln!(
                out,
                "**{}**: {}",
                escape_md(&ev.heading),
                escape_md(&ev.status)
            ),
            Dialect::Slack => writeln!(
                out,
                "*{}*: {}",
                escape_slack(&ev.heading),
                escape_slack(&ev.status)
            ),
        };
    }
    for (label, value) in &ev.rows {
        let _ = writeln!(
            out,
            "{bullet}{}: {}",
            escape(label, dialect),
            escape(value, dialect)
        );
    }
    if let Some((label, url)) = &ev.link {
        // Our URLs percent-encode everything but unreserved characters (see
        // `host_link`), so they cannot close the link syntax.
        let _ = match dialect {
            Dialect::Markdown => writeln!(out, "{bullet}[{}]({})", escape_md(label), url),
            Dialect::Slack => writeln!(out, "{bullet}<{}|{}>", url, escape_slack(label)),
        };
    }
    out.push('\n');
    out
}

fn escape(s: &str, dialect: Dialect) -> String {
    match dialect {
        Dialect::Markdown => escape_md(s),
        Dialect::Slack => escape_slack(s),
    }
}

/// Text for HTML content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Markdown: a backslash before the characters that start emphasis, code or HTML, and
/// before a `]` that would close a link (`](` or `][`). Brackets elsewhere stay as
/// they are, so `[CRITICAL]` and `[10, 80]` read the same in chat apps whose Markdown
/// shows backslashes literally; `_` too (CommonMark does not read intraword
/// underscores, as in `disk_used`, as emphasis).
pub(crate) fn escape_md(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let link_close = c == ']' && matches!(chars.peek(), Some('(' | '['));
        if link_close || matches!(c, '\\' | '`' | '*' | '<' | '>' | '~') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Slack mrkdwn: `&`, `<`, `>` as entities (Slack's own rule).
pub(crate) fn escape_slack(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub(crate) fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Control characters (newlines included) as spaces.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn footer(lang: Language) -> &'static str {
    match lang {
        Language::En => "Sent by hostscope",
        Language::ZhCn => "由 hostscope 发送",
    }
}

fn more_line(lang: Language, n: usize) -> String {
    match lang {
        Language::En => format!("… and {n} more"),
        Language::ZhCn => format!("…… 另有 {n} 条"),
    }
}

fn severity_tag(lang: Language, s: Severity) -> &'static str {
    match (lang, s) {
        (Language::En, Severity::Critical) => "CRITICAL",
        (Language::En, Severity::Warning) => "WARNING",
        (Language::ZhCn, Severity::Critical) => "严重",
        (Language::ZhCn, Severity::Warning) => "警告",
    }
}

fn severity_word(lang: Language, s: Severity) -> &'static str {
    match (lang, s) {
        (Language::En, Severity::Critical) => "critical",
        (Language::En, Severity::Warning) => "warning",
        (Language::ZhCn, _) => severity_tag(lang, s),
    }
}

/// The kind in a subject: `firing` / `告警`.
fn kind_word(lang: Language, k: EventKind) -> &'static str {
    match (lang, k) {
        (Language::En, EventKind::Firing) => "firing",
        (Language::En, EventKind::Resolved) => "resolved",
        (Language::En, EventKind::Reminder) => "still firing",
        (Language::ZhCn, EventKind::Firing) => "告警",
        (Language::ZhCn, EventKind::Resolved) => "已恢复",
        (Language::ZhCn, EventKind::Reminder) => "仍在告警",
    }
}

fn subject(n: &Notification, lang: Language) -> String {
    let severity = n
        .events
        .iter()
        .map(|e| e.severity)
        .max()
        .unwrap_or_default();
    let tag = severity_tag(lang, severity);
    let text = match n.events.as_slice() {
        [] => match lang {
            Language::En => format!("[{tag}] {}: no alerts", n.group),
            Language::ZhCn => format!("[{tag}] {}：无告警", n.group),
        },
        [e] => match &e.host {
            Some(host) => format!("[{tag}] {host}: {} {}", e.rule, kind_word(lang, e.kind)),
            None => format!("[{tag}] {} {}", e.rule, kind_word(lang, e.kind)),
        },
        events => {
            let first_host = events[0].host.as_deref();
            let who =
                if first_host.is_some() && events.iter().all(|e| e.host.as_deref() == first_host) {
                    first_host.unwrap_or_default().to_owned()
                } else {
                    n.group.clone()
                };
            let count = |k: EventKind| events.iter().filter(|e| e.kind == k).count();
            let parts: Vec<String> = [EventKind::Firing, EventKind::Reminder, EventKind::Resolved]
                .into_iter()
                .filter(|k| count(*k) > 0)
                .map(|k| match lang {
                    Language::En => format!("{} {}", count(k), kind_word(lang, k)),
                    Language::ZhCn => format!("{} {} 条", kind_word(lang, k), count(k)),
                })
                .collect();
            match lang {
                Language::En => format!(
                    "[{tag}] {who}: {} alerts ({})",
                    events.len(),
                    parts.join(", ")
                ),
                Language::ZhCn => format!(
                    "[{tag}] {who}: {} 条告警（{}）",
                    events.len(),
                    parts.join("，")
                ),
            }
        }
    };
    let text = clean(&text);
    if text.chars().count() > 200 {
        let mut cut: String = text.chars().take(199).collect();
        cut.push('…');
        cut
    } else {
        text
    }
}

struct Labels {
    value: &'static str,
    band: &'static str,
    score: &'static str,
    reason: &'static str,
    started: &'static str,
    at: &'static str,
    duration: &'static str,
    labels: &'static str,
    flapping: &'static str,
    flapping_value: &'static str,
}

fn labels(lang: Language, kind: EventKind) -> Labels {
    match lang {
        Language::En => Labels {
            value: "Value",
            band: "Band",
            score: "Score",
            reason: "Reason",
            started: "Started",
            at: match kind {
                EventKind::Firing => "Fired at",
                EventKind::Resolved => "Resolved at",
                EventKind::Reminder => "Reminder at",
            },
            duration: "Duration",
            labels: "Labels",
            flapping: "Flapping",
            flapping_value: "yes: further notifications are held until the alert is stable",
        },
        Language::ZhCn => Labels {
            value: "当前值",
            band: "阈值范围",
            score: "异常分数",
            reason: "原因",
            started: "开始时间",
            at: match kind {
                EventKind::Firing => "触发时间",
                EventKind::Resolved => "恢复时间",
                EventKind::Reminder => "提醒时间",
            },
            duration: "持续时间",
            labels: "标签",
            flapping: "状态抖动",
            flapping_value: "是：告警稳定之前暂停通知",
        },
    }
}

fn event_view(e: &AlertEvent, lang: Language, web_url: Option<&Url>) -> EventView {
    let l = labels(lang, e.kind);
    let rule = clean(&e.rule);
    let host = e.host.as_deref().map(clean);
    let heading = match (&host, lang) {
        (Some(h), Language::En) => format!("{rule} on {h}"),
        (Some(h), Language::ZhCn) => format!("{h} · {rule}"),
        (None, _) => rule,
    };
    let status = match lang {
        Language::En => format!(
            "{} ({})",
            kind_word(lang, e.kind).to_uppercase(),
            severity_word(lang, e.severity)
        ),
        Language::ZhCn => format!(
            "{}（{}）",
            kind_word(lang, e.kind),
            severity_word(lang, e.severity)
        ),
    };
    let mut rows = Vec::new();
    if let Some(v) = e.value {
        rows.push((l.value, fmt_num(v)));
    }
    if e.lower.is_some() || e.upper.is_some() {
        rows.push((l.band, fmt_band(e.lower, e.upper)));
    }
    if let Some(s) = e.score {
        rows.push((l.score, fmt_num(s)));
    }
    if !e.reason.trim().is_empty() {
        rows.push((l.reason, clean(&e.reason)));
    }
    rows.push((l.started, fmt_utc(e.since_ms)));
    rows.push((l.at, fmt_utc(e.at_ms)));
    rows.push((
        l.duration,
        fmt_duration(e.at_ms.saturating_sub(e.since_ms), lang),
    ));
    if !e.labels.is_empty() {
        let joined: Vec<String> = e
            .labels
            .iter()
            .map(|(k, v)| format!("{}={}", clean(k), clean(v)))
            .collect();
        rows.push((l.labels, joined.join(", ")));
    }
    if e.flapping {
        rows.push((l.flapping, l.flapping_value.to_owned()));
    }
    let link = match (web_url, &e.host) {
        (Some(base), Some(h)) => host_link(base, h, e.at_ms).map(|url| {
            let h = clean(h);
            let label = match lang {
                Language::En => format!("Open {h} in hostscope"),
                Language::ZhCn => format!("在 hostscope 中查看 {h}"),
            };
            (label, url)
        }),
        _ => None,
    };
    EventView {
        heading,
        status,
        rows,
        link,
        tone: Tone::of_events([e]),
    }
}

/// `{web_url}/hosts/{host}?start={at-1h}&end={at+1h}`; the host is percent-encoded
/// down to RFC 3986's unreserved characters, so the URL needs no escaping in
/// Markdown or mrkdwn link syntax.
pub fn host_link(web_url: &Url, host: &str, at_ms: i64) -> Option<Url> {
    let mut base = web_url.clone();
    base.set_query(None);
    base.set_fragment(None);
    let mut encoded = String::with_capacity(host.len() * 3);
    for b in host.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(b));
        } else {
            let _ = write!(encoded, "%{b:02X}");
        }
    }
    let text = format!(
        "{}/hosts/{}?start={}&end={}",
        base.as_str().trim_end_matches('/'),
        encoded,
        at_ms.saturating_sub(3_600_000),
        at_ms.saturating_add(3_600_000)
    );
    Url::parse(&text).ok()
}

/// About five significant digits, no trailing zeros: `97.5`, `0.00012346`, `123457`.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let a = v.abs();
    if a == 0.0 {
        return "0".into();
    }
    if !(1e-9..1e15).contains(&a) {
        return format!("{v:.4e}");
    }
    let decimals = (4 - a.log10().floor() as i32).clamp(0, 12) as usize;
    let mut s = format!("{v:.decimals$}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" {
        s = "0".into();
    }
    s
}

/// `[10, 80]`; an open side is `-∞` / `+∞`.
pub fn fmt_band(lower: Option<f64>, upper: Option<f64>) -> String {
    format!(
        "[{}, {}]",
        lower.map_or_else(|| "-∞".to_owned(), fmt_num),
        upper.map_or_else(|| "+∞".to_owned(), fmt_num)
    )
}

/// `2024-05-01 12:00:00 UTC` (proleptic Gregorian, any i64 ms).
pub fn fmt_utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// The two largest units: `1h 5m`, `45s` / `1小时5分钟`, `45秒`.
pub fn fmt_duration(ms: i64, lang: Language) -> String {
    let secs = ms.max(0) / 1000;
    let units: [(i64, &str, &str); 4] = [
        (86_400, "d", "天"),
        (3600, "h", "小时"),
        (60, "m", "分钟"),
        (1, "s", "秒"),
    ];
    let mut parts = Vec::new();
    let mut rest = secs;
    for (size, en, zh) in units {
        let n = rest / size;
        rest %= size;
        let part = || match lang {
            Language::En => format!("{n}{en}"),
            Language::ZhCn => format!("{n}{zh}"),
        };
        if parts.is_empty() {
            if n > 0 {
                parts.push(part());
            }
        } else {
            // The next unit only: "1h 5m", and "1h" rather than "1h 0m".
            if n > 0 {
                parts.push(part());
            }
            break;
        }
    }
    if parts.is_empty() {
        return match lang {
            Language::En => "0s".into(),
            Language::ZhCn => "0秒".into(),
        };
    }
    match lang {
        Language::En => parts.join(" "),
        Language::ZhCn => parts.concat(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn event(kind: EventKind) -> AlertEvent {
        AlertEvent {
            id: "cpu-ewma/host=web-1".into(),
            rule: "cpu-ewma".into(),
            host: Some("web-1".into()),
            labels: BTreeMap::from([("team".into(), "ops".into())]),
            severity: Severity::Critical,
            kind,
            value: Some(97.5),
            lower: Some(10.0),
            upper: Some(80.0),
            score: Some(3.25),
            reason: "97.5 above the EWMA band [10, 80]".into(),
            at_ms: 1_714_565_100_000,    // 2024-05-01 12:05:00 UTC
            since_ms: 1_714_564_800_000, // 12:00:00
            anchor_ms: None,
            flapping: false,
        }
    }

    fn one(e: AlertEvent) -> Notification {
        Notification {
            group: "host=web-1".into(),
            events: vec![e],
        }
    }

    fn opts(lang: Language) -> RenderOptions {
        RenderOptions {
            language: lang,
            web_url: Some(Url::parse("https://mon.example.com/hs/").unwrap()),
        }
    }

    #[test]
    fn render_subjects_in_both_languages() {
        let cases = [
            (
                EventKind::Firing,
                Language::En,
                "[CRITICAL] web-1: cpu-ewma firing",
            ),
            (
                EventKind::Resolved,
                Language::En,
                "[CRITICAL] web-1: cpu-ewma resolved",
            ),
            (
                EventKind::Reminder,
                Language::En,
                "[CRITICAL] web-1: cpu-ewma still firing",
            ),
            (
                EventKind::Firing,
                Language::ZhCn,
                "[严重] web-1: cpu-ewma 告警",
            ),
            (
                EventKind::Resolved,
                Language::ZhCn,
                "[严重] web-1: cpu-ewma 已恢复",
            ),
        ];
        for (kind, lang, want) in cases {
            assert_eq!(render(&one(event(kind)), &opts(lang)).subject, want);
        }
        let mut e = event(EventKind::Firing);
        e.host = None;
        e.severity = Severity::Warning;
        assert_eq!(
            render(&one(e), &opts(Language::En)).subject,
            "[WARNING] cpu-ewma firing"
        );
    }

    #[test]
    fn render_counts_several_events() {
        let mut resolved = event(EventKind::Resolved);
        resolved.rule = "mem".into();
        let mut warn = event(EventKind::Firing);
        warn.severity = Severity::Warning;
        warn.rule = "disk".into();
        let n = Notification {
            group: "host=web-1".into(),
            events: vec![event(EventKind::Firing), warn, resolved],
        };
        assert_eq!(
            render(&n, &opts(Language::En)).subject,
            "[CRITICAL] web-1: 3 alerts (2 firing, 1 resolved)"
        );
        assert_eq!(
            render(&n, &opts(Language::ZhCn)).subject,
            "[严重] web-1: 3 条告警（告警 2 条，已恢复 1 条）"
        );
        let mut other = event(EventKind::Firing);
        other.host = Some("db-1".into());
        let n = Notification {
            group: "rule=cpu-ewma".into(),
            events: vec![event(EventKind::Firing), other],
        };
        assert_eq!(
            render(&n, &opts(Language::En)).subject,
            "[CRITICAL] rule=cpu-ewma: 2 alerts (2 firing)"
        );
    }

    #[test]
    fn render_text_has_values_band_times_and_link() {
        let r = render(&one(event(EventKind::Firing)), &opts(Language::En));
        let want = "[CRITICAL] web-1: cpu-ewma firing

cpu-ewma on web-1: FIRING (critical)
  Value: 97.5
  Band: [10, 80]
  Score: 3.25
  Reason: 97.5 above the EWMA band [10, 80]
  Started: 2024-05-01 12:00:00 UTC
  Fired at: 2024-05-01 12:05:00 UTC
  Duration: 5m
  Labels: team=ops
  Open web-1 in hostscope: https://mon.example.com/hs/hosts/web-1?start=1714561500000&end=1714568700000

-- 
Sent by hostscope
";
        assert_eq!(r.text, want);
        let zh = render(&one(event(EventKind::Resolved)), &opts(Language::ZhCn));
        for part in [
            "web-1 · cpu-ewma: 已恢复（严重）",
            "当前值: 97.5",
            "阈值范围: [10, 80]",
            "恢复时间: 2024-05-01 12:05:00 UTC",
            "持续时间: 5分钟",
            "在 hostscope 中查看 web-1: https://mon.example.com/hs/hosts/web-1?",
            "由 hostscope 发送",
        ] {
            assert!(zh.text.contains(part), "{part:?} not in\n{}", zh.text);
        }
        assert!(zh.html.contains("<html lang=\"zh-CN\">"));
    }

    #[test]
    fn render_escapes_hostile_names_everywhere() {
        let mut e = event(EventKind::Firing);
        e.rule = "<script>alert(1)</script>".into();
        e.host = Some("h\"><img src=x onerror=alert(1)>/../x y".into());
        e.reason = "a\r\nBcc: victim@example.com".into();
        e.labels = BTreeMap::from([("k<".into(), "v&".into())]);
        let r = render(&one(e), &opts(Language::En));
        assert!(!r.html.contains("<script>"), "{}", r.html);
        assert!(!r.html.contains("<img"), "{}", r.html);
        assert!(r.html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(r.html.contains("k&lt;=v&amp;"));
        assert!(!r.subject.contains('\n') && !r.subject.contains('\r'));
        assert!(r.text.contains("Reason: a  Bcc: victim@example.com"));
        // The host is one encoded path segment.
        assert!(
            r.text.contains(
                "/hs/hosts/h%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E%2F..%2Fx%20y?start="
            ),
            "{}",
            r.text
        );
        assert!(
            r.markdown.contains("\\<script\\>alert(1)\\</script\\>"),
            "{}",
            r.markdown
        );
        assert_eq!(
            escape_md(r"[x](javascript:y) [ok] *b* a\b"),
            r"[x\](javascript:y) [ok] \*b\* a\\b"
        );
        let view = View::new(&one(event(EventKind::Firing)), &opts(Language::En));
        let mut v2 = view.clone();
        v2.events[0].heading = "a <b> & c".into();
        assert!(v2
            .markdown(Dialect::Slack, usize::MAX)
            .starts_with("*a &lt;b&gt; &amp; c*"));
    }

    #[test]
    fn render_markdown_within_a_budget() {
        let n = Notification {
            group: "g".into(),
            events: (0..50).map(|_| event(EventKind::Firing)).collect(),
        };
        let view = View::new(&n, &opts(Language::En));
        let md = view.markdown(Dialect::Markdown, 2000);
        assert!(md.len() <= 2000, "{}", md.len());
        assert!(md.trim_end().ends_with("more"), "{md}");
        let full = view.markdown(Dialect::Markdown, usize::MAX);
        assert_eq!(full.matches("**cpu-ewma on web-1**").count(), 50);
        // One event larger than the budget is cut, still valid UTF-8.
        let zh = View::new(&n, &opts(Language::ZhCn)).markdown(Dialect::Markdown, 100);
        assert!(zh.len() <= 100, "{}", zh.len());
        assert!(zh.ends_with("…… 另有 49 条"), "{zh}");
    }

    #[test]
    fn formats() {
        for (v, want) in [
            (97.5, "97.5"),
            (0.0, "0"),
            (-0.0, "0"),
            (123456.789, "123457"),
            (0.000123456, "0.00012346"),
            (1.0 / 3.0, "0.33333"),
            (-2.5, "-2.5"),
            (1e20, "1.0000e20"),
        ] {
            assert_eq!(fmt_num(v), want, "{v}");
        }
        assert_eq!(fmt_band(None, Some(9.0)), "[-∞, 9]");
        assert_eq!(fmt_band(Some(1.5), None), "[1.5, +∞]");
        assert_eq!(fmt_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(fmt_utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(fmt_utc(-1000), "1969-12-31 23:59:59 UTC");
        assert_eq!(fmt_utc(i64::MAX).len(), fmt_utc(i64::MAX).len()); // no panic
        assert_eq!(fmt_duration(3_903_000, Language::En), "1h 5m");
        assert_eq!(fmt_duration(3_600_000, Language::En), "1h");
        assert_eq!(fmt_duration(45_000, Language::ZhCn), "45秒");
        assert_eq!(fmt_duration(90_061_000, Language::ZhCn), "1天1小时");
        assert_eq!(fmt_duration(-5, Language::En), "0s");
    }
}
