//! The downloader against a small HTTP server on loopback: a good file, a cut-off one that
//! resumes, a wrong checksum, a server error; and the data mirror.
#![cfg(feature = "download")]

use convlab::fetch::{download, part_path, sha256_file, Checksum};
use sha2::Digest;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;

fn body() -> Vec<u8> {
    (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect()
}

fn sha(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Serves `/good` (with Range support), `/cut` (announces the whole body, sends half),
/// `/other` (different bytes) and `/broken` (HTTP 500). Returns the base URL.
fn serve() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(64) {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                let mut from = 0usize;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some(r) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
                        from = r.trim().trim_end_matches('-').parse().unwrap();
                    }
                }
                let data = body();
                let reply = match path.as_str() {
                    "/good" if from > 0 => {
                        let rest = &data[from..];
                        let mut r = format!(
                            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {}-{}/{}\r\nConnection: close\r\n\r\n",
                            rest.len(), from, data.len() - 1, data.len()
                        ).into_bytes();
                        r.extend_from_slice(rest);
                        r
                    }
                    "/good" | "/cut" | "/other" => {
                        let mut payload = data.clone();
                        if path == "/other" {
                            payload[1000] ^= 0xFF;
                        }
                        let mut r = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            payload.len()
                        ).into_bytes();
                        let send = if path == "/cut" { payload.len() / 2 } else { payload.len() };
                        r.extend_from_slice(&payload[..send]);
                        r
                    }
                    _ => b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
                };
                let _ = stream.write_all(&reply);
                let _ = stream.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    format!("http://{addr}")
}

fn dest(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("convlab-fetch-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("file.bin")
}

#[test]
fn good_download_is_verified_and_atomic() {
    let base = serve();
    let d = dest("good");
    let sum = Checksum::Sha256(sha(&body()));
    download(&format!("{base}/good"), &d, &sum).unwrap();
    assert_eq!(std::fs::read(&d).unwrap(), body());
    assert!(!part_path(&d).exists());
    // A second call finds the file and only checks it (the server is not asked again:
    // a broken URL still succeeds).
    download(&format!("{base}/broken"), &d, &sum).unwrap();
    // The sha256 prefix form, as in torchvision's file names.
    let d2 = dest("prefix");
    let prefix = Checksum::Sha256Prefix(sha(&body())[..8].to_string());
    download(&format!("{base}/good"), &d2, &prefix).unwrap();
    assert_eq!(sha256_file(&d2).unwrap(), sha(&body()));
}

#[test]
fn cut_off_download_keeps_the_part_and_resumes() {
    let base = serve();
    let d = dest("cut");
    let sum = Checksum::Sha256(sha(&body()));
    let e = download(&format!("{base}/cut"), &d, &sum)
        .unwrap_err()
        .to_string();
    assert!(e.contains("/cut") && e.contains("again"), "{e}");
    assert!(!d.exists(), "no half file under the final name");
    let half = std::fs::metadata(part_path(&d)).unwrap().len();
    assert_eq!(half, body().len() as u64 / 2);
    // The next call sends a Range request and completes the file.
    download(&format!("{base}/good"), &d, &sum).unwrap();
    assert_eq!(std::fs::read(&d).unwrap(), body());
    assert!(!part_path(&d).exists());
}

#[test]
fn wrong_checksum_removes_the_download() {
    let base = serve();
    let d = dest("wrong");
    let sum = Checksum::Sha256(sha(&body()));
    let e = download(&format!("{base}/other"), &d, &sum)
        .unwrap_err()
        .to_string();
    assert!(e.contains("sha256") && e.contains(&sha(&body())), "{e}");
    assert!(!d.exists() && !part_path(&d).exists());
}

#[test]
fn server_error_is_reported_with_the_url() {
    let base = serve();
    let d = dest("broken");
    let e = download(
        &format!("{base}/broken"),
        &d,
        &Checksum::Sha256("00".into()),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("/broken") && e.contains("500"), "{e}");
    assert!(!d.exists());
}

#[test]
fn data_comes_from_the_mirror_and_is_checked() {
    // A mirror folder with a damaged "cat.png": ensure() refuses it and names the file.
    let root = std::env::temp_dir().join(format!("convlab-mirror-{}", std::process::id()));
    let (mirror, data) = (root.join("mirror"), root.join("data"));
    std::fs::create_dir_all(&mirror).unwrap();
    std::fs::write(mirror.join("cat.png"), b"not the cat").unwrap();
    std::env::set_var("CONVLAB_DATA_MIRROR", &mirror);
    std::env::set_var("CONVLAB_DATA_DIR", &data);
    let e = convlab::data::ensure("cat.png").unwrap_err().to_string();
    assert!(e.contains("cat.png") && e.contains("sha256"), "{e}");
    assert!(!data.join("cat.png").exists());
    let e = convlab::data::ensure("dog.png").unwrap_err().to_string();
    assert!(e.contains("grace_hopper.jpg"), "{e}");
    let e = convlab::data::ensure("coffee.png").unwrap_err().to_string();
    assert!(
        e.contains("coffee.png") && e.contains("CONVLAB_DATA_MIRROR"),
        "{e}"
    );
}
