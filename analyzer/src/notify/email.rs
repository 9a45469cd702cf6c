//! E-mail: one message, multipart text + HTML, with inline images (reports) and
//! attachments, sent through `[smtp]` or written as an `.eml` file.
//!
//! MIME structure (parts only when present):
//! ```text
//! multipart/mixed                     only with attachments
//! ├── multipart/alternative
//! │   ├── text/plain
//! │   └── multipart/related           only with inline images
//! │       ├── text/html               refers to images as <img src="cid:CONTENT_ID">
//! │       └── image/png …             Content-ID: <CONTENT_ID>, inline
//! └── attachment …
//! ```
//! Headers are encoded by lettre (RFC 2047 for non-ASCII subjects and names); bodies
//! are UTF-8 in quoted-printable or base64, whichever lettre finds smaller.

use std::io::Write as _;
use std::path::Path;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use super::config::{SmtpSettings, SmtpTls, SmtpTransport};
use super::{error_chain, NotifyError};

/// A PNG shown inside the HTML part, referenced as `<img src="cid:{content_id}">`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineImage {
    /// Without angle brackets, e.g. `cpu-chart@hostscope`.
    pub content_id: String,
    pub png: Vec<u8>,
}

/// A file attached to the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub filename: String,
    /// A MIME type such as `text/csv`.
    pub content_type: String,
    pub data: Vec<u8>,
}

/// What an e-mail says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmailContent {
    pub subject: String,
    pub text: String,
    pub html: String,
    pub inline_images: Vec<InlineImage>,
    pub attachments: Vec<Attachment>,
}

/// Build the message `send_email` would send (also for tests and the file transport).
pub fn build_message(
    smtp: &SmtpSettings,
    to: &[Mailbox],
    content: EmailContent,
) -> Result<Message, NotifyError> {
    if to.is_empty() {
        return Err(NotifyError::Email("no recipients".into()));
    }
    let png = ContentType::parse("image/png")
        .map_err(|e| NotifyError::Email(format!("content type image/png: {e}")))?;
    let mut builder = Message::builder()
        .from(smtp.from.clone())
        .subject(content.subject)
        .message_id(None)
        .user_agent(concat!("hostscope/", env!("CARGO_PKG_VERSION")).to_owned());
    for m in to {
        builder = builder.to(m.clone());
    }
    let html = SinglePart::html(content.html);
    let alternative = if content.inline_images.is_empty() {
        MultiPart::alternative()
            .singlepart(SinglePart::plain(content.text))
            .singlepart(html)
    } else {
        let mut related = MultiPart::related().singlepart(html);
        for image in content.inline_images {
            if image.content_id.is_empty()
                || image
                    .content_id
                    .chars()
                    .any(|c| c.is_control() || matches!(c, '<' | '>' | ' '))
            {
                return Err(NotifyError::Email(format!(
                    "inline image content id {:?} must be non-empty, without spaces or <>",
                    image.content_id
                )));
            }
            related = related.singlepart(
                lettre::message::Attachment::new_inline(image.content_id)
                    .body(image.png, png.clone()),
            );
        }
        MultiPart::alternative()
            .singlepart(SinglePart::plain(content.text))
            .multipart(related)
    };
    let body = if content.attachments.is_empty() {
        alternative
    } else {
        let mut mixed = MultiPart::mixed().multipart(alternative);
        for a in content.attachments {
            let ct = ContentType::parse(&a.content_type).map_err(|e| {
                NotifyError::Email(format!(
                    "attachment {:?}: content type {:?}: {e}",
                    a.filename, a.content_type
                ))
            })?;
            mixed = mixed.singlepart(lettre::message::Attachment::new(a.filename).body(a.data, ct));
        }
        mixed
    };
    builder
        .multipart(body)
        .map_err(|e| NotifyError::Email(format!("cannot build the message: {e}")))
}

/// Send one e-mail to `to` through `smtp` (or write it to the file transport's
/// directory). Connection and command timeouts are `smtp.timeout`.
pub async fn send_email(
    smtp: &SmtpSettings,
    to: &[Mailbox],
    content: EmailContent,
) -> Result<(), NotifyError> {
    let message = build_message(smtp, to, content)?;
    match &smtp.transport {
        SmtpTransport::File { dir } => {
            let dir = dir.clone();
            let bytes = message.formatted();
            tokio::task::spawn_blocking(move || write_eml(&dir, &bytes))
                .await
                .map_err(|e| NotifyError::Email(format!("file transport task: {e}")))?
        }
        SmtpTransport::Smtp {
            host,
            port,
            tls,
            credentials,
            ca,
        } => {
            // The system's roots, plus `smtp.ca_file`'s; certificates are always verified.
            let tls_params = || {
                let mut builder = TlsParameters::builder(host.clone());
                if let Some(ca) = ca {
                    builder = builder.add_root_certificate(ca.certificates.clone());
                }
                builder.build().map_err(|e| {
                    NotifyError::Email(format!("TLS setup for {host}: {}", error_chain(&e)))
                })
            };
            let tls = match tls {
                SmtpTls::Starttls => Tls::Required(tls_params()?),
                SmtpTls::Tls => Tls::Wrapper(tls_params()?),
                SmtpTls::None => Tls::None,
            };
            let mut builder =
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
                    .port(*port)
                    .tls(tls)
                    .timeout(Some(smtp.timeout));
            if let Some((user, password)) = credentials {
                builder = builder.credentials(Credentials::new(
                    user.clone(),
                    password.expose_secret().to_owned(),
                ));
            }
            let transport = builder.build();
            // lettre's own timeout covers each command; this bounds the whole exchange
            // (a server that trickles bytes forever).
            let whole = smtp.timeout.saturating_mul(6);
            match tokio::time::timeout(whole, transport.send(message)).await {
                Ok(Ok(_response)) => Ok(()),
                Ok(Err(e)) => Err(NotifyError::Email(format!(
                    "{host}:{port}: {}",
                    describe_smtp_error(&e)
                ))),
                Err(_) => Err(NotifyError::Email(format!(
                    "{host}:{port}: no answer within {whole:?}"
                ))),
            }
        }
    }
}

/// lettre's error, with a hint at the key to check for the failures a config causes.
/// lettre's errors carry the server's replies, never the credentials sent.
fn describe_smtp_error(e: &lettre::transport::smtp::Error) -> String {
    // A failed TLS handshake reads "Connection error: Connection error: ...".
    let text = error_chain(e).replace("Connection error: Connection error: ", "Connection error: ");
    let hint = if text.contains("invalid peer certificate: UnknownIssuer") {
        Some(
            "the server's certificate is not trusted: no CA in the system's roots or in \
             smtp.ca_file signed it",
        )
    } else if e.status().is_some_and(|code| code.to_string() == "535") {
        Some("the server refused the login: check smtp.username and smtp.password")
    } else if text.contains("No compatible authentication mechanism") {
        Some(
            "the server does not offer authentication by PLAIN or LOGIN on this \
             connection: remove smtp.username and smtp.password, or use TLS if the server \
             offers it only there",
        )
    } else {
        None
    };
    match hint {
        Some(hint) => format!("{text} ({hint})"),
        None => text,
    }
}

/// Write `<unix ms>-<random>.eml` to a temporary name, sync it and rename it into
/// place, so a reader never sees half a message.
fn write_eml(dir: &Path, bytes: &[u8]) -> Result<(), NotifyError> {
    let io = |context: String| move |source| NotifyError::Io { context, source };
    std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let name = format!("{now_ms}-{:016x}.eml", rand::random::<u64>());
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        NotifyError::Io {
            context: format!("cannot write {}", path.display()),
            source: e,
        }
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn settings() -> SmtpSettings {
        SmtpSettings {
            transport: SmtpTransport::File {
                dir: "/nonexistent".into(),
            },
            from: "hostscope <alerts@example.com>".parse().unwrap(),
            to: vec![],
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn email_structure_with_inline_images_and_attachments() {
        let to = ["ops@example.com".parse().unwrap()];
        let content = EmailContent {
            subject: "s".into(),
            text: "t".into(),
            html: "<img src=\"cid:chart@hs\">".into(),
            inline_images: vec![InlineImage {
                content_id: "chart@hs".into(),
                png: vec![0x89, b'P', b'N', b'G'],
            }],
            attachments: vec![Attachment {
                filename: "data.csv".into(),
                content_type: "text/csv".into(),
                data: b"a,b\n".to_vec(),
            }],
        };
        let raw = String::from_utf8(
            build_message(&settings(), &to, content)
                .unwrap()
                .formatted(),
        )
        .unwrap();
        let pos = |needle: &str| {
            raw.find(needle)
                .unwrap_or_else(|| panic!("{needle:?} not in\n{raw}"))
        };
        assert!(pos("multipart/mixed") < pos("multipart/alternative"));
        assert!(pos("multipart/alternative") < pos("text/plain"));
        assert!(pos("text/plain") < pos("multipart/related"));
        assert!(pos("multipart/related") < pos("text/html"));
        assert!(pos("text/html") < pos("Content-ID: <chart@hs>"));
        assert!(pos("Content-ID: <chart@hs>") < pos("filename=\"data.csv\""));

        let bad = EmailContent {
            inline_images: vec![InlineImage {
                content_id: "a b".into(),
                png: vec![],
            }],
            ..EmailContent::default()
        };
        assert!(build_message(&settings(), &to, bad).is_err());
        assert!(build_message(&settings(), &[], EmailContent::default()).is_err());
    }
}
