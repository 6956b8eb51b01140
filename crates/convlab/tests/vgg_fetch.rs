//! `fetch-weights` against a local HTTP server on 127.0.0.1: a good file (cut off once, then
//! resumed), a wrong checksum, a server error. Nothing leaves this machine.
#![cfg(feature = "torch")]

use convlab::fetch::{part_path, sha256_file, Checksum};
use convlab::weights::{self, Source};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone)]
enum Reply {
    /// The whole file (honours `Range: bytes=N-` with 206).
    File(Arc<Vec<u8>>),
    /// Announces the whole length, sends only the first `n` bytes, then closes.
    CutOff(Arc<Vec<u8>>, usize),
    /// An HTTP error status.
    Status(u16),
}

/// A tiny HTTP/1.1 server: `routes[path]` is a list of replies, one per request (the last one
/// repeats). Records each request's path and Range header.
/// Each request's path and `Range` header.
type Log = Arc<Mutex<Vec<(String, Option<String>)>>>;

struct Server {
    base: String,
    log: Log,
}

fn serve(routes: HashMap<String, Vec<Reply>>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    let routes = Arc::new(Mutex::new(routes));
    std::thread::spawn(move || {
        // Bounded: a test makes a handful of requests.
        for stream in listener.incoming().take(16) {
            let Ok(stream) = stream else { continue };
            let _ = handle(stream, &routes, &log2);
        }
    });
    Server { base, log }
}

fn handle(
    mut stream: TcpStream,
    routes: &Mutex<HashMap<String, Vec<Reply>>>,
    log: &Mutex<Vec<(String, Option<String>)>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut range = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            }
        }
    }
    log.lock().unwrap().push((path.clone(), range.clone()));
    let reply = {
        let mut r = routes.lock().unwrap();
        match r.get_mut(&path) {
            Some(list) if list.len() > 1 => list.remove(0),
            Some(list) => list[0].clone(),
            None => Reply::Status(404),
        }
    };
    match reply {
        Reply::Status(code) => {
            write!(
                stream,
                "HTTP/1.1 {code} Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )?;
        }
        Reply::File(bytes) => {
            let start = range
                .as_deref()
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok())
                .filter(|&s| s < bytes.len());
            let (status, body) = match start {
                Some(s) => ("206 Partial Content", &bytes[s..]),
                None => ("200 OK", &bytes[..]),
            };
            write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            stream.write_all(body)?;
        }
        Reply::CutOff(bytes, n) => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                bytes.len()
            )?;
            stream.write_all(&bytes[..n])?;
        }
    }
    stream.flush()?;
    let _ = stream.shutdown(std::net::Shutdown::Both);
    // Drain anything left so the client sees a clean close.
    let _ = reader.read(&mut [0u8; 1]);
    Ok(())
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("convlab-vgg-fetch-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn a_cut_off_download_resumes_verifies_and_loads() {
    let dir = tmp("good");
    let src = dir.join("served.safetensors");
    weights::write_test_weights(&src, 11).unwrap();
    let sha = sha256_file(&src).unwrap();
    let bytes = Arc::new(std::fs::read(&src).unwrap());
    let half = bytes.len() / 2;
    let server = serve(HashMap::from([(
        "/vgg16.safetensors".to_string(),
        vec![
            Reply::CutOff(bytes.clone(), half),
            Reply::File(bytes.clone()),
        ],
    )]));
    let source = Source {
        url: format!("{}/vgg16.safetensors", server.base),
        checksum: Checksum::Sha256Prefix(sha[..8].to_string()),
        file_name: "vgg16.safetensors".into(),
    };
    let dest = dir.join("out").join("vgg16.safetensors");
    let e = weights::fetch(&source, &dest).unwrap_err().to_string();
    assert!(e.contains("cut off") && e.contains("resume"), "{e}");
    assert!(!dest.exists(), "no half file under the real name");
    assert_eq!(
        std::fs::metadata(part_path(&dest)).unwrap().len(),
        half as u64
    );
    let got = weights::fetch(&source, &dest).unwrap();
    assert_eq!(got, dest);
    assert!(!part_path(&dest).exists());
    assert_eq!(sha256_file(&dest).unwrap(), sha);
    let log = server.log.lock().unwrap().clone();
    assert_eq!(log.len(), 2);
    assert_eq!(
        log[1].1.as_deref(),
        Some(format!("bytes={half}-").as_str()),
        "second request resumes"
    );
    assert!(weights::check_loads(&dest).unwrap().random_test_weights);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_wrong_checksum_leaves_nothing_behind() {
    let dir = tmp("checksum");
    let server = serve(HashMap::from([(
        "/vgg16-397923af.pth".to_string(),
        vec![Reply::File(Arc::new(
            b"these are not the published weights".to_vec(),
        ))],
    )]));
    let mut source = Source::torchvision();
    source.url = format!("{}/vgg16-397923af.pth", server.base);
    let dest = dir.join("vgg16.safetensors");
    let e = weights::fetch(&source, &dest).unwrap_err().to_string();
    assert!(
        e.contains("vgg16-397923af.pth") && e.contains("expected 397923af"),
        "{e}"
    );
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_server_error_is_reported() {
    let dir = tmp("500");
    let server = serve(HashMap::from([(
        "/w.safetensors".to_string(),
        vec![Reply::Status(500)],
    )]));
    let source = Source {
        url: format!("{}/w.safetensors", server.base),
        checksum: Checksum::Sha256("00".repeat(32)),
        file_name: "w.safetensors".into(),
    };
    let dest = dir.join("vgg16.safetensors");
    let e = weights::fetch(&source, &dest).unwrap_err().to_string();
    assert!(e.contains("500") && e.contains("/w.safetensors"), "{e}");
    assert!(!dest.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
