//! The CIFAR-10 downloader and unpacker against a local HTTP server on 127.0.0.1 serving a
//! test-made `cifar-10-binary.tar.gz` (the real one cannot be downloaded in tests).
#![cfg(feature = "torch")]

use convlab::cifar;
use convlab::fetch::{md5_file, part_path, Checksum};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("convlab-cifar-fetch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes a synthetic data set and packs it as the real archive is packed:
/// `cifar-10-batches-bin/` with the six batches and the meta file, gzip-compressed tar.
fn make_archive(dir: &Path, folder: &str) -> PathBuf {
    let src = dir.join("src");
    cifar::write_test_set(&src, 30, 4).unwrap();
    let archive = dir.join("served.tar.gz");
    let file = std::fs::File::create(&archive).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.append_dir_all(folder, &src).unwrap();
    tar.into_inner().unwrap().finish().unwrap();
    archive
}

/// Serves `body` over HTTP/1.1, honouring `Range: bytes=N-`. The first `cut_first`
/// responses stop after half of what they announced (a dropped connection). Records the
/// Range header of every request.
fn serve(body: Vec<u8>, cut_first: usize) -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/cifar-10-binary.tar.gz",
        listener.local_addr().unwrap()
    );
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let seen = ranges.clone();
    std::thread::spawn(move || {
        for (i, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut range = None;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    range = Some(v.trim().trim_end_matches('-').to_string());
                }
            }
            seen.lock().unwrap().push(range.clone());
            let start: usize = range.and_then(|r| r.parse().ok()).unwrap_or(0);
            let rest = &body[start.min(body.len())..];
            let status = if start > 0 {
                "206 Partial Content"
            } else {
                "200 OK"
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/gzip\r\nConnection: close\r\n\r\n",
                rest.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let send = if i < cut_first {
                &rest[..rest.len() / 2]
            } else {
                rest
            };
            let _ = stream.write_all(send);
            let _ = stream.flush();
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    });
    (url, ranges)
}

#[test]
fn downloads_resumes_checks_and_unpacks() {
    let dir = tmp("resume");
    let archive = make_archive(&dir, cifar::FOLDER);
    let md5 = md5_file(&archive).unwrap();
    let body = std::fs::read(&archive).unwrap();
    let (url, ranges) = serve(body.clone(), 1);
    let data = dir.join("data");
    let sum = Checksum::Md5(md5);

    // First try: the connection drops half-way. The error says to run again; the bytes so
    // far stay in the .part file, and no data folder appears.
    let err = cifar::fetch(&url, &sum, &data).unwrap_err().to_string();
    assert!(err.contains("resume"), "{err}");
    let part = part_path(&data.join(cifar::ARCHIVE));
    let have = std::fs::metadata(&part).unwrap().len() as usize;
    assert!(have > 0 && have < body.len(), "{have} of {}", body.len());
    assert!(!data.join(cifar::FOLDER).exists());

    // Second try asks for the rest only, checks the MD5 and unpacks.
    let folder = cifar::fetch(&url, &sum, &data).unwrap();
    assert_eq!(
        ranges.lock().unwrap().clone(),
        vec![None, Some(have.to_string())]
    );
    assert_eq!(std::fs::read(data.join(cifar::ARCHIVE)).unwrap(), body);
    assert!(!part.exists());
    let got = cifar::load(&folder).unwrap();
    let want = cifar::load(&dir.join("src")).unwrap();
    assert_eq!(got, want);
    assert_eq!((got.train.len(), got.test.len()), (150, 30));
    assert!(
        !data.join(format!(".{}.unpack", cifar::FOLDER)).exists(),
        "temporary folder left behind"
    );

    // Third call: the folder is complete, nothing is fetched.
    cifar::fetch(&url, &sum, &data).unwrap();
    assert_eq!(ranges.lock().unwrap().len(), 2);
}

#[test]
fn wrong_checksum_is_refused_and_nothing_unpacked() {
    let dir = tmp("md5");
    let archive = make_archive(&dir, cifar::FOLDER);
    let (url, _) = serve(std::fs::read(&archive).unwrap(), 0);
    let data = dir.join("data");
    let err = cifar::fetch(&url, &Checksum::Md5(cifar::MD5.into()), &data)
        .unwrap_err()
        .to_string();
    assert!(err.contains("md5") && err.contains(cifar::MD5), "{err}");
    assert!(!data.join(cifar::FOLDER).exists());
    assert!(!data.join(cifar::ARCHIVE).exists());
}

#[test]
fn archive_without_the_binary_folder_is_refused() {
    let dir = tmp("layout");
    let archive = make_archive(&dir, "cifar-10-batches-py");
    let err = cifar::unpack(&archive, &dir.join("data"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("cifar-10-batches-bin"), "{err}");
    assert!(!dir.join("data").join(cifar::FOLDER).exists());
}

#[test]
fn archive_with_a_truncated_batch_is_refused_with_file_and_record() {
    let dir = tmp("trunc");
    let src = dir.join("src");
    cifar::write_test_set(&src, 30, 4).unwrap();
    let bad = src.join("data_batch_4.bin");
    let mut bytes = std::fs::read(&bad).unwrap();
    bytes.truncate(bytes.len() - 10);
    std::fs::write(&bad, bytes).unwrap();
    let archive = dir.join("a.tar.gz");
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&archive).unwrap(),
        flate2::Compression::fast(),
    );
    let mut tar = tar::Builder::new(gz);
    tar.append_dir_all(cifar::FOLDER, &src).unwrap();
    tar.into_inner().unwrap().finish().unwrap();
    let err = cifar::unpack(&archive, &dir.join("data"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("data_batch_4.bin") && err.contains("record 29"),
        "{err}"
    );
    assert!(!dir.join("data").join(cifar::FOLDER).exists());
}

#[test]
fn command_line_fetch_and_make_test_cifar() {
    let exe = env!("CARGO_BIN_EXE_convlab");
    let dir = tmp("cli");
    let made = dir.join("made");
    let out = std::process::Command::new(exe)
        .args([
            "make-test-cifar",
            made.to_str().unwrap(),
            "--per-batch",
            "12",
            "--seed",
            "3",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let data = cifar::load(&made).unwrap();
    assert_eq!((data.train.len(), data.test.len()), (60, 12));

    let archive = make_archive(&dir, cifar::FOLDER);
    let md5 = md5_file(&archive).unwrap();
    let (url, _) = serve(std::fs::read(&archive).unwrap(), 0);
    let target = dir.join("data");
    let out = std::process::Command::new(exe)
        .args([
            "fetch-cifar",
            "--url",
            &url,
            "--md5",
            &md5,
            "--dir",
            target.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("150 training and 30 test pictures"),
        "{stdout}"
    );

    // A bad checksum fails with a message and a non-zero exit.
    let out = std::process::Command::new(exe)
        .args([
            "fetch-cifar",
            "--url",
            &url,
            "--md5",
            "00",
            "--dir",
            dir.join("other").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("md5"));
}
