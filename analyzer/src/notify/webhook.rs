//! HTTP channels: the generic webhook, Slack, DingTalk, WeCom and Feishu. The payload
//! shapes are described in the module docs of [`super`]; [`prepare`] builds them
//! (pure, so tests can check them byte for byte) and [`send`] posts them and reads the
//! answer.

use std::time::Duration;

use base64::Engine as _;
use reqwest::header::CONTENT_TYPE;
use reqwest::{StatusCode, Url};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use super::config::{ChannelSettings, SecretUrl};
use super::render::{self, escape_md, escape_slack, Dialect, RenderOptions, Tone, View};
use super::{error_chain, Notification, NotifyError};

/// DingTalk refuses messages over 20,000 bytes; keep a margin for the JSON around.
const DINGTALK_MAX_TEXT: usize = 18_000;
/// WeCom: markdown `content` at most 4,096 bytes, text `content` at most 2,048.
const WECOM_MAX_MARKDOWN: usize = 4_000;
const WECOM_MAX_TEXT: usize = 2_000;
/// Feishu refuses request bodies over 20 KB.
const FEISHU_MAX_MARKDOWN: usize = 14_000;
/// Slack: at most this many events as attachments; the rest are counted.
const SLACK_MAX_ATTACHMENTS: usize = 20;
/// Most bytes of an answer read (and at most 300 quoted in an error).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// How to tell a delivered message from a refused one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Any 2xx.
    Status,
    /// 2xx and JSON `errcode` 0 (DingTalk, WeCom).
    Errcode,
    /// 2xx and JSON `code` (or the older `StatusCode`) 0 (Feishu).
    Feishu,
}

/// One request, ready to post.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub url: Url,
    pub body: Value,
    pub answer: Answer,
}

/// `base64(HMAC-SHA256(key, msg))`.
pub fn hmac_sha256_base64(key: &[u8], msg: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, msg).as_ref())
}

/// DingTalk's `sign` for `timestamp_ms` (before URL encoding).
pub fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> String {
    hmac_sha256_base64(
        secret.as_bytes(),
        format!("{timestamp_ms}\n{secret}").as_bytes(),
    )
}

/// Feishu's `sign` for `timestamp_s`: the key is `timestamp + "\n" + secret`, the
/// message empty.
pub fn feishu_sign(secret: &str, timestamp_s: i64) -> String {
    hmac_sha256_base64(format!("{timestamp_s}\n{secret}").as_bytes(), b"")
}

/// Build the request `channel` gets for `n`. `now_ms` stamps the signatures.
pub(crate) fn prepare(
    channel: &ChannelSettings,
    n: &Notification,
    opts: &RenderOptions,
    now_ms: i64,
) -> Result<Prepared, NotifyError> {
    let view = View::new(n, opts);
    Ok(match channel {
        ChannelSettings::Email { .. } => {
            return Err(NotifyError::Email(
                "an e-mail channel is not an HTTP channel".into(),
            ))
        }
        ChannelSettings::Webhook { url, .. } => {
            let r = render::render(n, opts);
            Prepared {
                url: url.expose().clone(),
                body: json!({
                    "version": 1,
                    "group": n.group,
                    "subject": r.subject,
                    "text": r.text,
                    "events": n.events,
                }),
                answer: Answer::Status,
            }
        }
        ChannelSettings::Slack { url, .. } => Prepared {
            url: url.expose().clone(),
            body: slack_body(&view),
            answer: Answer::Status,
        },
        ChannelSettings::Dingtalk {
            url,
            secret,
            at_mobiles,
            at_all,
            ..
        } => {
            let mut text = format!(
                "### {}\n\n{}",
                escape_md(&view.subject),
                view.markdown(Dialect::Markdown, DINGTALK_MAX_TEXT)
            );
            if !at_mobiles.is_empty() {
                // DingTalk notifies a number only when the text mentions it too.
                text.push_str("\n\n");
                let mentions: Vec<String> = at_mobiles.iter().map(|m| format!("@{m}")).collect();
                text.push_str(&mentions.join(" "));
            }
            let mut url = url.expose().clone();
            if let Some(secret) = secret {
                let sign = dingtalk_sign(secret.expose_secret(), now_ms);
                url.query_pairs_mut()
                    .append_pair("timestamp", &now_ms.to_string())
                    .append_pair("sign", &sign);
            }
            Prepared {
                url,
                body: json!({
                    "msgtype": "markdown",
                    "markdown": {"title": view.subject, "text": text},
                    "at": {"atMobiles": at_mobiles, "isAtAll": at_all},
                }),
                answer: Answer::Errcode,
            }
        }
        ChannelSettings::Wecom {
            url,
            mentioned_mobile_list,
            ..
        } => {
            let body = if mentioned_mobile_list.is_empty() {
                let color = match view.tone {
                    Tone::Resolved => "info",
                    Tone::Critical | Tone::Warning => "warning",
                };
                let head = format!(
                    "### <font color=\"{color}\">{}</font>\n",
                    escape_md(&view.subject)
                );
                let rest = WECOM_MAX_MARKDOWN.saturating_sub(head.len());
                json!({
                    "msgtype": "markdown",
                    "markdown": {"content": head + &view.markdown(Dialect::Markdown, rest)},
                })
            } else {
                let text = render::render(n, opts).text;
                let mut content = render::truncate_utf8(&text, WECOM_MAX_TEXT).to_owned();
                if content.len() < text.len() {
                    content.push('…');
                }
                json!({
                    "msgtype": "text",
                    "text": {"content": content, "mentioned_mobile_list": mentioned_mobile_list},
                })
            };
            Prepared {
                url: url.expose().clone(),
                body,
                answer: Answer::Errcode,
            }
        }
        ChannelSettings::Feishu { url, secret, .. } => {
            let mut body = feishu_card(&view);
            if let Some(secret) = secret {
                let ts = now_ms.div_euclid(1000);
                body["timestamp"] = json!(ts.to_string());
                body["sign"] = json!(feishu_sign(secret.expose_secret(), ts));
            }
            Prepared {
                url: url.expose().clone(),
                body,
                answer: Answer::Feishu,
            }
        }
    })
}

fn slack_body(view: &View) -> Value {
    let mut attachments = Vec::new();
    for ev in view.events.iter().take(SLACK_MAX_ATTACHMENTS) {
        let text = render::event_markdown(ev, Dialect::Slack, false);
        let title = format!("{}: {}", ev.heading, ev.status);
        attachments.push(json!({
            "color": ev.tone.hex(),
            "fallback": escape_slack(&title),
            "title": escape_slack(&title),
            "text": text.trim_end(),
            "mrkdwn_in": ["text"],
        }));
    }
    let more = view.events.len().saturating_sub(SLACK_MAX_ATTACHMENTS);
    if more > 0 {
        let line = match view.language {
            super::Language::En => format!("… and {more} more"),
            super::Language::ZhCn => format!("…… 另有 {more} 条"),
        };
        attachments.push(json!({"color": view.tone.hex(), "fallback": line, "text": line}));
    }
    json!({"text": escape_slack(&view.subject), "attachments": attachments})
}

fn feishu_card(view: &View) -> Value {
    let template = match view.tone {
        Tone::Critical => "red",
        Tone::Warning => "orange",
        Tone::Resolved => "green",
    };
    let mut elements = Vec::new();
    let mut used = 0;
    for (i, ev) in view.events.iter().enumerate() {
        let content = render::event_markdown(ev, Dialect::Markdown, true);
        let content = content.trim_end();
        if used + content.len() > FEISHU_MAX_MARKDOWN && i > 0 {
            let more = view.events.len() - i;
            let line = match view.language {
                super::Language::En => format!("… and {more} more"),
                super::Language::ZhCn => format!("…… 另有 {more} 条"),
            };
            elements.push(json!({"tag": "div", "text": {"tag": "lark_md", "content": line}}));
            break;
        }
        used += content.len();
        if i > 0 {
            elements.push(json!({"tag": "hr"}));
        }
        let content = render::truncate_utf8(content, FEISHU_MAX_MARKDOWN);
        elements.push(json!({"tag": "div", "text": {"tag": "lark_md", "content": content}}));
    }
    json!({
        "msg_type": "interactive",
        "card": {
            "config": {"wide_screen_mode": true},
            "header": {
                "title": {"tag": "plain_text", "content": view.subject},
                "template": template,
            },
            "elements": elements,
        },
    })
}

fn timeout_of(channel: &ChannelSettings) -> Duration {
    match channel {
        ChannelSettings::Email { .. } => Duration::from_secs(10),
        ChannelSettings::Webhook { timeout, .. }
        | ChannelSettings::Slack { timeout, .. }
        | ChannelSettings::Dingtalk { timeout, .. }
        | ChannelSettings::Wecom { timeout, .. }
        | ChannelSettings::Feishu { timeout, .. } => *timeout,
    }
}

fn url_of(channel: &ChannelSettings) -> Option<&SecretUrl> {
    match channel {
        ChannelSettings::Email { .. } => None,
        ChannelSettings::Webhook { url, .. }
        | ChannelSettings::Slack { url, .. }
        | ChannelSettings::Dingtalk { url, .. }
        | ChannelSettings::Wecom { url, .. }
        | ChannelSettings::Feishu { url, .. } => Some(url),
    }
}

/// Post `n` to an HTTP channel and judge the answer.
pub(crate) async fn send(
    http: &reqwest::Client,
    channel: &ChannelSettings,
    n: &Notification,
    opts: &RenderOptions,
    now_ms: i64,
) -> Result<(), NotifyError> {
    let endpoint = url_of(channel).map(SecretUrl::endpoint).unwrap_or_default();
    let prepared = prepare(channel, n, opts, now_ms)?;
    let body = serde_json::to_vec(&prepared.body).map_err(|e| NotifyError::Http {
        endpoint: endpoint.clone(),
        message: format!("cannot encode the payload: {e}"),
    })?;
    let mut request = http
        .post(prepared.url)
        .timeout(timeout_of(channel))
        .header(CONTENT_TYPE, "application/json; charset=utf-8");
    if let ChannelSettings::Webhook { headers, .. } = channel {
        request = request.headers(headers.clone());
    }
    let mut response = request
        .body(body)
        .send()
        .await
        // reqwest's message would carry the URL, and with it the token.
        .map_err(|e| NotifyError::Http {
            endpoint: endpoint.clone(),
            message: error_chain(&e.without_url()),
        })?;
    let status = response.status();
    let mut answer = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_ANSWER_BYTES.saturating_sub(answer.len());
                answer.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if room <= chunk.len() {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                return Err(NotifyError::Http {
                    endpoint,
                    message: format!("reading the answer: {}", error_chain(&e.without_url())),
                })
            }
        }
    }
    judge(prepared.answer, status, &answer, &endpoint)
}

/// Delivered, or why not.
pub(crate) fn judge(
    kind: Answer,
    status: StatusCode,
    body: &[u8],
    endpoint: &str,
) -> Result<(), NotifyError> {
    let snippet = || {
        let text = String::from_utf8_lossy(body);
        let text: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let cut = render::truncate_utf8(text.trim(), 300).to_owned();
        if cut.is_empty() {
            "(empty body)".to_owned()
        } else {
            cut
        }
    };
    if !status.is_success() {
        return Err(NotifyError::Status {
            endpoint: endpoint.to_owned(),
            status: status.as_u16(),
            body: snippet(),
        });
    }
    let refused = |message: String| NotifyError::Vendor {
        endpoint: endpoint.to_owned(),
        message,
    };
    match kind {
        Answer::Status => Ok(()),
        Answer::Errcode | Answer::Feishu => {
            let Ok(v) = serde_json::from_slice::<Value>(body) else {
                return Err(refused(format!("the answer is not JSON: {}", snippet())));
            };
            let (code_keys, msg_keys): (&[&str], &[&str]) = match kind {
                Answer::Errcode => (&["errcode"], &["errmsg"]),
                _ => (&["code", "StatusCode"], &["msg", "StatusMessage"]),
            };
            let code = code_keys.iter().find_map(|k| v.get(*k));
            let message = msg_keys
                .iter()
                .find_map(|k| v.get(*k).and_then(Value::as_str))
                .unwrap_or("");
            match code.and_then(Value::as_i64) {
                Some(0) => Ok(()),
                Some(c) => Err(refused(format!("code {c}: {message}"))),
                None => Err(refused(format!(
                    "the answer has no {}: {}",
                    code_keys[0],
                    snippet()
                ))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use hostscope_core::detect::Severity;

    use super::*;
    use crate::notify::{AlertEvent, EventKind, Language};

    fn n() -> Notification {
        Notification {
            group: "host=web-1".into(),
            events: vec![AlertEvent {
                id: "cpu/web-1".into(),
                rule: "cpu".into(),
                host: Some("web-1".into()),
                labels: BTreeMap::new(),
                severity: Severity::Warning,
                kind: EventKind::Firing,
                value: Some(91.0),
                lower: None,
                upper: Some(90.0),
                score: None,
                reason: "91 above 90".into(),
                at_ms: 1_700_000_000_000,
                since_ms: 1_700_000_000_000,
                anchor_ms: None,
                flapping: false,
            }],
        }
    }

    fn url(s: &str) -> SecretUrl {
        SecretUrl::new(Url::parse(s).unwrap())
    }

    #[test]
    fn signatures_match_known_values() {
        // Recomputed independently with Python's hmac/hashlib/base64.
        assert_eq!(
            dingtalk_sign("SECtest", 1_700_000_000_000),
            "aZLLrriXgn05YbwaGR7knYsLeJADjr9NwLaNNKpxh4g="
        );
        assert_eq!(
            feishu_sign("sec", 1_700_000_000),
            "ttGYnPblC3CcNExnS7y5igm57JhpqZJtHpJ+TURiUeg="
        );
        assert_eq!(
            hmac_sha256_base64(b"key", b"The quick brown fox jumps over the lazy dog"),
            "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg="
        );
    }

    #[test]
    fn dingtalk_payload_mentions_and_signs() {
        let ch = ChannelSettings::Dingtalk {
            url: url("https://oapi.dingtalk.com/robot/send?access_token=T"),
            secret: Some(secrecy::SecretString::from("SECx".to_owned())),
            at_mobiles: vec!["13800000000".into()],
            at_all: false,
            timeout: Duration::from_secs(1),
        };
        let p = prepare(&ch, &n(), &RenderOptions::default(), 1_700_000_000_123).unwrap();
        let q: BTreeMap<String, String> = p.url.query_pairs().into_owned().collect();
        assert_eq!(q["access_token"], "T");
        assert_eq!(q["timestamp"], "1700000000123");
        assert_eq!(q["sign"], dingtalk_sign("SECx", 1_700_000_000_123));
        assert_eq!(p.body["msgtype"], "markdown");
        assert_eq!(p.body["markdown"]["title"], "[WARNING] web-1: cpu firing");
        assert!(p.body["markdown"]["text"]
            .as_str()
            .unwrap()
            .ends_with("\n\n@13800000000"));
        assert_eq!(
            p.body["at"],
            json!({"atMobiles": ["13800000000"], "isAtAll": false})
        );
    }

    #[test]
    fn judge_reads_vendor_codes() {
        let ok = StatusCode::OK;
        assert!(judge(Answer::Errcode, ok, br#"{"errcode":0,"errmsg":"ok"}"#, "e").is_ok());
        let e = judge(
            Answer::Errcode,
            ok,
            br#"{"errcode":310000,"errmsg":"sign not match"}"#,
            "https://oapi.dingtalk.com",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "https://oapi.dingtalk.com refused the message: code 310000: sign not match"
        );
        assert!(judge(Answer::Feishu, ok, br#"{"StatusCode":0}"#, "e").is_ok());
        assert!(judge(
            Answer::Feishu,
            ok,
            br#"{"code":19021,"msg":"bad sign"}"#,
            "e"
        )
        .is_err());
        assert!(judge(Answer::Feishu, ok, b"<html>", "e").is_err());
        assert!(judge(Answer::Status, ok, b"", "e").is_ok());
        let e = judge(
            Answer::Status,
            StatusCode::FORBIDDEN,
            b"invalid_token\n",
            "e",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "e answered HTTP 403: invalid_token");
    }

    #[test]
    fn wecom_with_mentions_sends_text() {
        let ch = ChannelSettings::Wecom {
            url: url("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K"),
            mentioned_mobile_list: vec!["@all".into()],
            timeout: Duration::from_secs(1),
        };
        let opts = RenderOptions {
            language: Language::ZhCn,
            web_url: None,
        };
        let p = prepare(&ch, &n(), &opts, 0).unwrap();
        assert_eq!(p.body["msgtype"], "text");
        assert_eq!(p.body["text"]["mentioned_mobile_list"], json!(["@all"]));
        assert!(p.body["text"]["content"]
            .as_str()
            .unwrap()
            .starts_with("[警告] web-1: cpu 告警"));
    }
}
