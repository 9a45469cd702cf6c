//! Notifications end to end: real SMTP (aiosmtpd), a real HTTP receiver standing in for
//! the chat vendors, the outbox on a temp dir, configuration through the real loader.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use base64::Engine as _;
use hostscope_analyzer::notify::config::{SmtpSettings, SmtpTransport};
use hostscope_analyzer::notify::{
    render, send_email, AlertEvent, EmailContent, EventKind, InlineImage, Language, Notification,
    Notifier, Outbox, RenderOptions, SmtpTls,
};
use hostscope_analyzer::{FileConfig, Settings};
use hostscope_core::app::ProgramConfig;
use hostscope_core::config::{load, Sources};
use hostscope_core::detect::Severity;
use hostscope_tests::smtp::{SmtpSecurity, TestSmtp};
use mail_parser::{MessageParser, MimeHeaders};
use serde_json::{json, Value};

const NOW: i64 = 1_714_565_100_000; // 2024-05-01 12:05:00 UTC

fn event(rule: &str, host: &str, kind: EventKind) -> AlertEvent {
    AlertEvent {
        id: format!("{rule}/host={host}"),
        rule: rule.into(),
        host: Some(host.into()),
        labels: BTreeMap::from([("team".into(), "运维".into())]),
        severity: Severity::Critical,
        kind,
        value: Some(97.5),
        lower: Some(10.0),
        upper: Some(80.0),
        score: Some(3.2),
        reason: "97.5 高于 EWMA 区间 [10, 80]".into(),
        at_ms: NOW,
        since_ms: NOW - 300_000,
        anchor_ms: None,
        flapping: false,
    }
}

fn notification() -> Notification {
    Notification {
        group: "host=web-1".into(),
        events: vec![event("cpu-ewma", "web-1", EventKind::Firing)],
    }
}

/// Settings through the real loader and validation, from TOML text.
fn settings(toml_text: &str) -> Settings {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostscope.toml");
    std::fs::write(&path, toml_text).unwrap();
    let file: FileConfig = load(&Sources {
        file: Some(path),
        env: Some(Vec::new()),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    file.validate().unwrap_or_else(|e| panic!("{e}"))
}

fn smtp_to(server: &TestSmtp) -> SmtpSettings {
    SmtpSettings {
        transport: SmtpTransport::Smtp {
            host: server.host().into(),
            port: server.port(),
            tls: SmtpTls::None,
            credentials: None,
            ca: None,
        },
        from: "hostscope 监控 <alerts@example.com>".parse().unwrap(),
        to: vec!["ops@example.com".parse().unwrap()],
        timeout: Duration::from_secs(5),
    }
}

/// `[smtp]` for `server` through the real loader: `host`, `tls` and extra keys as given.
fn smtp_config(server: &TestSmtp, host: &str, tls: &str, extra: &str) -> SmtpSettings {
    settings(&format!(
        r#"
[smtp]
host = "{host}"
port = {port}
tls = "{tls}"
from = "alerts@example.com"
to = ["ops@example.com"]
timeout = "5s"
{extra}
"#,
        port = server.port()
    ))
    .notify
    .smtp
    .unwrap()
}

fn ca_file_key(server: &TestSmtp) -> String {
    format!("ca_file = \"{}\"", server.ca_file().display())
}

fn plain_content(subject: &str) -> EmailContent {
    EmailContent {
        subject: subject.into(),
        text: format!("{subject} text"),
        html: format!("<p>{subject}</p>"),
        ..EmailContent::default()
    }
}

/// Bytes that survive only an exact base64 round trip.
fn png_bytes() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(0..=255u8);
    png
}

#[tokio::test]
async fn notify_email_in_chinese_arrives_intact_with_inline_image() {
    let server = TestSmtp::start();
    let smtp = smtp_to(&server);
    let opts = RenderOptions {
        language: Language::ZhCn,
        web_url: Some("https://mon.example.com".parse().unwrap()),
    };
    let r = render(&notification(), &opts);
    assert_eq!(r.subject, "[严重] web-1: cpu-ewma 告警");
    let html = format!("{}<img src=\"cid:chart@hostscope\">", r.html);
    send_email(
        &smtp,
        &smtp.to,
        EmailContent {
            subject: r.subject.clone(),
            text: r.text.clone(),
            html: html.clone(),
            inline_images: vec![InlineImage {
                content_id: "chart@hostscope".into(),
                png: png_bytes(),
            }],
            attachments: Vec::new(),
        },
    )
    .await
    .unwrap();
    let raw = server
        .wait_for_messages(1, Duration::from_secs(10))
        .remove(0);
    // Headers travel as ASCII: the subject RFC 2047-encoded.
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n" || w.starts_with(b"\n\n"));
    let head = &raw[..head_end.unwrap_or(raw.len())];
    assert!(head.is_ascii(), "{}", String::from_utf8_lossy(head));
    assert!(String::from_utf8_lossy(head).contains("Subject: =?utf-8?"));

    let msg = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(msg.subject(), Some(r.subject.as_str()));
    let from = msg.from().unwrap().first().unwrap();
    assert_eq!(from.name(), Some("hostscope 监控"));
    assert_eq!(from.address(), Some("alerts@example.com"));
    let text = msg.body_text(0).unwrap().replace("\r\n", "\n");
    assert_eq!(text, r.text);
    assert!(text.contains("当前值: 97.5"));
    assert!(text.contains(
        "在 hostscope 中查看 web-1: https://mon.example.com/hosts/web-1?start=1714561500000&end=1714568700000"
    ));
    let got_html = msg.body_html(0).unwrap().replace("\r\n", "\n");
    assert_eq!(got_html, html);
    let images: Vec<_> = msg
        .attachments()
        .filter(|p| p.content_id() == Some("chart@hostscope"))
        .collect();
    assert_eq!(images.len(), 1);
    let image = images[0];
    let ct = image.content_type().unwrap();
    assert_eq!((ct.ctype(), ct.subtype()), ("image", Some("png")));
    assert_eq!(image.content_disposition().unwrap().ctype(), "inline");
    assert_eq!(image.contents(), png_bytes().as_slice());
}

#[tokio::test]
async fn notify_file_transport_writes_a_parseable_eml() {
    let dir = tempfile::tempdir().unwrap();
    let eml_dir = dir.path().join("var/outbox");
    let s = settings(&format!(
        r#"
[analyzer]
language = "zh-CN"
[smtp]
transport = "file"
dir = "{}"
from = "alerts@example.com"
to = "ops@example.com, dba@example.com"
"#,
        eml_dir.display()
    ));
    assert_eq!(s.notify.channel_names(), ["email"]);
    let notifier = Notifier::new(s.notify).unwrap();
    notifier.send("email", &notification(), NOW).await.unwrap();
    let files: Vec<_> = std::fs::read_dir(&eml_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().unwrap(), "eml");
    let raw = std::fs::read(&files[0]).unwrap();
    let msg = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(msg.subject(), Some("[严重] web-1: cpu-ewma 告警"));
    let to: Vec<&str> = msg
        .to()
        .unwrap()
        .iter()
        .filter_map(|a| a.address())
        .collect();
    assert_eq!(to, ["ops@example.com", "dba@example.com"]);
    assert!(msg
        .body_text(0)
        .unwrap()
        .contains("原因: 97.5 高于 EWMA 区间 [10, 80]"));
    assert!(msg.body_html(0).unwrap().contains("<html lang=\"zh-CN\">"));
}

#[tokio::test]
async fn notify_outbox_keeps_mail_while_smtp_is_down_and_sends_it_once() {
    let mut server = TestSmtp::stopped();
    let state = tempfile::tempdir().unwrap();
    let s = settings(&format!(
        r#"
[analyzer]
state_dir = "{}"
[smtp]
host = "127.0.0.1"
port = {}
tls = "none"
from = "alerts@example.com"
to = ["ops@example.com"]
timeout = "5s"
"#,
        state.path().display(),
        server.port()
    ));
    let notifier = Notifier::new(s.notify).unwrap();
    let outbox = Outbox::open(&s.state_dir).unwrap();
    let ids = outbox
        .enqueue(&notification(), &["email".into(), "email".into()], NOW)
        .unwrap();
    assert_eq!(ids.len(), 1, "one delivery per channel");
    // Durable before enqueue returned: the file is there.
    let files = std::fs::read_dir(outbox.dir()).unwrap().count();
    assert_eq!(files, 1);

    let report = outbox.deliver_due(NOW, &notifier).await;
    assert_eq!((report.sent, report.failed, report.pending), (0, 1, 1));
    assert!(
        report.errors[0].1.contains("e-mail: 127.0.0.1:"),
        "{report:?}"
    );
    let next = report.next_attempt_ms.unwrap();
    assert!((NOW + 24_000..=NOW + 36_000).contains(&next), "{next}");
    // Not due yet: nothing is tried.
    let report = outbox.deliver_due(NOW + 1000, &notifier).await;
    assert_eq!((report.sent, report.failed, report.pending), (0, 0, 1));

    // A restart of the analyzer keeps the delivery and its schedule.
    drop(outbox);
    let outbox = Outbox::open(&s.state_dir).unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox.next_attempt_ms(), Some(next));
    assert_eq!(outbox.stats().pending, 1);

    server.start_again();
    let report = outbox.deliver_due(NOW + 120_000, &notifier).await;
    assert_eq!(
        (report.sent, report.failed, report.pending),
        (1, 0, 0),
        "{report:?}"
    );
    let report = outbox.deliver_due(NOW + 3_600_000, &notifier).await;
    assert_eq!((report.sent, report.failed, report.pending), (0, 0, 0));
    let messages = server.messages();
    assert_eq!(messages.len(), 1, "delivered exactly once");
    let msg = MessageParser::default().parse(&messages[0]).unwrap();
    assert_eq!(msg.subject(), Some("[CRITICAL] web-1: cpu-ewma firing"));
    assert_eq!(std::fs::read_dir(outbox.dir()).unwrap().count(), 0);
    let stats = outbox.stats();
    assert_eq!(
        (
            stats.pending,
            stats.sent,
            stats.failed_attempts,
            stats.dropped
        ),
        (0, 1, 0, 0),
        "counters since this open"
    );

    // The same events queued again (an analyzer that crashed after queuing but before
    // saving its state judges the same steps again) are not sent again, also after a
    // restart.
    let email = ["email".to_owned()];
    let again = outbox.enqueue(&notification(), &email, NOW + 3_700_000);
    assert_eq!(again.unwrap(), Vec::<String>::new());
    drop(outbox);
    let outbox = Outbox::open(&s.state_dir).unwrap();
    let again = outbox.enqueue(&notification(), &email, NOW + 3_800_000);
    assert_eq!(again.unwrap(), Vec::<String>::new());
    // A group with that event and a new one queues the new one alone.
    let mut n = notification();
    let mut resolved = event("cpu-ewma", "web-1", EventKind::Resolved);
    resolved.at_ms += 600_000;
    n.events.push(resolved);
    assert_eq!(
        outbox.enqueue(&n, &email, NOW + 3_900_000).unwrap().len(),
        1
    );
    let report = outbox.deliver_due(NOW + 3_900_000, &notifier).await;
    assert_eq!((report.sent, report.pending), (1, 0), "{report:?}");
    let messages = server.messages();
    assert_eq!(messages.len(), 2);
    let msg = MessageParser::default().parse(&messages[1]).unwrap();
    assert_eq!(msg.subject(), Some("[CRITICAL] web-1: cpu-ewma resolved"));
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    query: BTreeMap<String, String>,
    headers: HeaderMap,
    body: Value,
}

type Log = Arc<Mutex<Vec<Seen>>>;

async fn receive(
    State(log): State<Log>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let query = reqwest::Url::parse(&format!("http://receiver{uri}"))
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let seen = Seen {
        path: uri.path().to_owned(),
        query,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let path = seen.path.clone();
    log.lock().unwrap().push(seen);
    // Each vendor's own way of saying yes or no (always HTTP 200 for the robots).
    match path.as_str() {
        "/dingtalk" | "/wecom" | "/wecom-at" => (StatusCode::OK, r#"{"errcode":0,"errmsg":"ok"}"#),
        "/dingtalk-bad" => (
            StatusCode::OK,
            r#"{"errcode":310000,"errmsg":"keywords not in content"}"#,
        ),
        "/feishu" => (
            StatusCode::OK,
            r#"{"StatusCode":0,"StatusMessage":"success","code":0,"data":{},"msg":"success"}"#,
        ),
        "/slack" => (StatusCode::OK, "ok"),
        "/hook" => (StatusCode::NO_CONTENT, ""),
        _ => (StatusCode::NOT_FOUND, "no such hook"),
    }
}

async fn receiver() -> (String, Log) {
    let log: Log = Arc::default();
    let app = axum::Router::new()
        .fallback(receive)
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), log)
}

fn hmac_b64(key: &[u8], msg: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, msg).as_ref())
}

/// An object's keys, sorted.
fn keys(v: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

#[tokio::test]
async fn notify_webhook_payloads_signatures_and_vendor_errors() {
    let (base, log) = receiver().await;
    let state = tempfile::tempdir().unwrap();
    let s = settings(&format!(
        r#"
[analyzer]
state_dir = "{state}"
web_url = "https://mon.example.com/hs/"

[analyzer.channels.hook]
type = "webhook"
url = "{base}/hook"
headers = {{ Authorization = "Bearer t0k" }}

[analyzer.channels.slack]
type = "slack"
url = "{base}/slack"

[analyzer.channels.ding]
type = "dingtalk"
url = "{base}/dingtalk?access_token=abc"
secret = "SEC123"
at_mobiles = ["13800000000"]

[analyzer.channels.ding-bad]
type = "dingtalk"
url = "{base}/dingtalk-bad?access_token=secret-token-xyz"

[analyzer.channels.wecom]
type = "wecom"
url = "{base}/wecom?key=k1"

[analyzer.channels.wecom-at]
type = "wecom"
url = "{base}/wecom-at?key=k2"
mentioned_mobile_list = ["13900000000"]

[analyzer.channels.feishu]
type = "feishu"
url = "{base}/feishu"
secret = "fs-secret"
"#,
        state = state.path().display()
    ));
    let names: Vec<String> = s
        .notify
        .channel_names()
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(
        names,
        ["ding", "ding-bad", "feishu", "hook", "slack", "wecom", "wecom-at"]
    );
    let opts = s.notify.render.clone();
    let notifier = Notifier::new(s.notify).unwrap();
    let outbox = Outbox::open(&s.state_dir).unwrap();
    let n = notification();
    let rendered = render(&n, &opts);
    outbox.enqueue(&n, &names, NOW).unwrap();

    let report = outbox.deliver_due(NOW, &notifier).await;
    assert_eq!(
        (report.sent, report.failed, report.pending),
        (6, 1, 1),
        "{report:?}"
    );
    let (channel, error) = &report.errors[0];
    assert_eq!(channel, "ding-bad");
    assert!(
        error.ends_with("refused the message: code 310000: keywords not in content"),
        "{error}"
    );
    assert!(!error.contains("secret-token-xyz"), "{error}");

    let seen: BTreeMap<String, Seen> = log
        .lock()
        .unwrap()
        .iter()
        .map(|s| (s.path.clone(), s.clone()))
        .collect();
    assert_eq!(seen.len(), 7);
    for s in seen.values() {
        assert_eq!(
            s.headers["content-type"], "application/json; charset=utf-8",
            "{}",
            s.path
        );
    }

    // Generic webhook: the notification plus subject and text, and our header.
    let hook = &seen["/hook"];
    assert_eq!(hook.headers["authorization"], "Bearer t0k");
    assert_eq!(
        hook.body,
        json!({
            "version": 1,
            "group": "host=web-1",
            "subject": rendered.subject,
            "text": rendered.text,
            "events": [{
                "id": "cpu-ewma/host=web-1",
                "rule": "cpu-ewma",
                "host": "web-1",
                "labels": {"team": "运维"},
                "severity": "critical",
                "kind": "firing",
                "value": 97.5,
                "lower": 10.0,
                "upper": 80.0,
                "score": 3.2,
                "reason": "97.5 高于 EWMA 区间 [10, 80]",
                "at_ms": NOW,
                "since_ms": NOW - 300_000,
                "flapping": false,
            }],
        })
    );
    // The schema round-trips.
    let back: Vec<AlertEvent> = serde_json::from_value(hook.body["events"].clone()).unwrap();
    assert_eq!(back, n.events);

    // Slack: text + one coloured attachment per event, mrkdwn link.
    let slack = &seen["/slack"].body;
    assert_eq!(keys(slack), ["attachments", "text"]);
    assert_eq!(slack["text"], "[CRITICAL] web-1: cpu-ewma firing");
    let att = &slack["attachments"][0];
    assert_eq!(
        keys(att),
        ["color", "fallback", "mrkdwn_in", "text", "title"]
    );
    assert_eq!(att["color"], "#d32f2f");
    assert_eq!(att["title"], "cpu-ewma on web-1: FIRING (critical)");
    assert_eq!(att["mrkdwn_in"], json!(["text"]));
    let text = att["text"].as_str().unwrap();
    assert!(
        text.starts_with("• Value: 97.5\n• Band: [10, 80]\n"),
        "{text}"
    );
    assert!(text.ends_with(
        "• <https://mon.example.com/hs/hosts/web-1?start=1714561500000&end=1714568700000|Open web-1 in hostscope>"
    ), "{text}");

    // DingTalk: markdown, @mention in text and in `at`, signature in the query.
    let ding = &seen["/dingtalk"];
    assert_eq!(
        ding.query.keys().collect::<Vec<_>>(),
        ["access_token", "sign", "timestamp"]
    );
    assert_eq!(ding.query["access_token"], "abc");
    assert_eq!(ding.query["timestamp"], NOW.to_string());
    assert_eq!(
        ding.query["sign"],
        hmac_b64(b"SEC123", format!("{NOW}\nSEC123").as_bytes())
    );
    assert_eq!(keys(&ding.body), ["at", "markdown", "msgtype"]);
    assert_eq!(ding.body["msgtype"], "markdown");
    assert_eq!(keys(&ding.body["markdown"]), ["text", "title"]);
    assert_eq!(ding.body["markdown"]["title"], rendered.subject);
    let md = ding.body["markdown"]["text"].as_str().unwrap();
    assert!(md.starts_with("### [CRITICAL] web-1: cpu-ewma firing\n\n**cpu-ewma on web-1**: FIRING (critical)\n- Value: 97.5\n"), "{md}");
    assert!(md.contains("- [Open web-1 in hostscope](https://mon.example.com/hs/hosts/web-1?start=1714561500000&end=1714568700000)"), "{md}");
    assert!(md.ends_with("\n\n@13800000000"), "{md}");
    assert_eq!(
        ding.body["at"],
        json!({"atMobiles": ["13800000000"], "isAtAll": false})
    );
    // Unsigned robot: no signature parameters.
    assert_eq!(seen["/dingtalk-bad"].query.len(), 1);

    // WeCom: markdown; with mentions, one text message.
    let wecom = &seen["/wecom"].body;
    assert_eq!(keys(wecom), ["markdown", "msgtype"]);
    assert_eq!(wecom["msgtype"], "markdown");
    assert_eq!(keys(&wecom["markdown"]), ["content"]);
    assert!(wecom["markdown"]["content"]
        .as_str()
        .unwrap()
        .starts_with("### <font color=\"warning\">[CRITICAL] web-1: cpu-ewma firing</font>\n**cpu-ewma on web-1**"));
    let wecom_at = &seen["/wecom-at"].body;
    assert_eq!(
        *wecom_at,
        json!({"msgtype": "text", "text": {"content": rendered.text, "mentioned_mobile_list": ["13900000000"]}})
    );

    // Feishu: interactive card, red header, lark_md elements, signed.
    let feishu = &seen["/feishu"].body;
    assert_eq!(keys(feishu), ["card", "msg_type", "sign", "timestamp"]);
    assert_eq!(feishu["msg_type"], "interactive");
    let ts = (NOW / 1000).to_string();
    assert_eq!(feishu["timestamp"], ts);
    assert_eq!(
        feishu["sign"],
        hmac_b64(format!("{ts}\nfs-secret").as_bytes(), b"")
    );
    let card = &feishu["card"];
    assert_eq!(
        card["header"],
        json!({"title": {"tag": "plain_text", "content": rendered.subject}, "template": "red"})
    );
    assert_eq!(card["elements"][0]["tag"], "div");
    assert_eq!(card["elements"][0]["text"]["tag"], "lark_md");
    assert!(card["elements"][0]["text"]["content"]
        .as_str()
        .unwrap()
        .starts_with("**cpu-ewma on web-1**: FIRING (critical)\n- Value: 97.5"));

    // The refused message stays, is retried after its backoff, and is given up (with
    // a count) only after the max age.
    assert_eq!(outbox.len(), 1);
    let report = outbox.deliver_due(NOW + 3_600_000, &notifier).await;
    assert_eq!(
        (report.sent, report.failed, report.dropped, report.pending),
        (0, 1, 0, 1)
    );
    let report = outbox.deliver_due(NOW + 25 * 3_600_000, &notifier).await;
    assert_eq!(
        (report.sent, report.failed, report.dropped, report.pending),
        (0, 0, 1, 0)
    );
    let stats = outbox.stats();
    assert_eq!(
        (
            stats.enqueued,
            stats.sent,
            stats.failed_attempts,
            stats.dropped,
            stats.pending
        ),
        (7, 6, 3, 1, 0)
    );
    assert_eq!(std::fs::read_dir(outbox.dir()).unwrap().count(), 0);
    assert_eq!(
        log.lock().unwrap().len(),
        9,
        "the refused robot was asked three times"
    );
}

#[tokio::test]
async fn notify_unreachable_webhook_and_http_errors_are_failures() {
    let (base, _log) = receiver().await;
    let state = tempfile::tempdir().unwrap();
    let dead = format!("http://127.0.0.1:{}", hostscope_tests::free_port());
    let s = settings(&format!(
        r#"
[analyzer]
state_dir = "{state}"
[analyzer.channels.gone]
type = "webhook"
url = "{base}/nowhere/token-123"
[analyzer.channels.dead]
type = "slack"
url = "{dead}/services/token-456"
timeout = "2s"
"#,
        state = state.path().display()
    ));
    let notifier = Notifier::new(s.notify).unwrap();
    let n = notification();
    let e = notifier
        .send("gone", &n, NOW)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(e, format!("{base} answered HTTP 404: no such hook"));
    let e = notifier
        .send("dead", &n, NOW)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.starts_with(&format!("cannot reach {dead}: ")), "{e}");
    assert!(!e.contains("token-456"), "{e}");
    let e = notifier
        .send("nope", &n, NOW)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(e, "channel `nope` is not configured");
}

#[tokio::test]
async fn notify_email_over_required_starttls_with_a_private_ca() {
    let server = TestSmtp::start_with(SmtpSecurity::Starttls);
    // The name the certificate carries, not the address.
    let smtp = smtp_config(&server, "localhost", "starttls", &ca_file_key(&server));
    assert!(matches!(
        &smtp.transport,
        SmtpTransport::Smtp { ca: Some(ca), .. } if ca.count == 1
    ));
    send_email(&smtp, &smtp.to, plain_content("over STARTTLS"))
        .await
        .unwrap();
    let raw = server
        .wait_for_messages(1, Duration::from_secs(10))
        .remove(0);
    let msg = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(msg.subject(), Some("over STARTTLS"));

    // The server really requires TLS: in clear text it refuses the sender.
    let clear = smtp_config(&server, "127.0.0.1", "none", "");
    let e = send_email(&clear, &clear.to, plain_content("in clear"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("530") && e.contains("STARTTLS"), "{e}");
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn notify_email_over_implicit_tls() {
    let server = TestSmtp::start_with(SmtpSecurity::ImplicitTls);
    // The certificate carries the address too.
    let smtp = smtp_config(&server, "127.0.0.1", "tls", &ca_file_key(&server));
    send_email(&smtp, &smtp.to, plain_content("over SMTPS"))
        .await
        .unwrap();
    let raw = server
        .wait_for_messages(1, Duration::from_secs(10))
        .remove(0);
    let msg = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(msg.subject(), Some("over SMTPS"));
}

#[tokio::test]
async fn notify_email_refuses_a_certificate_it_does_not_trust() {
    for (security, tls) in [
        (SmtpSecurity::Starttls, "starttls"),
        (SmtpSecurity::ImplicitTls, "tls"),
    ] {
        let server = TestSmtp::start_with(security);
        let smtp = smtp_config(
            &server,
            "localhost",
            tls,
            "username = \"alerts\"\npassword = \"hunter2-secret\"",
        );
        let e = send_email(&smtp, &smtp.to, plain_content("untrusted"))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("certificate is not trusted"), "{tls}: {e}");
        assert!(e.contains("smtp.ca_file"), "{tls}: {e}");
        assert!(!e.contains("hunter2"), "{tls}: {e}");
        assert!(server.messages().is_empty());
    }
}

/// aiosmtpd's command line cannot set up users: after STARTTLS it offers AUTH and refuses
/// every login, and without TLS it offers no AUTH at all. Both must fail clearly, without
/// the password.
#[tokio::test]
async fn notify_email_authentication_failures_are_clear() {
    let creds = "username = \"alerts\"\npassword = \"hunter2-secret\"";
    let server = TestSmtp::start_with(SmtpSecurity::Starttls);
    let extra = format!("{}\n{creds}", ca_file_key(&server));
    let smtp = smtp_config(&server, "localhost", "starttls", &extra);
    let e = send_email(&smtp, &smtp.to, plain_content("refused login"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("535"), "{e}");
    assert!(e.contains("smtp.username"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");

    let plain = TestSmtp::start();
    let smtp = smtp_config(&plain, "127.0.0.1", "none", creds);
    let e = send_email(&smtp, &smtp.to, plain_content("no auth"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not offer authentication"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
    assert!(server.messages().is_empty() && plain.messages().is_empty());
}
