//! The analyzer's background work besides evaluation: delivering the outbox, and
//! making and mailing anomaly reports (on their schedules, or once from the command
//! line).

use std::sync::Arc;
use std::time::Duration;

use hostscope_core::influx::{Client, TimeRange};
use tokio::sync::{watch, Notify};

use crate::notify::{
    config::parse_mailboxes, send_email, EmailContent, InlineImage, Mailbox, Notifier,
    NotifySettings, Outbox,
};
use crate::report::{self, Language, ReportSettings, ReportStore, UtcOffset};

/// The wall clock in unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Sleep until `until_ms`, `wake`, or stop; true when stopping.
async fn sleep_until(
    until_ms: i64,
    wake: Option<&Notify>,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let wait = Duration::from_millis(u64::try_from((until_ms - now_ms()).max(0)).unwrap_or(0));
    let woken = async {
        match wake {
            Some(w) => w.notified().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = stop.wait_for(|s| *s) => true,
        () = tokio::time::sleep(wait) => false,
        () = woken => false,
    }
}

/// Deliver what is due in the outbox whenever something is queued, and at least every
/// few seconds while deliveries wait for their next attempt.
pub async fn deliver(
    outbox: Arc<Outbox>,
    notifier: Arc<Notifier>,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let report = outbox.deliver_due(now_ms(), &notifier).await;
        for (channel, error) in &report.errors {
            tracing::warn!(message = "notification not delivered; will retry", %channel, %error);
        }
        if report.sent > 0 {
            tracing::info!(
                message = "notifications delivered",
                sent = report.sent,
                pending = report.pending
            );
        }
        let next = report
            .next_attempt_ms
            .unwrap_or(i64::MAX)
            .min(now_ms() + 60_000)
            .max(now_ms() + 200);
        if sleep_until(next, Some(&wake), &mut stop).await {
            return;
        }
    }
}

/// What a report needs besides its own settings.
#[derive(Clone)]
pub struct ReportContext {
    pub client: Client,
    pub notify: NotifySettings,
    pub store: Arc<ReportStore>,
}

/// One report to make now.
pub struct ReportJob<'a> {
    pub name: Option<&'a str>,
    pub range: TimeRange,
    pub hosts: Option<&'a [String]>,
    /// Empty: `smtp.to`.
    pub to: &'a [Mailbox],
    pub language: Option<Language>,
    pub offset: UtcOffset,
}

/// What a sent report was.
#[derive(Debug)]
pub struct ReportOutcome {
    pub id: String,
    pub subject: String,
    pub recipients: usize,
}

/// Gather, render, keep and mail one report.
pub async fn make_report(ctx: &ReportContext, job: ReportJob<'_>) -> anyhow::Result<ReportOutcome> {
    let smtp = ctx
        .notify
        .smtp
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("reports are sent by e-mail: configure [smtp]"))?;
    let to: Vec<Mailbox> = if job.to.is_empty() {
        smtp.to.clone()
    } else {
        job.to.to_vec()
    };
    if to.is_empty() {
        anyhow::bail!("no recipients: give --to, the report's `to`, or smtp.to");
    }
    let language = job.language.unwrap_or(ctx.notify.render.language);
    let opts = report::RenderOptions {
        language,
        web_url: ctx.notify.render.web_url.as_ref(),
        offset: job.offset,
        name: job.name,
    };
    let (data, content) = report::generate(&ctx.client, job.range, job.hosts, &opts).await?;
    let store = ctx.store.clone();
    let name = job.name.map(str::to_owned);
    let (d, c) = (data.clone(), content.clone());
    let meta = tokio::task::spawn_blocking(move || {
        store.save(now_ms(), name.as_deref(), language, &d, &c)
    })
    .await??;
    let email = EmailContent {
        subject: content.subject.clone(),
        text: content.text,
        html: content.html,
        inline_images: content
            .images
            .into_iter()
            .map(|(content_id, png)| InlineImage { content_id, png })
            .collect(),
        attachments: Vec::new(),
    };
    // A few tries: a report is one message, and the next one is a schedule away.
    let mut delay = Duration::from_secs(10);
    let mut attempt = 1;
    loop {
        match send_email(smtp, &to, email.clone()).await {
            Ok(()) => break,
            Err(e) if attempt < 4 => {
                tracing::warn!(message = "report not sent; will retry", report = %meta.id, attempt, error = %e);
                tokio::time::sleep(delay).await;
                delay *= 3;
                attempt += 1;
            }
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "the report was kept as {} but not sent: {e}",
                    meta.id
                ))
            }
        }
    }
    Ok(ReportOutcome {
        id: meta.id,
        subject: content.subject,
        recipients: to.len(),
    })
}

/// Run the scheduled reports until stopped. At start, the latest report each schedule
/// missed while the analyzer was down is made (retried a few times if, say, InfluxDB
/// is not up yet).
pub async fn schedule_reports(
    reports: Vec<ReportSettings>,
    ctx: ReportContext,
    mut stop: watch::Receiver<bool>,
) {
    if reports.is_empty() {
        return;
    }
    let start = now_ms();
    // Due times that passed while the analyzer was down.
    let made = match ctx.store.list() {
        Ok(made) => made,
        Err(error) => {
            tracing::warn!(message = "cannot list the reports made; missed ones are not made up", %error);
            Vec::new()
        }
    };
    for (i, due) in report::missed(&reports, &made, start) {
        tracing::info!(message = "making up a report missed while the analyzer was down", report = %reports[i].name, due_ms = due);
        let mut wait = Duration::from_secs(30);
        for attempt in 1..=5 {
            if send_scheduled(&ctx, &reports[i], due).await || stored(&ctx, &reports[i], due) {
                break;
            }
            if attempt == 5 {
                tracing::error!(message = "missed report not made; giving up", report = %reports[i].name);
                break;
            }
            let until =
                now_ms().saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
            if sleep_until(until, None, &mut stop).await {
                return;
            }
            wait *= 2;
        }
    }
    let mut next: Vec<i64> = reports.iter().map(|r| r.next_due(start)).collect();
    loop {
        let Some((i, due)) = next.iter().copied().enumerate().min_by_key(|(_, d)| *d) else {
            return;
        };
        if sleep_until(due, None, &mut stop).await {
            return;
        }
        next[i] = reports[i].next_due(due);
        send_scheduled(&ctx, &reports[i], due).await;
    }
}

/// Whether the report `r` due at `due` is in the store (made, whatever became of its
/// mail).
fn stored(ctx: &ReportContext, r: &ReportSettings, due: i64) -> bool {
    let Some(range) = r.range_at(due) else {
        return true; // nothing to retry
    };
    ctx.store.list().is_ok_and(|made| {
        made.iter()
            .any(|m| m.name.as_deref() == Some(r.name.as_str()) && m.end_ms >= range.end_ms)
    })
}

/// Make and mail the report `r` due at `due`; failures are logged. True when sent.
async fn send_scheduled(ctx: &ReportContext, r: &ReportSettings, due: i64) -> bool {
    let Some(range) = r.range_at(due) else {
        tracing::error!(message = "report period out of range", report = %r.name);
        return false;
    };
    let mut errors = hostscope_core::config::ConfigErrors::new("report");
    let to = parse_mailboxes("to", &r.to, &mut errors);
    let job = ReportJob {
        name: Some(&r.name),
        range,
        hosts: r.hosts.as_deref(),
        to: &to,
        language: r.language,
        offset: r.offset,
    };
    match make_report(ctx, job).await {
        Ok(o) => {
            tracing::info!(message = "report sent", report = %r.name, id = %o.id, recipients = o.recipients);
            true
        }
        Err(error) => {
            tracing::error!(message = "report failed", report = %r.name, %error);
            false
        }
    }
}
