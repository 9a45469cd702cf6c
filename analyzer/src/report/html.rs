//! The report as an e-mail: a subject, a plain-text part, and HTML made for mail
//! clients (tables, inline styles only, no scripts, images as `cid:` references to
//! the PNG charts that travel with it). Every piece of data is escaped.

use hostscope_core::influx::TimeRange;
use reqwest::Url;

use super::chart::{self, Chart, ChartError, Line};
use super::data::{Anomaly, DiskReport, HostReport, ReportData, Stat};
use super::time::{format_period, UtcOffset};
use super::Language;

/// How to render.
#[derive(Debug, Clone, Copy, Default)]
pub struct RenderOptions<'a> {
    pub language: Language,
    /// The web UI's address; host names link to `{web_url}/hosts/{host}?start=&end=`.
    pub web_url: Option<&'a Url>,
    /// The offset the report's times are shown at.
    pub offset: UtcOffset,
    /// The scheduled report's name, shown in the subject and title.
    pub name: Option<&'a str>,
}

/// A rendered report.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportContent {
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part; images are `<img src="cid:{content_id}">`.
    pub html: String,
    /// `(content id, PNG)`, one chart per host, in the order of the HTML.
    pub images: Vec<(String, Vec<u8>)>,
}

struct Words {
    report: &'static str,
    host: &'static str,
    hosts: fn(usize) -> String,
    anomalies_n: fn(usize) -> String,
    availability: &'static str,
    cpu: &'static str,
    memory: &'static str,
    mean_peak: &'static str,
    disk: &'static str,
    disk_full: &'static str,
    mount: &'static str,
    used: &'static str,
    growth: &'static str,
    per_day: &'static str,
    days: fn(f64) -> String,
    not_growing: &'static str,
    anomalies: &'static str,
    no_anomalies: &'static str,
    no_hosts: &'static str,
    rule: &'static str,
    severity: &'static str,
    from: &'static str,
    until: &'static str,
    value: &'static str,
    reason: &'static str,
    ongoing: &'static str,
    anomaly_band: &'static str,
    chart_alt: &'static str,
    times_at: &'static str,
    full_in: &'static str,
    colon: &'static str,
    comma: &'static str,
    footer: &'static str,
}

const EN: Words = Words {
    report: "hostscope report",
    host: "Host",
    hosts: |n| format!("{n} host{}", if n == 1 { "" } else { "s" }),
    anomalies_n: |n| format!("{n} {}", if n == 1 { "anomaly" } else { "anomalies" }),
    availability: "Availability",
    cpu: "CPU",
    memory: "Memory",
    mean_peak: "mean / peak",
    disk: "Disks",
    disk_full: "Soonest full",
    mount: "Mount",
    used: "Used",
    growth: "Growth",
    per_day: "/day",
    days: |d| {
        if d < 1.0 {
            "< 1 day".to_owned()
        } else if d > 3650.0 {
            "> 10 years".to_owned()
        } else {
            let d = d.floor();
            format!("{d:.0} day{}", if d == 1.0 { "" } else { "s" })
        }
    },
    not_growing: "not growing",
    anomalies: "Anomalies",
    no_anomalies: "No anomalies.",
    no_hosts: "No host reported in this period.",
    rule: "Rule",
    severity: "Severity",
    from: "From",
    until: "Until",
    value: "Value",
    reason: "Reason",
    ongoing: "ongoing",
    anomaly_band: "anomaly",
    chart_alt: "CPU and memory use of",
    times_at: "times at UTC",
    full_in: "full in",
    colon: ": ",
    comma: ", ",
    footer: "Sent by hostscope-analyzer.",
};

const ZH: Words = Words {
    report: "hostscope 报告",
    host: "主机",
    hosts: |n| format!("{n} 台主机"),
    anomalies_n: |n| format!("{n} 个异常"),
    availability: "可用率",
    cpu: "CPU",
    memory: "内存",
    mean_peak: "平均 / 峰值",
    disk: "磁盘",
    disk_full: "最快写满",
    mount: "挂载点",
    used: "已用",
    growth: "增长",
    per_day: "/天",
    days: |d| {
        if d < 1.0 {
            "不到 1 天".to_owned()
        } else if d > 3650.0 {
            "超过 10 年".to_owned()
        } else {
            format!("{:.0} 天", d.floor())
        }
    },
    not_growing: "未增长",
    anomalies: "异常",
    no_anomalies: "无异常。",
    no_hosts: "此期间没有主机上报数据。",
    rule: "规则",
    severity: "级别",
    from: "开始",
    until: "结束",
    value: "值",
    reason: "原因",
    ongoing: "持续中",
    anomaly_band: "异常",
    chart_alt: "CPU 与内存使用率：",
    times_at: "时间为 UTC",
    full_in: "预计写满",
    colon: "：",
    comma: "，",
    footer: "由 hostscope-analyzer 发送。",
};

fn words(language: Language) -> &'static Words {
    match language {
        Language::En => &EN,
        Language::ZhCn => &ZH,
    }
}

/// `&`, `<`, `>`, `"` and `'` as entities.
pub use crate::notify::render::escape_html as escape;

/// The web page of `host` over `range`: `{base}/hosts/{host}?start=&end=`, the host
/// percent-encoded as one path segment. `None` when `base` cannot have a path.
pub fn host_url(base: &Url, host: &str, range: TimeRange) -> Option<Url> {
    let mut url = base.clone();
    url.set_fragment(None);
    url.set_query(None);
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .extend(["hosts", host]);
    url.query_pairs_mut()
        .append_pair("start", &range.start_ms.to_string())
        .append_pair("end", &range.end_ms.to_string());
    Some(url)
}

fn percent(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |v| format!("{v:.1}%"))
}

fn stat(s: Stat) -> String {
    format!("{} / {}", percent(s.mean), percent(s.peak))
}

/// Bytes in binary units: `512 B`, `1.5 GiB`.
pub fn bytes(v: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut x = v.abs();
    let mut unit = 0;
    while x >= 1024.0 && unit < units.len() - 1 {
        x /= 1024.0;
        unit += 1;
    }
    let sign = if v < 0.0 { "-" } else { "" };
    if unit == 0 {
        format!("{sign}{x:.0} B")
    } else {
        format!("{sign}{x:.1} {}", units[unit])
    }
}

fn signed_bytes(v: f64) -> String {
    if v > 0.0 {
        format!("+{}", bytes(v))
    } else {
        bytes(v)
    }
}

/// A value with at most two decimals, trailing zeros dropped.
fn number(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

fn days_to_full(w: &Words, d: &DiskReport) -> String {
    d.days_to_full
        .map_or_else(|| w.not_growing.to_owned(), |days| (w.days)(days))
}

/// The disk that fills soonest, as text.
fn soonest_full(w: &Words, h: &HostReport) -> String {
    h.disks
        .iter()
        .filter_map(|d| d.days_to_full.map(|days| (days, &d.path)))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map_or_else(
            || "—".to_owned(),
            |(days, path)| format!("{path}: {}", (w.days)(days)),
        )
}

fn growth(w: &Words, d: &DiskReport) -> String {
    match d.growth_per_day {
        Some(g) => format!(
            "{} ({}{})",
            signed_bytes(d.growth),
            signed_bytes(g),
            w.per_day
        ),
        None => signed_bytes(d.growth),
    }
}

/// Renders `data`: one chart per host, the HTML and text parts and the subject.
pub fn render(data: &ReportData, opts: &RenderOptions) -> Result<ReportContent, ChartError> {
    let w = words(opts.language);
    let range = data.range;
    let start = opts.offset.local(range.start_ms);
    let end = opts.offset.local(range.end_ms);
    // The subject names the last day the period covers: a daily report at 00:00 is
    // about the day before.
    let day = opts.offset.local(range.end_ms - 1).date();
    let period = format_period(range.duration_ms());
    let name = opts.name.map(|n| format!(" {n}")).unwrap_or_default();
    let counts = format!(
        "{}{}{}",
        (w.hosts)(data.hosts.len()),
        w.comma,
        (w.anomalies_n)(data.anomaly_count())
    );
    let (open, close) = match opts.language {
        Language::En => (" (", ")"),
        Language::ZhCn => ("（", "）"),
    };
    let subject = match opts.language {
        Language::En => format!("{}{name} {day} ({period}): {counts}", w.report),
        Language::ZhCn => format!("{}{name} {day}（{period}）：{counts}", w.report),
    };
    let span = format!(
        "{} – {}{open}{}{}{close}",
        start.date_time(),
        end.date_time(),
        w.times_at,
        opts.offset
    );
    let time = |ms: i64| opts.offset.local(ms).date_time();
    let link = |h: &HostReport| opts.web_url.and_then(|base| host_url(base, &h.host, range));

    // Charts.
    let mut images = Vec::with_capacity(data.hosts.len());
    for (i, h) in data.hosts.iter().enumerate() {
        let png = chart::render(&Chart {
            width: chart::WIDTH,
            height: chart::HEIGHT,
            range,
            lines: vec![
                Line {
                    points: &h.cpu_series,
                    color: chart::BLUE,
                },
                Line {
                    points: &h.mem_series,
                    color: chart::ORANGE,
                },
            ],
            bands: h
                .anomalies
                .iter()
                .map(|a| (a.start_ms, a.end_ms.unwrap_or(range.end_ms)))
                .collect(),
            y_min: Some(0.0),
            y_max: Some(100.0),
            y_suffix: "%",
            offset: opts.offset,
        })?;
        images.push((format!("chart-{i}@hostscope"), png));
    }

    // Text part.
    let mut text = format!("{subject}\n{span}\n");
    if data.hosts.is_empty() {
        text.push_str(&format!("\n{}\n", w.no_hosts));
    }
    for h in &data.hosts {
        text.push_str(&format!("\n== {} ==\n", h.host));
        if let Some(url) = link(h) {
            text.push_str(&format!("{url}\n"));
        }
        let c = w.colon;
        text.push_str(&format!(
            "{}{c}{:.2}%\n{} {}{c}{}\n{} {}{c}{}\n",
            w.availability,
            h.availability * 100.0,
            w.cpu,
            w.mean_peak,
            stat(h.cpu),
            w.memory,
            w.mean_peak,
            stat(h.mem)
        ));
        for d in &h.disks {
            text.push_str(&format!(
                "{} {}{c}{} {} / {}{}{} {}{}{} {}\n",
                w.disk,
                d.path,
                w.used,
                bytes(d.used_end),
                bytes(d.total),
                w.comma,
                w.growth,
                growth(w, d),
                w.comma,
                w.full_in,
                days_to_full(w, d)
            ));
        }
        if h.anomalies.is_empty() {
            text.push_str(&format!("{}\n", w.no_anomalies));
        } else {
            text.push_str(&format!("{}{}\n", w.anomalies, c.trim_end()));
        }
        for a in &h.anomalies {
            text.push_str(&format!("- {}\n", anomaly_line(w, a, &time)));
        }
    }
    text.push_str(&format!("\n{}\n", w.footer));

    // HTML part.
    let th = "padding:6px 8px;text-align:left;font-weight:600;color:#374151;background:#f9fafb;border-bottom:1px solid #e5e7eb;";
    let td = "padding:6px 8px;border-bottom:1px solid #f3f4f6;vertical-align:top;";
    let table = "width:100%;border-collapse:collapse;font-size:13px;margin:8px 0 12px;";
    let head = |cells: &[&str]| -> String {
        let cells: String = cells
            .iter()
            .map(|c| format!("<th style=\"{th}\">{}</th>", escape(c)))
            .collect();
        format!("<tr>{cells}</tr>")
    };
    let row = |cells: &[String]| -> String {
        let cells: String = cells
            .iter()
            .map(|c| format!("<td style=\"{td}\">{c}</td>"))
            .collect();
        format!("<tr>{cells}</tr>")
    };
    let host_name = |h: &HostReport| match link(h) {
        Some(url) => format!(
            "<a href=\"{}\" style=\"color:#1d4ed8;text-decoration:none;\">{}</a>",
            escape(url.as_str()),
            escape(&h.host)
        ),
        None => escape(&h.host),
    };
    let lang = match opts.language {
        Language::En => "en",
        Language::ZhCn => "zh-CN",
    };
    let mut html = String::with_capacity(8192);
    html.push_str(&format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{}</title></head>\n\
         <body style=\"margin:0;padding:16px;background:#f3f4f6;color:#111827;\
         font-family:-apple-system,'Segoe UI',Helvetica,Arial,'PingFang SC','Microsoft YaHei',sans-serif;\">\n\
         <table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" style=\"width:100%;max-width:680px;\
         margin:0 auto;background:#ffffff;border-collapse:collapse;\">\n\
         <tr><td style=\"padding:16px 20px 8px;\"><h1 style=\"font-size:20px;margin:0 0 4px;\">{}</h1>\
         <p style=\"margin:0;color:#6b7280;font-size:13px;\">{}</p></td></tr>\n",
        escape(&subject),
        escape(&format!("{}{name}", w.report)),
        escape(&format!("{span} · {counts}")),
    ));

    // Summary.
    html.push_str("<tr><td style=\"padding:0 20px 8px;\">");
    if data.hosts.is_empty() {
        html.push_str(&format!(
            "<p style=\"font-size:14px;\">{}</p>",
            escape(w.no_hosts)
        ));
    } else {
        html.push_str(&format!("<table style=\"{table}\">"));
        html.push_str(&head(&[
            w.host,
            w.availability,
            &format!("{} {}", w.cpu, w.mean_peak),
            &format!("{} {}", w.memory, w.mean_peak),
            w.disk_full,
            w.anomalies,
        ]));
        for h in &data.hosts {
            let count = h.anomalies.len();
            let count = if count > 0 {
                format!("<span style=\"color:#b91c1c;font-weight:600;\">{count}</span>")
            } else {
                "0".to_owned()
            };
            html.push_str(&row(&[
                host_name(h),
                escape(&format!("{:.2}%", h.availability * 100.0)),
                escape(&stat(h.cpu)),
                escape(&stat(h.mem)),
                escape(&soonest_full(w, h)),
                count,
            ]));
        }
        html.push_str("</table>");
    }
    html.push_str("</td></tr>\n");

    // Hosts.
    let swatch = |color: chart::Rgb, label: &str| {
        format!(
            "<span style=\"display:inline-block;width:10px;height:10px;background:#{:02x}{:02x}{:02x};\
             margin:0 4px 0 12px;\"></span>{}",
            color[0],
            color[1],
            color[2],
            escape(label)
        )
    };
    for (h, (cid, _)) in data.hosts.iter().zip(&images) {
        html.push_str(&format!(
            "<tr><td style=\"padding:12px 20px;border-top:1px solid #e5e7eb;\">\
             <h2 style=\"font-size:16px;margin:0 0 6px;\">{}</h2>\
             <p style=\"margin:0 0 6px;font-size:12px;color:#4b5563;\">{}: {:.2}%{}{}{}</p>\
             <img src=\"cid:{}\" width=\"{}\" height=\"{}\" alt=\"{}\" \
             style=\"display:block;width:100%;max-width:{}px;height:auto;border:0;\">",
            host_name(h),
            escape(w.availability),
            h.availability * 100.0,
            swatch(chart::BLUE, &format!("{} %", w.cpu)),
            swatch(chart::ORANGE, &format!("{} %", w.memory)),
            swatch(chart::RED, w.anomaly_band),
            escape(cid),
            chart::WIDTH,
            chart::HEIGHT,
            escape(&format!("{} {}", w.chart_alt, h.host)),
            chart::WIDTH,
        ));
        if !h.disks.is_empty() {
            html.push_str(&format!(
                "<h3 style=\"font-size:14px;margin:12px 0 0;\">{}</h3><table style=\"{table}\">",
                escape(w.disk)
            ));
            html.push_str(&head(&[w.mount, w.used, w.growth, w.disk_full]));
            for d in &h.disks {
                let pct = if d.total > 0.0 {
                    format!(" ({:.1}%)", d.used_end / d.total * 100.0)
                } else {
                    String::new()
                };
                html.push_str(&row(&[
                    escape(&d.path),
                    escape(&format!("{} / {}{pct}", bytes(d.used_end), bytes(d.total))),
                    escape(&growth(w, d)),
                    escape(&days_to_full(w, d)),
                ]));
            }
            html.push_str("</table>");
        }
        html.push_str(&format!(
            "<h3 style=\"font-size:14px;margin:12px 0 0;\">{}</h3>",
            escape(w.anomalies)
        ));
        if h.anomalies.is_empty() {
            html.push_str(&format!(
                "<p style=\"font-size:13px;color:#4b5563;margin:6px 0;\">{}</p>",
                escape(w.no_anomalies)
            ));
        } else {
            html.push_str(&format!("<table style=\"{table}\">"));
            html.push_str(&head(&[
                w.rule, w.severity, w.from, w.until, w.value, w.reason,
            ]));
            for a in &h.anomalies {
                let nowrap = |s: String| {
                    format!("<span style=\"white-space:nowrap;\">{}</span>", escape(&s))
                };
                html.push_str(&row(&[
                    escape(&a.rule),
                    escape(&a.severity),
                    nowrap(time(a.start_ms)),
                    nowrap(a.end_ms.map_or_else(|| w.ongoing.to_owned(), time)),
                    escape(&a.value.map(number).unwrap_or_default()),
                    escape(a.reason.as_deref().unwrap_or("")),
                ]));
            }
            html.push_str("</table>");
        }
        html.push_str("</td></tr>\n");
    }
    html.push_str(&format!(
        "<tr><td style=\"padding:12px 20px;font-size:12px;color:#9ca3af;\">{}</td></tr>\n\
         </table>\n</body></html>\n",
        escape(w.footer)
    ));

    Ok(ReportContent {
        subject,
        text,
        html,
        images,
    })
}

fn anomaly_line(w: &Words, a: &Anomaly, time: &dyn Fn(i64) -> String) -> String {
    let end = a.end_ms.map_or_else(|| w.ongoing.to_owned(), time);
    let mut s = format!("{} ({}) {} – {}", a.rule, a.severity, time(a.start_ms), end);
    if let Some(v) = a.value {
        s.push_str(&format!("{}{} {}", w.comma, w.value, number(v)));
    }
    if let Some(r) = a.reason.as_deref().filter(|r| !r.is_empty()) {
        s.push_str(&format!("{}{r}", w.colon));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn host(name: &str, anomalies: Vec<Anomaly>) -> HostReport {
        HostReport {
            host: name.to_owned(),
            availability: 0.5,
            cpu: Stat {
                mean: Some(12.34),
                peak: Some(99.0),
            },
            mem: Stat::default(),
            disks: vec![DiskReport {
                path: "/<data>".to_owned(),
                used_start: 1e9,
                used_end: 2e9,
                total: 4e9,
                free: 2e9,
                growth: 1e9,
                growth_per_day: Some(1e9),
                days_to_full: Some(2.0),
            }],
            anomalies,
            cpu_series: vec![(0, Some(10.0)), (HOUR, Some(20.0))],
            mem_series: vec![],
        }
    }

    fn data() -> ReportData {
        ReportData {
            range: TimeRange::new(1_700_000_000_000, 1_700_000_000_000 + 24 * HOUR).unwrap(),
            step_ms: 300_000,
            hosts: vec![
                host(
                    "web <1>",
                    vec![Anomaly {
                        rule: "cpu_high".to_owned(),
                        severity: "critical".to_owned(),
                        start_ms: 1_700_000_000_000 + HOUR,
                        end_ms: None,
                        value: Some(97.5),
                        reason: Some("<script>alert('x')</script> & more".to_owned()),
                    }],
                ),
                host("db/2", vec![]),
            ],
        }
    }

    #[test]
    fn english_report_escapes_links_and_references_every_image() {
        let base: Url = "https://mon.example.com/hs/".parse().unwrap();
        let offset: UtcOffset = "+08:00".parse().unwrap();
        let c = render(
            &data(),
            &RenderOptions {
                language: Language::En,
                web_url: Some(&base),
                offset,
                name: Some("ops daily"),
            },
        )
        .unwrap();
        // 1_700_000_000_000 + 24h = 2023-11-15 22:13:20 UTC = 2023-11-16 06:13 at +08:00.
        assert_eq!(
            c.subject,
            "hostscope report ops daily 2023-11-16 (24h): 2 hosts, 1 anomaly"
        );
        assert_eq!(c.images.len(), 2);
        for (cid, png) in &c.images {
            assert!(c.html.contains(&format!("src=\"cid:{cid}\"")), "{cid}");
            assert!(png.starts_with(b"\x89PNG"));
        }
        assert!(!c.html.contains("<script>"));
        assert!(c
            .html
            .contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more"));
        assert!(c.html.contains("web &lt;1&gt;"));
        assert!(c.html.contains("/&lt;data&gt;"));
        assert!(c.html.contains(
            "href=\"https://mon.example.com/hs/hosts/web%20%3C1%3E?start=1700000000000&amp;end=1700086400000\""
        ));
        assert!(c.html.contains("https://mon.example.com/hs/hosts/db%2F2?"));
        assert!(c.html.contains("ongoing"));
        assert!(c.html.contains("2 days"));
        assert!(c.text.contains("== web <1> =="));
        assert!(c
            .text
            .contains("cpu_high (critical) 2023-11-15 07:13 – ongoing, Value 97.5: <script>"));
        assert!(c.text.contains("(times at UTC+08:00)"));
        assert!(c.text.contains("+953.7 MiB (+953.7 MiB/day)"));
        // No style or script elements: inline styles only.
        assert!(!c.html.contains("<style") && !c.html.contains("<script"));
    }

    #[test]
    fn chinese_report() {
        let c = render(
            &data(),
            &RenderOptions {
                language: Language::ZhCn,
                ..RenderOptions::default()
            },
        )
        .unwrap();
        assert_eq!(
            c.subject,
            "hostscope 报告 2023-11-15（24h）：2 台主机，1 个异常"
        );
        assert!(c.html.contains("<html lang=\"zh-CN\">"));
        assert!(c.html.contains("持续中"));
        assert!(c.html.contains("可用率"));
        assert!(!c.html.contains("href="), "no web URL, no links");
        let empty = ReportData {
            hosts: vec![],
            ..data()
        };
        let c = render(&empty, &RenderOptions::default()).unwrap();
        assert!(c.subject.ends_with("0 hosts, 0 anomalies"));
        assert!(c.images.is_empty());
        assert!(c.html.contains("No host reported"));
    }

    #[test]
    fn formats() {
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(bytes(-3.0 * 1024.0 * 1024.0 * 1024.0), "-3.0 GiB");
        assert_eq!(number(97.5), "97.5");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(-0.001), "0");
        assert_eq!((EN.days)(0.5), "< 1 day");
        assert_eq!((EN.days)(1.7), "1 day");
        assert_eq!((EN.days)(5000.0), "> 10 years");
        assert_eq!(escape("a\"b'c"), "a&quot;b&#39;c");
        let range = TimeRange::new(1, 2).unwrap();
        let mailto: Url = "mailto:x@y".parse().unwrap();
        assert_eq!(host_url(&mailto, "h", range), None);
        let plain: Url = "http://h:8080".parse().unwrap();
        assert_eq!(
            host_url(&plain, "a?b#c", range).unwrap().as_str(),
            "http://h:8080/hosts/a%3Fb%23c?start=1&end=2"
        );
    }
}
