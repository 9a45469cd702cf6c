//! `docs/configuration.md` documents every key of every section: each section's table
//! must list exactly the keys its config struct accepts (as serde sees them), and
//! every section the document has must be one the code has.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use hostscope_collector::inputs::{
    cpu, disk, diskio, http, listen, logmatch, mem, net, processes, procstat, procstat_top, system,
};
use hostscope_core::config::introspect::field_names;

/// Every documented section, named as its heading writes it inside backticks, and the
/// keys its struct accepts.
fn sections() -> Vec<(&'static str, Vec<&'static str>)> {
    use hostscope_analyzer::notify::config as notify;
    use hostscope_analyzer::rules;
    use hostscope_collector::setup::InputsConfig;
    use hostscope_collector::CollectorConfig;
    use hostscope_core::detect;
    use hostscope_web::config::{TokenConfig, UserConfig};
    vec![
        (
            "[influx]",
            field_names::<hostscope_core::config::InfluxConfig>(),
        ),
        ("[collector]", field_names::<CollectorConfig>()),
        ("[collector.inputs]", field_names::<InputsConfig>()),
        ("[collector.inputs.cpu]", field_names::<cpu::Config>()),
        ("[collector.inputs.mem]", field_names::<mem::Config>()),
        ("[collector.inputs.disk]", field_names::<disk::Config>()),
        ("[collector.inputs.diskio]", field_names::<diskio::Config>()),
        ("[collector.inputs.net]", field_names::<net::Config>()),
        ("[collector.inputs.system]", field_names::<system::Config>()),
        (
            "[collector.inputs.processes]",
            field_names::<processes::Config>(),
        ),
        (
            "[collector.inputs.procstat_top]",
            field_names::<procstat_top::Config>(),
        ),
        ("[collector.inputs.listen]", field_names::<listen::Config>()),
        (
            "collector.inputs.listen.expected[]",
            field_names::<listen::ExpectedPort>(),
        ),
        (
            "[[collector.inputs.procstat]]",
            field_names::<procstat::Config>(),
        ),
        (
            "[[collector.inputs.logmatch]]",
            field_names::<logmatch::Config>(),
        ),
        (
            "collector.inputs.logmatch.rules[]",
            field_names::<logmatch::Rule>(),
        ),
        ("[[collector.inputs.http]]", field_names::<http::Config>()),
        (
            "[analyzer]",
            field_names::<hostscope_analyzer::AnalyzerConfig>(),
        ),
        ("[[analyzer.rules]]", field_names::<rules::RuleConfig>()),
        (
            "detector = { type = \"threshold\" }",
            field_names::<detect::ThresholdConfig>(),
        ),
        (
            "detector = { type = \"ewma\" }",
            field_names::<detect::EwmaConfig>(),
        ),
        (
            "detector = { type = \"3sigma\" }",
            field_names::<detect::SigmaConfig>(),
        ),
        (
            "detector = { type = \"quantile\" }",
            field_names::<detect::QuantileConfig>(),
        ),
        (
            "detector = { type = \"novelty\" }",
            field_names::<detect::NoveltyConfig>(),
        ),
        (
            "detector = { type = \"iforest\" }",
            field_names::<rules::ForestRuleConfig>(),
        ),
        (
            "analyzer.rules[].detector.features[]",
            field_names::<rules::FeatureConfig>(),
        ),
        (
            "detector = { type = \"nodata\" }",
            field_names::<rules::NoDataConfig>(),
        ),
        (
            "[[analyzer.reports]]",
            field_names::<hostscope_analyzer::report::ReportConfig>(),
        ),
        (
            "[analyzer.channels.<name>] type = \"email\"",
            field_names::<notify::EmailChannelConfig>(),
        ),
        (
            "[analyzer.channels.<name>] type = \"webhook\"",
            field_names::<notify::WebhookChannelConfig>(),
        ),
        (
            "[analyzer.channels.<name>] type = \"slack\"",
            field_names::<notify::SlackChannelConfig>(),
        ),
        (
            "[analyzer.channels.<name>] type = \"dingtalk\"",
            field_names::<notify::DingtalkChannelConfig>(),
        ),
        (
            "[analyzer.channels.<name>] type = \"wecom\"",
            field_names::<notify::WecomChannelConfig>(),
        ),
        (
            "[analyzer.channels.<name>] type = \"feishu\"",
            field_names::<notify::FeishuChannelConfig>(),
        ),
        ("[smtp]", field_names::<notify::SmtpConfig>()),
        ("[web]", field_names::<hostscope_web::WebConfig>()),
        ("web.users[]", field_names::<UserConfig>()),
        ("web.api_tokens[]", field_names::<TokenConfig>()),
    ]
}

/// The document's section tables: a heading that is one code span (`` ### `[web]` ``)
/// starts a section named by the span's text; the backticked names in the first cell
/// of its table rows, up to the next heading, are its keys. Other headings (prose)
/// end a section and start none.
fn parse_doc(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut doc: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            let title = line.trim_start_matches('#').trim();
            current = title
                .strip_prefix('`')
                .and_then(|t| t.strip_suffix('`'))
                .filter(|t| !t.is_empty() && !t.contains('`'))
                .map(str::to_owned);
            if let Some(name) = &current {
                assert!(
                    doc.insert(name.clone(), Vec::new()).is_none(),
                    "docs/configuration.md: section `{name}` appears twice"
                );
            }
            continue;
        }
        let (Some(section), Some(row)) = (&current, line.strip_prefix('|')) else {
            continue;
        };
        let first = row.split('|').next().unwrap_or("").trim();
        // The header row (`key`) and the separator row (`---`) are not keys.
        if let Some(key) = first.strip_prefix('`').and_then(|k| k.strip_suffix('`')) {
            doc.get_mut(section).unwrap().push(key.to_owned());
        }
    }
    doc
}

fn doc_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn heading(section: &str) -> String {
    format!("`{section}`")
}

#[test]
fn config_doc_lists_every_key_of_every_section() {
    let doc = parse_doc(&doc_text());
    let mut problems = Vec::new();
    for (section, fields) in sections() {
        assert!(
            !fields.is_empty(),
            "{section}: no fields found by introspection"
        );
        let Some(documented) = doc.get(section) else {
            problems.push(format!(
                "{}: section missing from docs/configuration.md (keys: {})",
                heading(section),
                fields.join(", ")
            ));
            continue;
        };
        let code: BTreeSet<&str> = fields.iter().copied().collect();
        let mut seen = BTreeSet::new();
        for key in documented {
            if !seen.insert(key.as_str()) {
                problems.push(format!(
                    "{}: key `{key}` documented twice",
                    heading(section)
                ));
            }
        }
        let missing: Vec<&str> = code.difference(&seen).copied().collect();
        let extra: Vec<&str> = seen.difference(&code).copied().collect();
        if !missing.is_empty() {
            problems.push(format!(
                "{}: keys missing from the doc: {}",
                heading(section),
                missing.join(", ")
            ));
        }
        if !extra.is_empty() {
            problems.push(format!(
                "{}: keys in the doc the code does not know: {}",
                heading(section),
                extra.join(", ")
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "docs/configuration.md is out of date:\n{}",
        problems.join("\n")
    );
}

#[test]
fn config_doc_has_no_unknown_sections() {
    let known: BTreeSet<&str> = sections().into_iter().map(|(s, _)| s).collect();
    let unknown: Vec<String> = parse_doc(&doc_text())
        .into_keys()
        .filter(|s| !known.contains(s.as_str()))
        .map(|s| heading(&s))
        .collect();
    assert!(
        unknown.is_empty(),
        "docs/configuration.md documents sections no config struct has: {}",
        unknown.join(", ")
    );
}

#[test]
fn config_doc_parser_reads_tables() {
    let doc = parse_doc(
        "# Title\n\n### `[a.b]`\n\n| key | type | default | meaning |\n|---|---|---|---|\n\
         | `x` | bool | `true` | X. |\n| `y` | string | none | Y. |\n\n\
         ## Prose\n\n| `z` | not a key |\n### `[[a.c]]`\n| `w` | int | 1 | W. |\n",
    );
    assert_eq!(doc.len(), 2);
    assert_eq!(doc["[a.b]"], ["x", "y"]);
    assert_eq!(doc["[[a.c]]"], ["w"]);
}
