//! Files served from memory: the tree of `--static-dir` and the Socket.IO
//! client bundle of `--socketio-client`. Everything is read once, at
//! start-up, under `--static-max-bytes`; the reactor never touches the disk.
//! Which paths reach these files is the router's business.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha1::{Digest, Sha1};

use crate::proto::http::request::{Request, list_items, percent_decode};
use crate::proto::http::write_response;

/// `--static-max-bytes` default: every loaded file together.
pub const DEFAULT_MAX_BYTES: usize = 32 * 1024 * 1024;

/// Files in the static tree, whatever their size: bounds the table and the
/// start-up walk of a directory full of empty files.
pub const MAX_FILES: usize = 10_000;

/// Directory levels below `--static-dir` that are walked.
pub const MAX_DEPTH: usize = 32;

/// Where the client bundle is served, as the Node `socket.io` server does
/// (`/socket.io/socket.io(.msgpack|.esm)?(.min)?.js(.map)?`).
pub const CLIENT_PREFIX: &str = "/socket.io/";

/// Top-level names of soket's own paths (the router's table). Files there
/// are not loaded, so no spelling of a path (`/ws%2Fx`, `/he%61lthz`)
/// reaches a file that the plain spelling would not.
const OWN_PATHS: [&str; 6] = ["healthz", "metrics", "echo", "legacy", "ws", "socket.io"];

/// The file every `socket.io-client` `dist` folder has: its absence means
/// the flag points somewhere else.
const CLIENT_MAIN: &str = "socket.io.js";

/// Site files may change between restarts, so browsers ask again each time
/// (cheaply, with `If-None-Match`).
const SITE_CACHE_CONTROL: &str = "no-cache";

/// What the Node server sends with the client bundle.
const CLIENT_CACHE_CONTROL: &str = "public, max-age=0";

/// One file held in memory, ready to answer.
pub struct StaticFile {
    body: Arc<[u8]>,
    content_type: &'static str,
    /// A strong validator: a quoted digest of the bytes.
    etag: String,
    cache_control: &'static str,
}

impl StaticFile {
    fn new(body: Vec<u8>, content_type: &'static str, cache_control: &'static str) -> StaticFile {
        let digest = Sha1::digest(&body);
        let hex: String = digest.iter().take(10).map(|b| format!("{b:02x}")).collect();
        StaticFile { body: body.into(), content_type, etag: format!("\"{hex}\""), cache_control }
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }

    pub fn content_type(&self) -> &'static str {
        self.content_type
    }

    /// The quoted entity tag sent as `ETag`.
    pub fn etag(&self) -> &str {
        &self.etag
    }

    /// The complete answer to a GET or HEAD of this file: `304` when
    /// `If-None-Match` names its tag (RFC 9110 §13.1.2, weak comparison),
    /// otherwise `200` with the bytes (headers only for HEAD).
    pub fn respond(&self, req: &Request<'_, '_>, head_only: bool, close: bool) -> Vec<u8> {
        let headers = [
            ("ETag", self.etag.as_str()),
            ("Cache-Control", self.cache_control),
            ("X-Content-Type-Options", "nosniff"),
        ];
        if self.matches_if_none_match(req) {
            return not_modified(&headers, close);
        }
        write_response(200, &headers, self.content_type, &self.body, head_only, close)
    }

    fn matches_if_none_match(&self, req: &Request<'_, '_>) -> bool {
        let ours = self.etag.as_bytes();
        req.values("If-None-Match").flat_map(list_items).any(|tag| {
            // RFC 9110 §13.1.2: "*" matches any current representation;
            // otherwise compare opaque tags, ignoring a weak prefix.
            tag == b"*" || tag.strip_prefix(b"W/").unwrap_or(tag) == ours
        })
    }
}

/// RFC 9110 §15.4.5: a 304 carries the validators and caching fields a 200
/// would have, and no content (so no `Content-Length` that would have to
/// equal the 200's, RFC 9110 §8.6).
fn not_modified(headers: &[(&str, &str)], close: bool) -> Vec<u8> {
    let mut head = String::from("HTTP/1.1 304 Not Modified\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// Every file soket serves from memory. Empty when neither flag is given.
#[derive(Default)]
pub struct StaticFiles {
    /// `--static-dir`'s files by their path below it (`a/b.js`), UTF-8, `/`-separated.
    site: HashMap<String, StaticFile>,
    /// The client bundle by file name (`socket.io.min.js`).
    client: HashMap<String, StaticFile>,
    site_dir: Option<PathBuf>,
    client_dir: Option<PathBuf>,
    total_bytes: usize,
}

impl fmt::Debug for StaticFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticFiles")
            .field("site_dir", &self.site_dir)
            .field("site_files", &self.site.len())
            .field("client_dir", &self.client_dir)
            .field("client_files", &self.client.len())
            .field("total_bytes", &self.total_bytes)
            .finish()
    }
}

/// Why the files could not be loaded; start-up stops with it.
#[derive(Debug)]
pub enum LoadError {
    Io {
        path: PathBuf,
        error: io::Error,
    },
    /// The files together exceed `--static-max-bytes`.
    OverBudget {
        path: PathBuf,
        max_bytes: usize,
    },
    /// More than [`MAX_FILES`] files under `--static-dir`.
    TooManyFiles {
        dir: PathBuf,
    },
    /// `--socketio-client` has no `socket.io.js`.
    NotAClientDist {
        dir: PathBuf,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io { path, error } => write!(f, "cannot read {}: {error}", path.display()),
            LoadError::OverBudget { path, max_bytes } => write!(
                f,
                "static files exceed --static-max-bytes ({max_bytes} bytes) at {}; raise the limit or serve less",
                path.display()
            ),
            LoadError::TooManyFiles { dir } => {
                write!(f, "{} holds more than {MAX_FILES} files; serve a smaller directory", dir.display())
            }
            LoadError::NotAClientDist { dir } => write!(
                f,
                "{} has no {CLIENT_MAIN}: --socketio-client wants the dist folder of the npm package \
                 socket.io-client (node_modules/socket.io-client/dist)",
                dir.display()
            ),
        }
    }
}

impl std::error::Error for LoadError {}

impl StaticFiles {
    /// Reads `site_dir` (recursively) and the client bundle in `client_dir`
    /// into memory, all files together at most `max_bytes`. Dotfiles, files
    /// whose names are not UTF-8, soket's own paths (`healthz`, `ws/`,
    /// `socket.io/`, ...) and anything that is neither a regular file nor a
    /// directory are skipped; a symbolic link is followed only to a
    /// regular file inside `site_dir`.
    pub fn load(
        site_dir: Option<&Path>,
        client_dir: Option<&Path>,
        max_bytes: usize,
    ) -> Result<StaticFiles, LoadError> {
        let mut files = StaticFiles {
            site_dir: site_dir.map(Path::to_path_buf),
            client_dir: client_dir.map(Path::to_path_buf),
            ..StaticFiles::default()
        };
        let mut budget = Budget { left: max_bytes, max_bytes };
        if let Some(dir) = client_dir {
            files.load_client(dir, &mut budget)?;
        }
        if let Some(dir) = site_dir {
            files.load_site(dir, &mut budget)?;
        }
        files.total_bytes = max_bytes - budget.left;
        Ok(files)
    }

    /// The directories the files were loaded from (`--static-dir`, `--socketio-client`).
    pub fn sources(&self) -> (Option<&Path>, Option<&Path>) {
        (self.site_dir.as_deref(), self.client_dir.as_deref())
    }

    /// How many files, and their bytes together.
    pub fn totals(&self) -> (usize, usize) {
        (self.site.len() + self.client.len(), self.total_bytes)
    }

    /// `--static-dir`'s `index.html`, which `/` serves when it exists.
    pub fn index(&self) -> Option<&StaticFile> {
        self.site.get("index.html")
    }

    /// The client bundle file at `path` (query already stripped), or `None`
    /// (404) when `path` is no bundle path or the file is not in the folder.
    pub fn client_bundle(&self, path: &str) -> Option<&StaticFile> {
        let name = path.strip_prefix(CLIENT_PREFIX)?;
        is_client_bundle_name(name).then(|| self.client.get(name))?
    }

    /// The site file at request path `path` (query stripped, still
    /// percent-encoded). `None` (404) for anything that is not a loaded
    /// file: escapes that do not decode, non-UTF-8, NUL, backslashes, empty,
    /// `.` or `..` segments, dotfiles, and directories without `index.html`.
    pub fn site_file(&self, path: &str) -> Option<&StaticFile> {
        let decoded = percent_decode(path.strip_prefix('/')?.as_bytes())?;
        let decoded = std::str::from_utf8(&decoded).ok()?;
        if decoded.contains(['\0', '\\']) {
            return None;
        }
        // A directory is asked for with a trailing slash; its index answers.
        let key = if decoded.is_empty() || decoded.ends_with('/') {
            format!("{decoded}index.html")
        } else {
            decoded.to_owned()
        };
        if !key.split('/').all(is_servable_name) {
            return None;
        }
        self.site.get(&key)
    }

    fn load_client(&mut self, dir: &Path, budget: &mut Budget) -> Result<(), LoadError> {
        let entries = fs::read_dir(dir).map_err(|error| LoadError::Io { path: dir.to_path_buf(), error })?;
        for entry in entries {
            let entry = entry.map_err(|error| LoadError::Io { path: dir.to_path_buf(), error })?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
            if !is_client_bundle_name(&name) {
                continue;
            }
            let path = entry.path();
            // The npm folder holds plain files; follow a link there, the
            // operator chose the folder.
            let meta = fs::metadata(&path).map_err(|error| LoadError::Io { path: path.clone(), error })?;
            if !meta.is_file() {
                continue;
            }
            let body = budget.read(&path, meta.len())?;
            self.client.insert(name, StaticFile::new(body, content_type(&path), CLIENT_CACHE_CONTROL));
        }
        if !self.client.contains_key(CLIENT_MAIN) {
            return Err(LoadError::NotAClientDist { dir: dir.to_path_buf() });
        }
        Ok(())
    }

    fn load_site(&mut self, dir: &Path, budget: &mut Budget) -> Result<(), LoadError> {
        let root = dir.canonicalize().map_err(|error| LoadError::Io { path: dir.to_path_buf(), error })?;
        // An explicit stack bounded by MAX_DEPTH: no recursion on a deep tree.
        let mut pending = vec![(root.clone(), String::new(), 0usize)];
        while let Some((dir, prefix, depth)) = pending.pop() {
            let entries = fs::read_dir(&dir).map_err(|error| LoadError::Io { path: dir.clone(), error })?;
            for entry in entries {
                let entry = entry.map_err(|error| LoadError::Io { path: dir.clone(), error })?;
                let path = entry.path();
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    log::warn!("static: skipping {} (name is not UTF-8)", path.display());
                    continue;
                };
                if !is_servable_name(&name) {
                    continue;
                }
                if prefix.is_empty() && OWN_PATHS.contains(&name.as_str()) {
                    log::warn!("static: skipping {} (soket serves /{name} itself)", path.display());
                    continue;
                }
                let key = format!("{prefix}{name}");
                let meta = fs::symlink_metadata(&path).map_err(|error| LoadError::Io { path: path.clone(), error })?;
                if meta.is_dir() {
                    if depth + 1 < MAX_DEPTH {
                        pending.push((path, format!("{key}/"), depth + 1));
                    } else {
                        log::warn!("static: skipping {} (deeper than {MAX_DEPTH} levels)", path.display());
                    }
                    continue;
                }
                let len = if meta.is_file() {
                    meta.len()
                } else if meta.file_type().is_symlink() {
                    match linked_file_inside(&path, &root) {
                        Some(len) => len,
                        None => {
                            log::warn!("static: skipping {} (link to no file inside the directory)", path.display());
                            continue;
                        }
                    }
                } else {
                    // FIFOs, sockets, devices: reading one could block or never end.
                    continue;
                };
                if self.site.len() >= MAX_FILES {
                    return Err(LoadError::TooManyFiles { dir: root });
                }
                let body = budget.read(&path, len)?;
                let file = StaticFile::new(body, content_type(&path), SITE_CACHE_CONTROL);
                self.site.insert(key, file);
            }
        }
        Ok(())
    }
}

/// Bytes still allowed under `--static-max-bytes`.
struct Budget {
    left: usize,
    max_bytes: usize,
}

impl Budget {
    /// Reads `path` (whose metadata says `len` bytes) within the budget.
    fn read(&mut self, path: &Path, len: u64) -> Result<Vec<u8>, LoadError> {
        let over = || LoadError::OverBudget { path: path.to_path_buf(), max_bytes: self.max_bytes };
        let len = usize::try_from(len).map_err(|_| over())?;
        if len > self.left {
            return Err(over());
        }
        let io_error = |error| LoadError::Io { path: path.to_path_buf(), error };
        let file = fs::File::open(path).map_err(io_error)?;
        // The file may have grown since its metadata was read: never read
        // past the budget.
        let mut body = Vec::with_capacity(len);
        file.take(self.left as u64 + 1).read_to_end(&mut body).map_err(io_error)?;
        if body.len() > self.left {
            return Err(over());
        }
        self.left -= body.len();
        Ok(body)
    }
}

/// The length of the regular file `link` points to, if it lies inside `root`
/// (both resolved); `None` for a link out of the tree, to a directory, or dangling.
fn linked_file_inside(link: &Path, root: &Path) -> Option<u64> {
    let target = link.canonicalize().ok()?;
    if !target.starts_with(root) {
        return None;
    }
    let meta = fs::metadata(&target).ok()?;
    meta.is_file().then_some(meta.len())
}

/// A path segment a site file may have: not empty, no dotfile (which also
/// rules out `.` and `..`), no backslash or NUL.
fn is_servable_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['\\', '\0'])
}

/// The names the Node server answers under `/socket.io/`:
/// `socket.io(.msgpack|.esm)?(.min)?.js(.map)?`.
fn is_client_bundle_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("socket.io") else { return false };
    let rest = rest.strip_suffix(".map").unwrap_or(rest);
    let Some(rest) = rest.strip_suffix(".js") else { return false };
    let rest = rest.strip_suffix(".min").unwrap_or(rest);
    matches!(rest, "" | ".msgpack" | ".esm")
}

/// The `Content-Type` for a file, by its extension (case-insensitive).
pub fn content_type(path: &Path) -> &'static str {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        // RFC 9239 §6: text/javascript is the type for JavaScript, modules included.
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json; charset=utf-8",
        Some("txt") => "text/plain; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("ico") => "image/x-icon",
        Some("wasm") => "application/wasm",
        Some("woff2") => "font/woff2",
        Some("woff") => "font/woff",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    pub(crate) struct TempDir(pub PathBuf);

    impl TempDir {
        pub fn new(tag: &str) -> TempDir {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("soket-static-{tag}-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        pub fn write(&self, rel: &str, body: &[u8]) {
            let path = self.0.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, body).unwrap();
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn site() -> (TempDir, StaticFiles) {
        let dir = TempDir::new("site");
        dir.write("index.html", b"<h1>hi</h1>");
        dir.write("app.js", b"console.log(1)");
        dir.write("css/site.CSS", b"body{}");
        dir.write("docs/index.html", b"docs");
        dir.write("empty/.keep", b"");
        dir.write(".secret", b"no");
        dir.write(".git/config", b"no");
        dir.write("caf\u{e9} au lait.txt", b"latte");
        dir.write("ws/x", b"shadowed");
        dir.write("healthz", b"shadowed");
        dir.write("sub/healthz", b"not shadowed");
        let files = StaticFiles::load(Some(&dir.0), None, 1 << 20).unwrap();
        (dir, files)
    }

    #[test]
    fn lookups() {
        let (_dir, files) = site();
        assert_eq!(files.index().unwrap().body(), b"<h1>hi</h1>");
        assert_eq!(files.site_file("/").unwrap().body(), b"<h1>hi</h1>");
        assert_eq!(files.site_file("/app.js").unwrap().body(), b"console.log(1)");
        assert_eq!(files.site_file("/%61pp.js").unwrap().body(), b"console.log(1)");
        assert_eq!(files.site_file("/css/site.CSS").unwrap().content_type(), "text/css; charset=utf-8");
        assert_eq!(files.site_file("/docs/").unwrap().body(), b"docs");
        assert_eq!(files.site_file("/caf%C3%A9%20au%20lait.txt").unwrap().body(), b"latte");
        assert_eq!(files.site_file("/sub/healthz").unwrap().body(), b"not shadowed");
        assert_eq!(files.totals().0, 6);
        // Directories without their slash, or without an index, and what was skipped.
        for missing in [
            "/docs",
            "/css/",
            "/empty/",
            "/empty/.keep",
            "/.secret",
            "/.git/config",
            "/nope",
            "",
            "/ws%2Fx",
            "/he%61lthz",
        ] {
            assert!(files.site_file(missing).is_none(), "{missing}");
        }
    }

    #[test]
    fn traversal_attempts_are_not_found() {
        let (dir, files) = site();
        // A file next to the served directory, reachable by `..` if anything resolved it.
        let outside = dir.0.with_file_name(format!("{}-outside.txt", dir.0.file_name().unwrap().to_str().unwrap()));
        fs::write(&outside, b"outside").unwrap();
        let outside_name = outside.file_name().unwrap().to_str().unwrap().to_owned();
        let attempts = [
            format!("/../{outside_name}"),
            format!("/%2e%2e/{outside_name}"),
            format!("/%2E%2E%2F{outside_name}"),
            format!("/css/../../{outside_name}"),
            format!("/..%5c{outside_name}"),
            format!("/..\\{outside_name}"),
            "/css/../app.js".to_owned(),
            "/./app.js".to_owned(),
            "//app.js".to_owned(),
            "/css//site.CSS".to_owned(),
            "/app.js%00".to_owned(),
            "/app.js\0".to_owned(),
            "/%".to_owned(),
            "/%zz".to_owned(),
            "/%ff".to_owned(),
            "/etc/passwd".to_owned(),
            "app.js".to_owned(),
            "/%2fetc%2fpasswd".to_owned(),
        ];
        for path in &attempts {
            assert!(files.site_file(path).is_none(), "{path:?}");
        }
        let _ = fs::remove_file(outside);
    }

    #[cfg(unix)]
    #[test]
    fn links_stay_inside() {
        let outside = TempDir::new("outside");
        outside.write("secret.txt", b"secret");
        let dir = TempDir::new("links");
        dir.write("real.txt", b"real");
        std::os::unix::fs::symlink(dir.0.join("real.txt"), dir.0.join("alias.txt")).unwrap();
        std::os::unix::fs::symlink(outside.0.join("secret.txt"), dir.0.join("out.txt")).unwrap();
        std::os::unix::fs::symlink(&outside.0, dir.0.join("outdir")).unwrap();
        std::os::unix::fs::symlink(&dir.0, dir.0.join("loop")).unwrap();
        std::os::unix::fs::symlink(dir.0.join("gone"), dir.0.join("dangling")).unwrap();
        let files = StaticFiles::load(Some(&dir.0), None, 1 << 20).unwrap();
        assert_eq!(files.site_file("/alias.txt").unwrap().body(), b"real");
        for path in ["/out.txt", "/outdir/secret.txt", "/loop/real.txt", "/dangling"] {
            assert!(files.site_file(path).is_none(), "{path}");
        }
    }

    #[test]
    fn the_budget_is_a_start_up_error() {
        let dir = TempDir::new("budget");
        dir.write("a.bin", &[0; 600]);
        dir.write("b.bin", &[0; 600]);
        let err = StaticFiles::load(Some(&dir.0), None, 1000).unwrap_err();
        assert!(matches!(err, LoadError::OverBudget { max_bytes: 1000, .. }), "{err}");
        assert!(err.to_string().contains("--static-max-bytes"));
        let files = StaticFiles::load(Some(&dir.0), None, 1200).unwrap();
        assert_eq!(files.totals(), (2, 1200));
        assert!(matches!(StaticFiles::load(Some(&dir.0.join("missing")), None, 1200), Err(LoadError::Io { .. })));
    }

    #[test]
    fn client_bundle() {
        let dist = TempDir::new("dist");
        for name in ["socket.io.js", "socket.io.js.map", "socket.io.min.js", "socket.io.esm.min.js", "other.js"] {
            dist.write(name, name.as_bytes());
        }
        let files = StaticFiles::load(None, Some(&dist.0), 1 << 20).unwrap();
        let js = files.client_bundle("/socket.io/socket.io.js").unwrap();
        assert_eq!((js.body(), js.content_type()), (&b"socket.io.js"[..], "text/javascript; charset=utf-8"));
        let map = files.client_bundle("/socket.io/socket.io.js.map").unwrap();
        assert_eq!(map.content_type(), "application/json; charset=utf-8");
        assert!(files.client_bundle("/socket.io/socket.io.esm.min.js").is_some());
        for missing in ["/socket.io/other.js", "/socket.io/socket.io.msgpack.min.js", "/socket.io/", "/socket.io.js"] {
            assert!(files.client_bundle(missing).is_none(), "{missing}");
        }
        // No site files come with it.
        assert!(files.site_file("/socket.io.js").is_none() && files.index().is_none());

        let empty = TempDir::new("notdist");
        empty.write("index.js", b"x");
        let err = StaticFiles::load(None, Some(&empty.0), 1 << 20).unwrap_err();
        assert!(matches!(err, LoadError::NotAClientDist { .. }), "{err}");
    }

    #[test]
    fn bundle_names_follow_the_node_server() {
        for ok in [
            "socket.io.js",
            "socket.io.min.js",
            "socket.io.esm.min.js",
            "socket.io.msgpack.min.js",
            "socket.io.msgpack.js",
            "socket.io.js.map",
            "socket.io.msgpack.min.js.map",
        ] {
            assert!(is_client_bundle_name(ok), "{ok}");
        }
        for bad in ["socket.io", "socket.io.map", "socket.io.min.min.js", "socket.io.esm.msgpack.js", "x.js", ""] {
            assert!(!is_client_bundle_name(bad), "{bad}");
        }
    }

    #[test]
    fn content_types() {
        let cases = [
            ("a.html", "text/html; charset=utf-8"),
            ("a.HTM", "text/html; charset=utf-8"),
            ("a.mjs", "text/javascript; charset=utf-8"),
            ("a.json", "application/json; charset=utf-8"),
            ("a.svg", "image/svg+xml"),
            ("a.png", "image/png"),
            ("a.JPG", "image/jpeg"),
            ("favicon.ico", "image/x-icon"),
            ("a.txt", "text/plain; charset=utf-8"),
            ("a.wasm", "application/wasm"),
            ("a.woff2", "font/woff2"),
            ("README", "application/octet-stream"),
            ("a.exe", "application/octet-stream"),
        ];
        for (name, want) in cases {
            assert_eq!(content_type(Path::new(name)), want, "{name}");
        }
    }

    fn respond(file: &StaticFile, head: &str) -> String {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let req = Request::parse(head.as_bytes(), &mut headers).unwrap();
        String::from_utf8(file.respond(&req, req.method == "HEAD", false)).unwrap()
    }

    #[test]
    fn etag_and_head() {
        let file = StaticFile::new(b"body".to_vec(), "text/plain; charset=utf-8", SITE_CACHE_CONTROL);
        let tag = file.etag().to_owned();
        assert!(tag.len() == 22 && tag.starts_with('"') && tag.ends_with('"'), "{tag}");
        let ok = respond(&file, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains(&format!("\r\nETag: {tag}\r\n")) && ok.contains("\r\nCache-Control: no-cache\r\n"));
        assert!(ok.contains("\r\nContent-Length: 4\r\n") && ok.ends_with("\r\n\r\nbody"), "{ok}");
        let head = respond(&file, "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(head.contains("Content-Length: 4\r\n") && head.ends_with("\r\n\r\n"), "{head}");
        for matching in [tag.clone(), format!("W/{tag}"), format!("\"x\", {tag}"), "*".to_owned()] {
            for method in ["GET", "HEAD"] {
                let text =
                    respond(&file, &format!("{method} / HTTP/1.1\r\nHost: a\r\nIf-None-Match: {matching}\r\n\r\n"));
                assert!(text.starts_with("HTTP/1.1 304 Not Modified\r\n"), "{matching}: {text}");
                assert!(text.contains(&format!("\r\nETag: {tag}\r\n")) && text.ends_with("\r\n\r\n"));
                assert!(!text.contains("Content-Length") && !text.contains("Connection: close"));
            }
        }
        let split = format!("GET / HTTP/1.1\r\nHost: a\r\nIf-None-Match: \"x\"\r\nIf-None-Match: {tag}\r\n\r\n");
        assert!(respond(&file, &split).starts_with("HTTP/1.1 304"));
        for other in ["\"x\"", "W/\"x\"", "", "body", &tag[1..]] {
            let text = respond(&file, &format!("GET / HTTP/1.1\r\nHost: a\r\nIf-None-Match: {other}\r\n\r\n"));
            assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{other}: {text}");
        }
        assert!(String::from_utf8(not_modified(&[], true)).unwrap().contains("\r\nConnection: close\r\n"));
    }

    /// The router's rows for files: `handle_head` with both folders loaded.
    mod routing {
        use super::*;
        use crate::app::router::{INDEX_HTML, Outcome, handle_head};
        use crate::proto::http::HttpConfig;

        fn config(files: StaticFiles) -> HttpConfig {
            HttpConfig {
                max_head_bytes: 8192,
                max_body_bytes: 1 << 20,
                max_headers: 32,
                allow_origins: vec![],
                echo_enabled: false,
                engineio_test_suite: false,
                sockjs_test_suite: false,
                files: Arc::new(files),
            }
        }

        /// (status, close, response text) of a plain answer.
        fn answer(head: &str, config: &HttpConfig) -> (u16, bool, String) {
            match handle_head(head.as_bytes(), config) {
                Outcome::Respond { response, close, .. } => {
                    let text = String::from_utf8_lossy(&response).into_owned();
                    (text[9..12].parse().unwrap(), close, text)
                }
                other => panic!("{head}: expected Respond, got {other:?}"),
            }
        }

        fn get(path: &str, config: &HttpConfig) -> (u16, String) {
            let (status, close, text) = answer(&format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n"), config);
            assert!(!close, "{path}: file answers keep the connection");
            (status, text)
        }

        #[test]
        fn files_behind_the_built_in_routes() {
            let site = TempDir::new("route-site");
            site.write("index.html", b"<p>mine</p>");
            site.write("page.html", b"<p>page</p>");
            // Files shadowed by soket's own paths are never served.
            for shadowed in ["healthz", "metrics", "legacy", "ws/x", "ws/a/b", "socket.io/socket.io.js", "socket.io/x"]
            {
                site.write(shadowed, b"shadowed");
            }
            let dist = TempDir::new("route-dist");
            dist.write("socket.io.js", b"/* bundle */");
            dist.write("socket.io.min.js.map", b"{}");
            let files = StaticFiles::load(Some(&site.0), Some(&dist.0), 1 << 20).unwrap();
            let config = config(files);

            let (s, text) = get("/?x=1", &config);
            assert_eq!(s, 200);
            assert!(text.ends_with("\r\n\r\n<p>mine</p>") && text.contains("Content-Type: text/html; charset=utf-8"));
            let (s, text) = get("/page.html", &config);
            assert!(s == 200 && text.ends_with("<p>page</p>"), "{text}");
            let (s, text) = get("/socket.io/socket.io.js?v=1", &config);
            assert!(s == 200 && text.ends_with("/* bundle */"), "{text}");
            assert!(text.contains("Content-Type: text/javascript; charset=utf-8\r\n"));
            assert!(text.contains("Cache-Control: public, max-age=0\r\n") && text.contains("\r\nETag: \""));
            let (s, text) = get("/socket.io/socket.io.min.js.map", &config);
            assert!(s == 200 && text.contains("Content-Type: application/json; charset=utf-8\r\n"), "{text}");

            assert!(get("/healthz", &config).1.ends_with("\r\n\r\nok\n"));
            assert!(matches!(handle_head(b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", &config), Outcome::Serve { .. }));
            for not_found in ["/ws/a/b", "/socket.io/x", "/socket.io/socket.io.min.js", "/nope"] {
                assert_eq!(get(not_found, &config).0, 404, "{not_found}");
            }
            // The Engine.IO endpoint itself: without its query, the reference server's 400.
            assert_eq!(get("/socket.io/", &config).0, 400);
            assert_eq!(get("/legacy", &config).0, 426);
            assert_eq!(get("/ws", &config).0, 426);
            assert_eq!(get("/ws/x", &config).0, 426);
            // `/echo` is off here, so a file of that name would be served; there is none.
            assert_eq!(get("/echo", &config).0, 404);

            // Only GET and HEAD.
            let (s, _, _) = answer("POST /page.html HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", &config);
            assert_eq!(s, 405);
            let (s, close, text) = answer("HEAD /page.html HTTP/1.1\r\nHost: a\r\n\r\n", &config);
            assert!(s == 200 && !close);
            assert!(text.contains("Content-Length: 11\r\n") && text.ends_with("\r\n\r\n"), "{text}");
            // HTTP/1.0 closes after the file, like any other answer.
            let (s, close, text) = answer("GET /page.html HTTP/1.0\r\n\r\n", &config);
            assert!(s == 200 && close && text.contains("Connection: close\r\n"));

            // Conditional requests through the router.
            let tag = config.files.site_file("/page.html").unwrap().etag().to_owned();
            let (s, close, text) =
                answer(&format!("GET /page.html HTTP/1.1\r\nHost: a\r\nIf-None-Match: {tag}\r\n\r\n"), &config);
            assert!(s == 304 && !close && text.ends_with("\r\n\r\n"), "{text}");
        }

        #[test]
        fn hostile_paths_are_404() {
            let site = TempDir::new("route-hostile");
            site.write("a.txt", b"a");
            let config = config(StaticFiles::load(Some(&site.0), None, 1 << 20).unwrap());
            assert_eq!(get("/a.txt", &config).0, 200);
            for path in [
                "/../a.txt",
                "/%2e%2e/a.txt",
                "/..%2fa.txt",
                "/%5c..%5ca.txt",
                "/a.txt%00",
                "/%",
                "/%C0%AE%C0%AE/a.txt",
            ] {
                assert_eq!(get(path, &config).0, 404, "{path}");
            }
            // Without an index of its own, `/` is still the built-in page.
            let (s, text) = get("/", &config);
            assert!(s == 200 && text.ends_with(INDEX_HTML));
            // No files loaded at all: only the built-in routes.
            let none = self::config(StaticFiles::default());
            assert_eq!(get("/a.txt", &none).0, 404);
            assert_eq!(get("/socket.io/socket.io.js", &none).0, 404);
        }
    }
}
