//! Downloading files safely: pinned URL, published checksum, progress, atomic write, resume.
//!
//! The bytes go to `<dest>.part`; when the download is complete and its checksum matches,
//! the file is renamed to `dest` in one step, so `dest` is either absent or whole. A cut-off
//! download leaves the `.part` file, and the next call asks the server for the rest with an
//! HTTP `Range` request (or starts again when the server does not support ranges).
//!
//! ```no_run
//! # #[cfg(feature = "download")] {
//! use convlab::fetch::{download, Checksum};
//! let url = "http://127.0.0.1:8000/weights.safetensors";
//! download(url, "data/weights.safetensors".as_ref(), &Checksum::Sha256("ab12…".into()))?;
//! # }
//! # Ok::<(), convlab::Error>(())
//! ```

use crate::error::{Error, Result};
use sha2::Digest;
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

/// A published checksum, as lowercase hex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Checksum {
    /// SHA-256 of the whole file.
    Sha256(String),
    /// The first hex digits of the SHA-256 (torchvision puts 8 of them in its file names).
    Sha256Prefix(String),
    /// MD5 of the whole file, for data sets that publish only that (CIFAR-10). MD5 is no
    /// protection against tampering, only against damaged or wrong files.
    Md5(String),
}

impl Checksum {
    fn algorithm(&self) -> &'static str {
        match self {
            Checksum::Sha256(_) => "sha256",
            Checksum::Sha256Prefix(_) => "sha256 prefix",
            Checksum::Md5(_) => "md5",
        }
    }

    /// `sha256_hex` is the digest in the checksum's own algorithm (MD5 for `Md5`).
    fn matches(&self, sha256_hex: &str) -> bool {
        match self {
            Checksum::Sha256(h) => h.eq_ignore_ascii_case(sha256_hex),
            Checksum::Sha256Prefix(p) => sha256_hex.starts_with(&p.to_ascii_lowercase()),
            Checksum::Md5(h) => h.eq_ignore_ascii_case(sha256_hex),
        }
    }

    fn expected(&self) -> &str {
        match self {
            Checksum::Sha256(h) | Checksum::Sha256Prefix(h) | Checksum::Md5(h) => h,
        }
    }
}

/// SHA-256 of a file, as lowercase hex.
///
/// ```no_run
/// let hex = convlab::fetch::sha256_file("data/cat.png".as_ref())?;
/// assert_eq!(hex.len(), 64);
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn sha256_file(path: &Path) -> Result<String> {
    hash_file::<sha2::Sha256>(path)
}

/// MD5 of a file, as lowercase hex.
///
/// ```
/// let path = std::env::temp_dir().join("convlab-md5-doc.txt");
/// std::fs::write(&path, b"abc")?;
/// assert_eq!(convlab::fetch::md5_file(&path)?, "900150983cd24fb0d6963f7d28e17f72");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn md5_file(path: &Path) -> Result<String> {
    hash_file::<md5::Md5>(path)
}

fn hash_file<D: Digest>(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = D::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks `path` against `checksum`; a mismatch names the file and both values.
pub fn verify(path: &Path, checksum: &Checksum) -> Result<()> {
    let actual = match checksum {
        Checksum::Md5(_) => md5_file(path)?,
        _ => sha256_file(path)?,
    };
    if checksum.matches(&actual) {
        Ok(())
    } else {
        Err(Error::Checksum {
            path: path.into(),
            algorithm: checksum.algorithm(),
            expected: checksum.expected().to_string(),
            actual,
        })
    }
}

/// The `.part` file that holds an unfinished download of `dest`.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

/// Prints a progress line on stdout every few percent (every few MB when the size is unknown).
#[cfg(feature = "download")]
struct Progress {
    total: Option<u64>,
    done: u64,
    last_mark: u64,
}

#[cfg(feature = "download")]
impl Progress {
    /// Progress of a body of `length` bytes (when the server says) that continues a file of
    /// `start` bytes.
    fn new(start: u64, length: Option<u64>) -> Progress {
        Progress {
            total: length.map(|l| l + start),
            done: start,
            last_mark: u64::MAX,
        }
    }

    fn step(&mut self, n: u64) {
        self.done += n;
        let mark = match self.total {
            Some(t) if t > 0 => self.done * 20 / t,
            _ => self.done >> 23,
        };
        if mark != self.last_mark {
            self.last_mark = mark;
            let mb = self.done as f64 / 1e6;
            match self.total {
                Some(t) => println!(
                    "  {mb:8.1} MB of {:.1} MB ({:.0}%)",
                    t as f64 / 1e6,
                    100.0 * self.done as f64 / t as f64
                ),
                None => println!("  {mb:8.1} MB"),
            }
        }
    }
}

/// Downloads `url` to `dest`, verifying `checksum`; returns at once when `dest` is already
/// there and verifies. See the [module docs](self) for the guarantees. (Feature `download`,
/// on by default.)
#[cfg(feature = "download")]
pub fn download(url: &str, dest: &Path, checksum: &Checksum) -> Result<PathBuf> {
    if dest.exists() {
        verify(dest, checksum)?;
        return Ok(dest.to_path_buf());
    }
    create_parent(dest)?;
    let part = part_path(dest);
    let have = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    let response = request(url, have)?;
    let start = if have > 0 && response.status().as_u16() == 206 {
        have
    } else {
        0
    };
    let mut progress = Progress::new(start, content_length(&response));
    let file = open_part(&part, start > 0)?;
    announce(url, start);
    write_body(
        url,
        response.into_body().into_reader(),
        file,
        &part,
        &mut progress,
    )?;
    check_complete(url, &progress)?;
    verify_and_rename(&part, dest, checksum)
}

/// Creates the folder that will hold `dest`, when it names one.
fn create_parent(dest: &Path) -> Result<()> {
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}

/// A failed download of `url`, with the reason.
#[cfg(feature = "download")]
fn download_error(url: &str, reason: String) -> Error {
    Error::Download {
        url: url.to_string(),
        reason,
    }
}

/// Asks the server for `url`, for the bytes from `have` on when a `.part` file holds that many.
#[cfg(feature = "download")]
fn request(url: &str, have: u64) -> Result<ureq::http::Response<ureq::Body>> {
    let mut request = ureq::get(url);
    if have > 0 {
        request = request.header("Range", &format!("bytes={have}-"));
    }
    request
        .call()
        .map_err(|e| download_error(url, format!("{e} (check the address and your connection)")))
}

/// The body's length as the server announces it, if it does.
#[cfg(feature = "download")]
fn content_length(response: &ureq::http::Response<ureq::Body>) -> Option<u64> {
    response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Opens the `.part` file: for appending when the server resumes, else empty.
#[cfg(feature = "download")]
fn open_part(part: &Path, resumed: bool) -> Result<File> {
    if resumed {
        fs::OpenOptions::new().append(true).open(part)
    } else {
        File::create(part)
    }
    .map_err(|e| Error::io(part, e))
}

/// Says on stdout what is being downloaded, and from where it resumes (`start` > 0).
#[cfg(feature = "download")]
fn announce(url: &str, start: u64) {
    println!(
        "downloading {url}{}",
        if start > 0 {
            format!(" (resuming at {start} bytes)")
        } else {
            String::new()
        }
    );
}

/// Appends `body` to the `.part` file, counting the bytes in `progress`, and syncs it to
/// disk. A failed read is a cut-off download, which the next call resumes.
#[cfg(feature = "download")]
fn write_body(
    url: &str,
    mut body: impl Read,
    mut file: File,
    part: &Path,
    progress: &mut Progress,
) -> Result<()> {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = body.read(&mut buf).map_err(|e| {
            download_error(
                url,
                format!(
                    "cut off after {} bytes ({e}); run the fetch again to resume",
                    progress.done
                ),
            )
        })?;
        if n == 0 {
            break;
        }
        std::io::Write::write_all(&mut file, &buf[..n]).map_err(|e| Error::io(part, e))?;
        progress.step(n as u64);
    }
    file.sync_all().map_err(|e| Error::io(part, e))
}

/// Fails when the body ended before the length the server announced.
#[cfg(feature = "download")]
fn check_complete(url: &str, progress: &Progress) -> Result<()> {
    match progress.total {
        Some(total) if progress.done < total => Err(download_error(
            url,
            format!(
                "cut off after {} of {total} bytes; run the fetch again to resume",
                progress.done
            ),
        )),
        _ => Ok(()),
    }
}

/// Verifies the finished `.part` file and renames it to `dest`; a file that fails the check
/// is removed, so that the next call starts again.
#[cfg(feature = "download")]
fn verify_and_rename(part: &Path, dest: &Path, checksum: &Checksum) -> Result<PathBuf> {
    if let Err(e) = verify(part, checksum) {
        let _ = fs::remove_file(part);
        return Err(e);
    }
    fs::rename(part, dest).map_err(|e| Error::io(dest, e))?;
    Ok(dest.to_path_buf())
}

/// Copies `src` to `dest` through a `.part` file, verifying `checksum` before the rename.
pub fn copy_verified(src: &Path, dest: &Path, checksum: &Checksum) -> Result<PathBuf> {
    verify(src, checksum)?;
    create_parent(dest)?;
    let part = part_path(dest);
    fs::copy(src, &part).map_err(|e| Error::io(src, e))?;
    fs::rename(&part, dest).map_err(|e| Error::io(dest, e))?;
    Ok(dest.to_path_buf())
}
