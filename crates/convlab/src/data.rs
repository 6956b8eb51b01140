//! The course's data folder and its pictures.
//!
//! Pictures are not kept in the repository: [`ensure`] fetches them into `data/` from their
//! canonical public addresses and checks their SHA-256, or copies them from a local mirror
//! folder named by `CONVLAB_DATA_MIRROR` (for machines without internet access).
//!
//! ```no_run
//! let portrait = convlab::data::ensure("grace_hopper.jpg")?;
//! let grey = convlab::image::load_grey(&portrait)?;
//! # Ok::<(), convlab::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::fetch::{copy_verified, verify, Checksum};
use std::path::{Path, PathBuf};

/// A file the course uses, where it comes from and its checksum.
#[derive(Clone, Copy, Debug)]
pub struct Asset {
    /// File name inside `data/`.
    pub name: &'static str,
    /// Canonical download address (pinned to a release tag).
    pub url: &'static str,
    /// SHA-256 of the file.
    pub sha256: &'static str,
    /// What it is and its licence.
    pub about: &'static str,
}

/// The pictures of the course.
pub const ASSETS: &[Asset] = &[
    Asset {
        name: "grace_hopper.jpg",
        url: "https://raw.githubusercontent.com/tensorflow/tensorflow/v2.16.1/tensorflow/examples/label_image/data/grace_hopper.jpg",
        sha256: "e25eff3a01f40278ab93e74207892707fa5be871a2b16f23ba5e42a9738804f2",
        about: "portrait of Grace Hopper, 517×606 RGB JPEG, public domain (US Navy photograph)",
    },
    Asset {
        name: "cat.png",
        url: "https://raw.githubusercontent.com/scikit-image/scikit-image/v0.24.0/skimage/data/chelsea.png",
        sha256: "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
        about: "\"Chelsea\" the cat, 451×300 RGB PNG, CC0 (scikit-image sample data)",
    },
    Asset {
        name: "coffee.png",
        url: "https://raw.githubusercontent.com/scikit-image/scikit-image/v0.24.0/skimage/data/coffee.png",
        sha256: "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
        about: "a cup of coffee, 600×400 RGB PNG, CC0 (scikit-image sample data)",
    },
];

/// The data folder: `CONVLAB_DATA_DIR` when set, else `data/` at the top of this repository.
///
/// ```
/// assert!(convlab::data::data_dir().ends_with("data"));
/// ```
pub fn data_dir() -> PathBuf {
    match std::env::var_os("CONVLAB_DATA_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .nth(2)
            .expect("the crate lives in crates/convlab")
            .join("data"),
    }
}

/// Finds the [`Asset`] called `name`.
pub fn asset(name: &str) -> Result<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name).ok_or_else(|| {
        let known: Vec<_> = ASSETS.iter().map(|a| a.name).collect();
        Error::Value(format!(
            "no course file called {name:?}; the known ones are {known:?}"
        ))
    })
}

/// Returns the path of `name` in the data folder, fetching it first when it is missing:
/// from `CONVLAB_DATA_MIRROR` when that is set, else from the canonical address (with the
/// feature `download`; without it, the error says to run `make fetch-data`).
pub fn ensure(name: &str) -> Result<PathBuf> {
    let asset = asset(name)?;
    let dest = data_dir().join(asset.name);
    let sum = Checksum::Sha256(asset.sha256.to_string());
    if dest.exists() {
        verify(&dest, &sum)?;
        return Ok(dest);
    }
    match std::env::var_os("CONVLAB_DATA_MIRROR") {
        Some(mirror) => {
            let src = PathBuf::from(mirror).join(asset.name);
            if !src.exists() {
                return Err(Error::io(
                    &src,
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "not in the mirror folder named by CONVLAB_DATA_MIRROR",
                    ),
                ));
            }
            copy_verified(&src, &dest, &sum)
        }
        None => fetch_asset(asset, &dest, &sum),
    }
}

#[cfg(feature = "download")]
fn fetch_asset(asset: &Asset, dest: &Path, sum: &Checksum) -> Result<PathBuf> {
    crate::fetch::download(asset.url, dest, sum)
}

#[cfg(not(feature = "download"))]
fn fetch_asset(asset: &Asset, dest: &Path, _sum: &Checksum) -> Result<PathBuf> {
    Err(Error::io(
        dest,
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "{} is not fetched yet: run `make fetch-data` (or `make setup`) in the course folder",
                asset.name
            ),
        ),
    ))
}

/// Fetches every course picture (see [`ensure`]) and returns their paths.
pub fn ensure_all() -> Result<Vec<PathBuf>> {
    ASSETS.iter().map(|a| ensure(a.name)).collect()
}
