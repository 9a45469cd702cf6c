//! Brings ECharts in from npm, like a crate, and prepares the embedded UI assets.
//!
//! 1. When `ui/node_modules/echarts/dist/echarts.min.js` is missing, runs `npm ci` in
//!    `ui/` (versions pinned by `ui/package.json` and `ui/package-lock.json`).
//! 2. Writes `$OUT_DIR/assets.rs`: one [`Asset`] per file of `ui/src/` plus
//!    `echarts.min.js`, each with its content type, a content hash (the ETag) and a
//!    gzip copy, and `VERSION`, a hash over all of them that goes into every asset URL
//!    (`/assets/<VERSION>/app.js`), so browsers may cache assets forever.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A build failure; `main` returning it prints the message (its `Debug` is its text).
struct BuildError(String);

impl std::fmt::Debug for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<std::io::Error> for BuildError {
    fn from(e: std::io::Error) -> Self {
        BuildError(e.to_string())
    }
}

/// Where ECharts' browser bundle lands after `npm ci`.
const ECHARTS: &str = "node_modules/echarts/dist/echarts.min.js";

fn main() -> Result<(), BuildError> {
    let manifest = PathBuf::from(env("CARGO_MANIFEST_DIR")?);
    let ui = manifest.join("ui");
    for watched in [
        "ui/package.json",
        "ui/package-lock.json",
        "ui/src",
        "ui/i18n",
        "ui/pages",
    ] {
        println!("cargo:rerun-if-changed={watched}");
    }
    println!("cargo:rerun-if-changed=ui/{ECHARTS}");

    let echarts = ui.join(ECHARTS);
    if !echarts.is_file() {
        npm_ci(&ui)?;
        if !echarts.is_file() {
            return Err(BuildError(format!(
                "`npm ci` in {} succeeded but {} is still missing; is echarts in ui/package.json?",
                ui.display(),
                echarts.display()
            )));
        }
    }

    let mut files: Vec<(String, PathBuf)> = Vec::new();
    collect(&ui.join("src"), "", &mut files)?;
    files.push(("echarts.min.js".to_owned(), echarts));
    files.sort();

    let out = PathBuf::from(env("OUT_DIR")?);
    let mut code = String::new();
    let mut version = Fnv::new();
    let mut entries = String::new();
    for (name, path) in &files {
        let bytes = std::fs::read(path)
            .map_err(|e| BuildError(format!("cannot read {}: {e}", path.display())))?;
        let hash = Fnv::of(&bytes);
        version.update(name.as_bytes());
        version.update(&hash.to_le_bytes());
        let gz_path = out.join(format!("{}.gz", name.replace('/', "__")));
        let gz = gzip(&bytes)?;
        // Only keep a gzip copy when it saves something worth a header.
        let gzip_expr = if gz.len() + 64 < bytes.len() {
            std::fs::write(&gz_path, &gz)?;
            format!("Some(include_bytes!({:?}))", path_str(&gz_path)?)
        } else {
            "None".to_owned()
        };
        let _ = writeln!(
            entries,
            "    Asset {{ path: {name:?}, content_type: {ct:?}, etag: \"\\\"{hash:016x}\\\"\", \
             etag_gzip: \"\\\"{hash:016x}-gz\\\"\", body: include_bytes!({p:?}), gzip: {gzip_expr} }},",
            ct = content_type(name)?,
            p = path_str(path)?,
        );
    }
    let _ = writeln!(code, "/// Hash over every asset; part of every asset URL.");
    let _ = writeln!(
        code,
        "pub const VERSION: &str = \"{:012x}\";",
        version.finish() >> 16
    );
    let _ = writeln!(code, "/// Every embedded asset, sorted by path.");
    let _ = writeln!(code, "pub static ASSETS: &[Asset] = &[\n{entries}];");
    std::fs::write(out.join("assets.rs"), code)?;
    Ok(())
}

fn env(name: &str) -> Result<String, BuildError> {
    std::env::var(name).map_err(|_| BuildError(format!("cargo did not set {name}")))
}

fn path_str(p: &Path) -> Result<&str, BuildError> {
    p.to_str()
        .ok_or_else(|| BuildError(format!("path {} is not UTF-8", p.display())))
}

/// Files under `dir`, as (`sub/dir/name`, path); dotfiles are skipped.
fn collect(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) -> Result<(), BuildError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| BuildError(format!("cannot list {}: {e}", dir.display())))?;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let rel = format!("{prefix}{name}");
        if entry.file_type()?.is_dir() {
            collect(&entry.path(), &format!("{rel}/"), out)?;
        } else {
            out.push((rel, entry.path()));
        }
    }
    Ok(())
}

fn content_type(name: &str) -> Result<&'static str, BuildError> {
    let ext = name.rsplit('.').next().unwrap_or_default();
    Ok(match ext {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "woff2" => "font/woff2",
        _ => {
            return Err(BuildError(format!(
                "ui/src/{name}: no content type known for .{ext}; add one in web/build.rs"
            )))
        }
    })
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>, BuildError> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes)?;
    Ok(enc.finish()?)
}

fn npm_ci(ui: &Path) -> Result<(), BuildError> {
    println!(
        "cargo:warning=installing the UI's npm packages (ECharts) with `npm ci` in {}",
        ui.display()
    );
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    let status = Command::new(npm)
        .args(["ci", "--include=dev", "--no-audit", "--no-fund"])
        .current_dir(ui)
        // Cargo reads a build script's stdout for directives: npm talks on stderr.
        .stdout(std::process::Stdio::from(std::io::stderr()))
        .status()
        .map_err(|e| {
            BuildError(format!(
                "hostscope-web embeds ECharts from the npm registry, and running `npm` failed: {e}. \
                 Install Node.js and npm (Debian: `apt-get install npm`), or run `npm ci` in {} yourself.",
                ui.display()
            ))
        })?;
    if !status.success() {
        return Err(BuildError(format!(
            "`npm ci` in {} failed ({status}); hostscope-web embeds ECharts from the npm registry. \
             Check that npm can reach the registry, then build again.",
            ui.display()
        )));
    }
    Ok(())
}

/// FNV-1a, 64 bits: a content fingerprint for cache busting, not a security hash.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn update(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
    fn of(bytes: &[u8]) -> u64 {
        let mut h = Fnv::new();
        h.update(bytes);
        h.finish()
    }
}
