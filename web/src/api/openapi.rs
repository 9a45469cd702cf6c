//! `GET /api/v1/openapi.json`: an OpenAPI 3.0 description of every API route (a unit
//! test in `api` checks the routes and this document against each other).

use axum::Json;
use serde_json::{json, Value};

/// The handler.
pub async fn openapi() -> Json<Value> {
    Json(document())
}

fn time_param(name: &str, default: &str) -> Value {
    json!({
        "name": name,
        "in": "query",
        "required": false,
        "description": format!(
            "Unix milliseconds, an RFC 3339 time, `now` or `now-<duration>` (`now-1h`, `now-7d`). Default: {default}."
        ),
        "schema": { "type": "string" },
    })
}

fn query_param(name: &str, required: bool, description: &str) -> Value {
    json!({
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": { "type": "string" },
    })
}

fn path_param(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "path",
        "required": true,
        "description": description,
        "schema": { "type": "string" },
    })
}

fn ok(description: &str, schema: Value) -> Value {
    json!({
        "200": {
            "description": description,
            "content": { "application/json": { "schema": schema } },
        },
        "400": { "$ref": "#/components/responses/BadRequest" },
        "401": { "$ref": "#/components/responses/Unauthorized" },
        "500": { "$ref": "#/components/responses/Internal" },
        "503": { "$ref": "#/components/responses/Unavailable" },
    })
}

fn nullable(t: &str) -> Value {
    json!({ "type": t, "nullable": true })
}

/// The document.
pub fn document() -> Value {
    let range = || {
        vec![
            time_param("start", "an hour before end"),
            time_param("end", "now"),
        ]
    };
    let point = json!({
        "type": "array",
        "description": "[unix ms, value or null]",
        "items": { "oneOf": [{ "type": "integer" }, { "type": "number", "nullable": true }] },
        "minItems": 2,
        "maxItems": 2,
    });
    let host = json!({
        "type": "object",
        "properties": {
            "host": { "type": "string" },
            "state": { "type": "string", "enum": ["ok", "warning", "firing", "silent"] },
            "last_seen": nullable("integer"),
            "cpu": nullable("number"),
            "mem": nullable("number"),
            "disk": nullable("number"),
            "disk_path": nullable("string"),
            "load1": nullable("number"),
            "net_bytes_per_s": nullable("number"),
            "sparkline": { "type": "array", "items": point.clone() },
            "alerts": { "type": "integer", "description": "Active analyzer alerts of the host." },
        },
    });
    let series = json!({
        "type": "object",
        "properties": {
            "host": { "type": "string" },
            "measurement": { "type": "string" },
            "field": { "type": "string" },
            "agg": { "type": "string" },
            "rate": { "type": "boolean", "description": "Values are non-negative rates per second." },
            "counter": { "type": "boolean", "description": "The field is a counter of the built-in schema." },
            "step_ms": { "type": "integer" },
            "start": { "type": "integer" },
            "end": { "type": "integer" },
            "group_by": { "type": "array", "items": { "type": "string" } },
            "series": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "tags": { "type": "object", "additionalProperties": { "type": "string" } },
                        "points": { "type": "array", "items": point.clone(), "maxItems": 2000 },
                    },
                },
            },
        },
    });
    let process = json!({
        "type": "object",
        "properties": {
            "rank": { "type": "integer" },
            "pid": nullable("integer"),
            "name": nullable("string"),
            "user": nullable("string"),
            "cmdline": nullable("string"),
            "cpu_usage": nullable("number"),
            "memory_rss": nullable("integer"),
            "time": { "type": "integer" },
        },
    });
    let strings = json!({ "type": "array", "items": { "type": "string" } });
    let details = json!({
        "type": "object",
        "properties": {
            "host": { "type": "string" },
            "start": { "type": "integer" },
            "end": { "type": "integer" },
            "top_cpu": { "type": "array", "items": process.clone() },
            "top_memory": { "type": "array", "items": process },
            "listen": { "type": "array", "items": { "type": "object", "properties": {
                "proto": { "type": "string" },
                "address": { "type": "string" },
                "port": nullable("integer"),
                "pid": nullable("integer"),
                "process": nullable("string"),
                "time": { "type": "integer" },
            }}},
            "logmatch": { "type": "array", "items": { "type": "object", "properties": {
                "file": { "type": "string" },
                "rule": { "type": "string" },
                "count": { "type": "integer", "description": "Matching lines over the range." },
                "last_line": nullable("string"),
                "last_time": nullable("integer"),
            }}},
            "business": { "type": "array", "items": { "type": "object", "properties": {
                "measurement": { "type": "string" },
                "fields": strings.clone(),
            }}},
            "disks": strings.clone(),
            "interfaces": strings.clone(),
            "cpus": strings.clone(),
            "devices": strings,
        },
    });
    let proxied = |summary: &str, path_params: Vec<Value>| {
        json!({
            "summary": summary,
            "description": "Forwarded to the analyzer with its JSON body; the analyzer's status and JSON answer come back. Needs a session and the CSRF header (API tokens are read-only).",
            "parameters": path_params,
            "requestBody": {
                "required": false,
                "content": { "application/json": { "schema": { "type": "object" } } },
            },
            "responses": {
                "200": { "description": "The analyzer's answer.", "content": { "application/json": { "schema": { "type": "object" } } } },
                "400": { "$ref": "#/components/responses/BadRequest" },
                "401": { "$ref": "#/components/responses/Unauthorized" },
                "403": { "description": "Missing CSRF token, or a read-only API token." },
                "502": { "description": "The analyzer answered with something that is not JSON." },
                "503": { "description": "`{\"error\":\"no analyzer configured\"}` or `{\"error\":\"analyzer unavailable\"}`." },
            },
        })
    };
    let mut details_params = vec![path_param("host", "The host name.")];
    details_params.extend(range());
    let mut history_params = vec![query_param("host", false, "Only this host's alerts.")];
    history_params.extend(range());
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "hostscope web API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Read-only views of the metrics in InfluxDB and the analyzer's alerts and reports. Every 400 is `{\"error\":\"invalid parameter\",\"param\":…,\"message\":…}` and names the parameter; unknown and repeated parameters are refused.",
        },
        "security": [{ "bearer": [] }, { "session": [] }],
        "paths": {
            "/api/v1/hosts": {
                "get": {
                    "summary": "Every host that reported in the range, with its latest figures.",
                    "description": "A host whose last point is older than 3 collect intervals before the end (or now) is `silent`; `warning`/`firing` come from the analyzer's active alerts. Order: firing > silent > warning > ok.",
                    "parameters": range(),
                    "responses": ok("The hosts, by name.", json!({
                        "type": "object",
                        "properties": {
                            "start": { "type": "integer" },
                            "end": { "type": "integer" },
                            "alerts_source": { "type": "string", "enum": ["none", "analyzer", "unavailable"] },
                            "hosts": { "type": "array", "items": host },
                        },
                    })),
                },
            },
            "/api/v1/hosts/{host}/details": {
                "get": {
                    "summary": "A host's process, socket, log and business tables, and its disks, interfaces, CPUs and devices.",
                    "parameters": details_params,
                    "responses": ok("The tables.", details),
                },
            },
            "/api/v1/series": {
                "get": {
                    "summary": "One field of one host over a range, aggregated into at most `points` windows.",
                    "description": "step = max(step, collect interval, range/points) rounded up to 1s, 5s, 10s, 30s, 1m, 5m, 10m, 30m, 1h, 3h, 6h, 12h, 1d, 7d or whole days. Counters (net bytes/packets/errors/drops, diskio operations/bytes/times, swap in/out) are non-negative rates per second computed per interface/device and then summed over the series that share the group_by tags; `agg` does not apply to them.",
                    "parameters": [
                        query_param("host", true, "The host."),
                        query_param("measurement", true, "A measurement in the database (`cpu`, `net`, a business measurement…)."),
                        query_param("field", true, "A numeric field of the measurement."),
                        query_param("tags", false, "More equality filters: `k:v,k2:v2` (`cpu:cpu-total`)."),
                        time_param("start", "an hour before end"),
                        time_param("end", "now"),
                        query_param("step", false, "The shortest window wanted: `30s`, `5m`, or milliseconds."),
                        query_param("agg", false, "mean (default), max, min, last, sum, count, rate, or pNN (p95, p99.9)."),
                        query_param("points", false, "At most this many windows: 1 to 2000, default 1000."),
                        query_param("group_by", false, "Tag keys to split by, comma-separated. Absent: the measurement's identifying tag (cpu, path, name, interface…); empty: one series."),
                    ],
                    "responses": ok("The series, by tags.", series),
                },
            },
            "/api/v1/alerts": {
                "get": {
                    "summary": "The analyzer's active alerts.",
                    "responses": ok("`source` is `none` (no analyzer configured: an empty list) or `analyzer`.", json!({
                        "type": "object",
                        "properties": {
                            "source": { "type": "string", "enum": ["none", "analyzer"] },
                            "alerts": { "type": "array", "items": { "type": "object" } },
                        },
                    })),
                },
            },
            "/api/v1/alerts/history": {
                "get": {
                    "summary": "Firing periods from the `alerts` measurement.",
                    "parameters": history_params,
                    "responses": ok("Periods by start; `end` is null while an alert still fires.", json!({
                        "type": "object",
                        "properties": {
                            "start": { "type": "integer" },
                            "end": { "type": "integer" },
                            "periods": { "type": "array", "items": { "type": "object", "properties": {
                                "rule": { "type": "string" },
                                "severity": { "type": "string" },
                                "host": { "type": "string" },
                                "start": { "type": "integer" },
                                "end": nullable("integer"),
                            }}},
                        },
                    })),
                },
            },
            "/api/v1/alerts/{id}/ack": {
                "post": proxied("Acknowledge an alert (forwarded to the analyzer).", vec![path_param("id", "The alert id.")]),
            },
            "/api/v1/silences": {
                "post": proxied("Create a silence (forwarded to the analyzer).", vec![]),
            },
            "/api/v1/reports": {
                "get": {
                    "summary": "The anomaly reports the analyzer keeps, newest first.",
                    "description": "Each report's page is `/reports/{id}` (a page, not part of this API): the report's self-contained HTML, served with `Content-Security-Policy: default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox`.",
                    "responses": ok("`source` is `none` (no analyzer configured: an empty list) or `analyzer`.", json!({
                        "type": "object",
                        "properties": {
                            "source": { "type": "string", "enum": ["none", "analyzer"] },
                            "reports": { "type": "array", "items": { "type": "object", "properties": {
                                "id": { "type": "string", "pattern": "^[0-9]+(-[0-9]+)?$" },
                                "name": { "type": "string", "nullable": true, "description": "The scheduled report's name; null for a report made on demand." },
                                "created": { "type": "string", "format": "date-time" },
                                "start": { "type": "string", "format": "date-time" },
                                "end": { "type": "string", "format": "date-time" },
                                "subject": { "type": "string" },
                                "hosts": { "type": "integer" },
                                "anomalies": { "type": "integer" },
                            }}},
                        },
                    })),
                },
            },
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "This document.",
                    "responses": { "200": { "description": "OpenAPI 3.0", "content": { "application/json": { "schema": { "type": "object" } } } } },
                },
            },
        },
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "description": "A read-only API token from web.api_tokens (GET only)." },
                "session": { "type": "apiKey", "in": "cookie", "name": "hs_session", "description": "From POST /api/v1/login (named __Host-hs_session under TLS); other methods than GET also need the x-csrf-token header." },
            },
            "responses": {
                "BadRequest": {
                    "description": "A parameter is wrong.",
                    "content": { "application/json": { "schema": { "type": "object", "properties": {
                        "error": { "type": "string", "enum": ["invalid parameter"] },
                        "param": { "type": "string" },
                        "message": { "type": "string" },
                    }}}},
                },
                "Unauthorized": { "description": "Not logged in and no valid token." },
                "Internal": { "description": "`{\"error\":\"internal error\"}`; the details are in the server log." },
                "Unavailable": { "description": "`{\"error\":\"database unavailable\"}` (InfluxDB did not answer) or, for alerts and reports, `{\"error\":\"analyzer unavailable\"}`." },
            },
        },
    })
}
