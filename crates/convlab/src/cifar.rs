//! The CIFAR-10 data set (LA15): reading the official binary batches, fetching and unpacking
//! them, and showing their pictures.
//!
//! CIFAR-10 holds 60 000 colour pictures of 32×32 pixels in 10 classes, 50 000 for training
//! (`data_batch_1.bin` … `data_batch_5.bin`) and 10 000 for testing (`test_batch.bin`).
//! Each file is a plain list of records of 3073 bytes: one label byte (0–9), then the 1024
//! red, 1024 green and 1024 blue pixel values of the picture, row by row. Fetch them once
//! with
//!
//! ```text
//! make fetch-cifar
//! ```
//!
//! which downloads `cifar-10-binary.tar.gz` (163 MB), checks its published MD5 and unpacks it
//! to `data/cifar-10-batches-bin/`. Then, as in the seed notebook:
//!
//! ```no_run
//! use convlab::cifar;
//! let data = cifar::load(&cifar::default_dir())?;         // load the data
//! let x_train = data.train.images.mapv(f32::from);        // images as floating point numbers
//! let x_train = x_train / 255.0;                          // in the range 0–1
//! let y_train = cifar::one_hot(&data.train.labels, 10);   // class vectors to binary matrices
//! assert_eq!(x_train.dim(), (50_000, 3, 32, 32));
//! # Ok::<(), convlab::Error>(())
//! ```
//!
//! Without the real data (tests, machines without internet), [`write_test_set`] writes small
//! batches in exactly the same format, with pictures that a network can learn to tell apart.

/// Pictures on a grid (re-exported from [`display`](crate::display), where it lives).
pub use crate::display::grid;
use crate::display::Picture;
use crate::error::{Error, Result};
use crate::fetch::{download, Checksum};
use ndarray::{s, Array2, Array3, Array4, ArrayView3, Axis};
use std::fs;
use std::path::{Path, PathBuf};

/// The class names, in label order.
pub const CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];
/// Width and height of a picture.
pub const SIDE: usize = 32;
/// Pixel bytes of one picture: 3 planes of 32×32.
pub const PIXELS: usize = 3 * SIDE * SIDE;
/// Bytes of one record: the label byte and the pixels.
pub const RECORD: usize = 1 + PIXELS;
/// The training batches, in order.
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// The test batch.
pub const TEST_FILE: &str = "test_batch.bin";
/// The folder the archive unpacks to.
pub const FOLDER: &str = "cifar-10-batches-bin";
/// The archive's file name.
pub const ARCHIVE: &str = "cifar-10-binary.tar.gz";
/// Where the binary version is published (the data set's home page).
pub const URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
/// The archive's published MD5.
pub const MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";

/// Pictures and their labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    /// `(N, 3, 32, 32)`: picture, channel (R, G, B), row, column; values 0–255.
    pub images: Array4<u8>,
    /// `N` labels, 0–9 (see [`CLASSES`]).
    pub labels: Vec<u8>,
}

impl Split {
    /// Number of pictures.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no pictures.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The first `n` pictures (all of them when there are fewer).
    pub fn first(&self, n: usize) -> Split {
        let n = n.min(self.len());
        Split {
            images: self.images.slice(s![..n, .., .., ..]).to_owned(),
            labels: self.labels[..n].to_vec(),
        }
    }

    /// How many pictures each class has.
    pub fn class_counts(&self) -> [usize; 10] {
        let mut counts = [0; 10];
        for &l in &self.labels {
            counts[usize::from(l)] += 1;
        }
        counts
    }

    fn concat(parts: Vec<Split>) -> Split {
        let views: Vec<_> = parts.iter().map(|p| p.images.view()).collect();
        let images = ndarray::concatenate(Axis(0), &views).expect("all batches are N×3×32×32");
        let labels = parts
            .iter()
            .flat_map(|p| p.labels.iter().copied())
            .collect();
        Split { images, labels }
    }
}

/// The training and the test split.
#[derive(Clone, Debug, PartialEq)]
pub struct Cifar10 {
    /// 50 000 pictures in the real data set.
    pub train: Split,
    /// 10 000 pictures in the real data set.
    pub test: Split,
}

impl Cifar10 {
    /// The first `n_train` training and `n_test` test pictures (quick runs).
    pub fn subset(&self, n_train: usize, n_test: usize) -> Cifar10 {
        Cifar10 {
            train: self.train.first(n_train),
            test: self.test.first(n_test),
        }
    }
}

/// The folder holding the batches: `CONVLAB_CIFAR_DIR` when set, else
/// `data/cifar-10-batches-bin`.
pub fn default_dir() -> PathBuf {
    match std::env::var_os("CONVLAB_CIFAR_DIR") {
        Some(d) => PathBuf::from(d),
        None => crate::data::data_dir().join(FOLDER),
    }
}

/// Reads one binary batch file.
///
/// A file whose size is not a whole number of 3073-byte records, or with a label above 9,
/// is refused with an error naming the file and the record.
///
/// ```
/// use convlab::cifar;
/// let dir = std::env::temp_dir().join("convlab-cifar-doc-read");
/// let split = cifar::synthetic(4, 1);
/// cifar::write_batch(&dir.join("b.bin"), &split)?;
/// assert_eq!(cifar::read_batch(&dir.join("b.bin"))?, split);
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn read_batch(path: &Path) -> Result<Split> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    if bytes.is_empty() {
        return Err(Error::format(
            path,
            "the file is empty, not a CIFAR-10 batch; delete it and run `make fetch-cifar` again",
        ));
    }
    if bytes.len() % RECORD != 0 {
        let whole = bytes.len() / RECORD;
        return Err(Error::format(
            path,
            format!(
                "{} bytes is not a whole number of CIFAR-10 records (1 label byte + {PIXELS} pixel bytes = {RECORD} each): \
                 record {} is cut off after {} bytes. The file is truncated or not a CIFAR-10 binary batch; \
                 delete it and run `make fetch-cifar` again",
                bytes.len(),
                whole,
                bytes.len() - whole * RECORD
            ),
        ));
    }
    let n = bytes.len() / RECORD;
    let mut labels = Vec::with_capacity(n);
    let mut pixels = Vec::with_capacity(n * PIXELS);
    for (i, record) in bytes.chunks_exact(RECORD).enumerate() {
        let label = record[0];
        if label > 9 {
            return Err(Error::format(
                path,
                format!(
                    "record {i} (byte offset {}) has label {label}, but CIFAR-10 labels are 0–9; \
                     is this a CIFAR-100 file (2 label bytes per record)? Use the CIFAR-10 binary version",
                    i * RECORD
                ),
            ));
        }
        labels.push(label);
        pixels.extend_from_slice(&record[1..]);
    }
    let images =
        Array4::from_shape_vec((n, 3, SIDE, SIDE), pixels).expect("n records of 3072 bytes");
    Ok(Split { images, labels })
}

/// Writes pictures and labels as one binary batch file, in the official format.
pub fn write_batch(path: &Path, split: &Split) -> Result<()> {
    let (n, c, h, w) = split.images.dim();
    if (c, h, w) != (3, SIDE, SIDE) || n != split.labels.len() {
        return Err(Error::Shape(format!(
            "a CIFAR-10 batch holds N×3×32×32 pictures and N labels, got {n}×{c}×{h}×{w} pictures and {} labels",
            split.labels.len()
        )));
    }
    if let Some(bad) = split.labels.iter().find(|&&l| l > 9) {
        return Err(Error::Value(format!(
            "label {bad} is not a CIFAR-10 class (0–9)"
        )));
    }
    let mut bytes = Vec::with_capacity(n * RECORD);
    for (i, &label) in split.labels.iter().enumerate() {
        bytes.push(label);
        bytes.extend(split.images.index_axis(Axis(0), i).iter());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

fn missing_help(dir: &Path, file: &str) -> Error {
    Error::io(
        dir.join(file),
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "CIFAR-10 is not there. Fetch it once (163 MB) with `make fetch-cifar` \
                 from the top of the repository, or point CONVLAB_CIFAR_DIR at a folder holding {} and {TEST_FILE}",
                TRAIN_FILES.join(", ")
            ),
        ),
    )
}

/// Reads the five training batches and the test batch from `dir`.
///
/// ```no_run
/// let data = convlab::cifar::load(&convlab::cifar::default_dir())?;
/// assert_eq!(data.train.len(), 50_000);
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn load(dir: &Path) -> Result<Cifar10> {
    for f in TRAIN_FILES.iter().chain([&TEST_FILE]) {
        if !dir.join(f).exists() {
            return Err(missing_help(dir, f));
        }
    }
    let parts = TRAIN_FILES
        .iter()
        .map(|f| read_batch(&dir.join(f)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Cifar10 {
        train: Split::concat(parts),
        test: read_batch(&dir.join(TEST_FILE))?,
    })
}

/// Pictures `(N, 3, 32, 32)` of 0–255 bytes as floats in 0–1.
pub fn to_unit_float(images: &Array4<u8>) -> Array4<f32> {
    images.mapv(|v| f32::from(v) / 255.0)
}

/// Labels as one-hot rows ("binary class matrices"): row `i` is all zeros but a 1 in column
/// `labels[i]`.
///
/// ```
/// let y = convlab::cifar::one_hot(&[2, 0], 3);
/// assert_eq!(y, ndarray::array![[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]);
/// ```
pub fn one_hot(labels: &[u8], classes: usize) -> Array2<f32> {
    let mut y = Array2::zeros((labels.len(), classes));
    for (i, &l) in labels.iter().enumerate() {
        if usize::from(l) < classes {
            y[[i, usize::from(l)]] = 1.0;
        }
    }
    y
}

/// A small, fast, seedable random number generator (SplitMix64), so that runs repeat.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform integer in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * n as f64) as usize
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// Colours of the synthetic classes (R, G, B).
const PALETTE: [[f32; 3]; 10] = [
    [200.0, 60.0, 60.0],
    [60.0, 200.0, 60.0],
    [60.0, 60.0, 200.0],
    [200.0, 200.0, 60.0],
    [200.0, 60.0, 200.0],
    [60.0, 200.0, 200.0],
    [230.0, 140.0, 40.0],
    [120.0, 120.0, 120.0],
    [40.0, 120.0, 230.0],
    [150.0, 90.0, 40.0],
];

/// `n` synthetic pictures that a network can learn to tell apart, in the classes 0, 1, …,
/// 9, 0, 1, … in turn: each class has its own colour and stripe pattern, with noise and a
/// random stripe phase on top. Deterministic for a given `seed`.
///
/// ```
/// let s = convlab::cifar::synthetic(20, 7);
/// assert_eq!(s.images.dim(), (20, 3, 32, 32));
/// assert_eq!(s.class_counts(), [2; 10]);
/// assert_eq!(s, convlab::cifar::synthetic(20, 7));
/// ```
pub fn synthetic(n: usize, seed: u64) -> Split {
    let mut rng = Rng::new(seed);
    let mut images = Array4::<u8>::zeros((n, 3, SIDE, SIDE));
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    for (i, &label) in labels.iter().enumerate() {
        let k = usize::from(label);
        let period = 3.0 + (k % 3) as f32 * 2.0;
        let vertical = k % 2 == 1;
        let phase = rng.uniform(0.0, 6.3) as f32;
        for r in 0..SIDE {
            for c in 0..SIDE {
                let t = if vertical { c } else { r } as f32;
                let stripe = 45.0 * (t * std::f32::consts::TAU / period + phase).sin();
                for (ch, &base) in PALETTE[k].iter().enumerate() {
                    let noise = rng.uniform(-35.0, 35.0) as f32;
                    let v = base + stripe + noise;
                    images[[i, ch, r, c]] = v.round().clamp(0.0, 255.0) as u8;
                }
            }
        }
    }
    Split { images, labels }
}

/// Writes a complete CIFAR-10 folder of synthetic batches (see [`synthetic`]) to `dir`:
/// five training batches and a test batch of `per_batch` records each, plus
/// `batches.meta.txt` with the class names. Returns the batch files written.
///
/// ```
/// let dir = std::env::temp_dir().join("convlab-cifar-doc-testset");
/// let files = convlab::cifar::write_test_set(&dir, 20, 0)?;
/// assert_eq!(files.len(), 6);
/// let data = convlab::cifar::load(&dir)?;
/// assert_eq!((data.train.len(), data.test.len()), (100, 20));
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn write_test_set(dir: &Path, per_batch: usize, seed: u64) -> Result<Vec<PathBuf>> {
    if per_batch == 0 {
        return Err(Error::Value(
            "a test batch needs at least one record".into(),
        ));
    }
    let mut files = Vec::new();
    for (b, name) in TRAIN_FILES.iter().chain([&TEST_FILE]).enumerate() {
        let path = dir.join(name);
        write_batch(
            &path,
            &synthetic(per_batch, seed.wrapping_mul(31).wrapping_add(b as u64)),
        )?;
        files.push(path);
    }
    let meta = dir.join("batches.meta.txt");
    fs::write(&meta, CLASSES.join("\n") + "\n").map_err(|e| Error::io(&meta, e))?;
    let note = dir.join(SYNTHETIC_NOTE);
    fs::write(
        &note,
        "Synthetic test batches written by `convlab make-test-cifar`: coloured stripes, not the CIFAR-10 photos.\n",
    )
    .map_err(|e| Error::io(&note, e))?;
    Ok(files)
}

/// The file [`write_test_set`] leaves next to its batches, so that they are never taken for
/// the real data set.
pub const SYNTHETIC_NOTE: &str = "SYNTHETIC.txt";

/// When `dir` holds synthetic test batches (see [`write_test_set`]), a line saying so.
///
/// ```
/// let dir = std::env::temp_dir().join("convlab-cifar-doc-note");
/// convlab::cifar::write_test_set(&dir, 1, 0)?;
/// assert!(convlab::cifar::synthetic_note(&dir).unwrap().contains("not the CIFAR-10 photos"));
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn synthetic_note(dir: &Path) -> Option<String> {
    fs::read_to_string(dir.join(SYNTHETIC_NOTE))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Checks that `dir` holds the six batch files and that each reads cleanly.
pub fn check_dir(dir: &Path) -> Result<(usize, usize)> {
    let data = load(dir)?;
    Ok((data.train.len(), data.test.len()))
}

/// Unpacks a `cifar-10-binary.tar.gz` archive into `parent`, giving
/// `parent/cifar-10-batches-bin`. The archive is unpacked into a temporary folder next to
/// it and checked (every batch must read cleanly) before the folder is moved into place, so
/// a cut-off run leaves no half-filled data folder.
pub fn unpack(archive: &Path, parent: &Path) -> Result<PathBuf> {
    let tmp = parent.join(format!(".{FOLDER}.unpack"));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    }
    fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let file = fs::File::open(archive).map_err(|e| Error::io(archive, e))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
    tar.unpack(&tmp).map_err(|e| {
        Error::format(
            archive,
            format!("cannot unpack ({e}); delete it and run `make fetch-cifar` again"),
        )
    })?;
    let unpacked = tmp.join(FOLDER);
    if !unpacked.is_dir() {
        return Err(Error::format(
            archive,
            format!("the archive has no {FOLDER}/ folder; is it the CIFAR-10 *binary* version?"),
        ));
    }
    check_dir(&unpacked)?;
    let dest = parent.join(FOLDER);
    if dest.exists() {
        fs::remove_dir_all(&dest).map_err(|e| Error::io(&dest, e))?;
    }
    fs::rename(&unpacked, &dest).map_err(|e| Error::io(&dest, e))?;
    fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    Ok(dest)
}

/// Downloads the archive from `url` into `parent` (checked against `checksum`, resumable,
/// see [`crate::fetch::download`]) and unpacks it to `parent/cifar-10-batches-bin`. Does
/// nothing when that folder is already complete.
///
/// ```no_run
/// use convlab::{cifar, fetch::Checksum};
/// let dir = cifar::fetch(cifar::URL, &Checksum::Md5(cifar::MD5.into()), &convlab::data::data_dir())?;
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn fetch(url: &str, checksum: &Checksum, parent: &Path) -> Result<PathBuf> {
    let dest = parent.join(FOLDER);
    if check_dir(&dest).is_ok() {
        println!("{} is already complete", dest.display());
        return Ok(dest);
    }
    let archive = download(url, &parent.join(ARCHIVE), checksum)?;
    println!("unpacking {}", archive.display());
    unpack(&archive, parent)
}

/// One picture `(3, 32, 32)` of 0–1 floats as a [`Picture`] (channels last, as `show` wants).
pub fn picture(image: ArrayView3<f32>) -> Result<Picture> {
    let hwc: Array3<f32> = image.permuted_axes([1, 2, 0]).to_owned();
    Picture::new(&hwc.mapv(|v| v.clamp(0.0, 1.0)))
}

/// The first picture of each class found among `images` `(N, 3, 32, 32)` (0–1 floats),
/// titled with its class name, on a grid of 5 columns.
///
/// ```
/// let s = convlab::cifar::synthetic(10, 0);
/// let x = convlab::cifar::to_unit_float(&s.images);
/// let p = convlab::cifar::class_samples(&x, &s.labels)?;
/// assert!(p.rgb.width() > 5 * 32);
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn class_samples(images: &Array4<f32>, labels: &[u8]) -> Result<Picture> {
    let mut pictures = Vec::new();
    for class in 0..10u8 {
        if let Some(i) = labels.iter().position(|&l| l == class) {
            pictures
                .push(picture(images.index_axis(Axis(0), i))?.titled(CLASSES[usize::from(class)]));
        }
    }
    grid(&pictures, 5)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("convlab-cifar-unit-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn reads_records_in_the_official_layout() {
        // One record written by hand: label 7, red plane all 1, green 2, blue pixel (r, c) = r.
        let mut bytes = vec![7u8];
        bytes.extend(std::iter::repeat_n(1u8, 1024));
        bytes.extend(std::iter::repeat_n(2u8, 1024));
        for r in 0..32u8 {
            bytes.extend(std::iter::repeat_n(r, 32));
        }
        let d = tmp("layout");
        let path = d.join("one.bin");
        fs::write(&path, &bytes).unwrap();
        let split = read_batch(&path).unwrap();
        assert_eq!(split.labels, vec![7]);
        assert_eq!(split.images.dim(), (1, 3, 32, 32));
        assert_eq!(split.images[[0, 0, 5, 9]], 1);
        assert_eq!(split.images[[0, 1, 31, 0]], 2);
        assert_eq!(split.images[[0, 2, 17, 3]], 17);
        assert_eq!(split.images[[0, 2, 3, 17]], 3);
    }

    #[test]
    fn truncated_file_names_file_and_record() {
        let d = tmp("trunc");
        let path = d.join("data_batch_1.bin");
        write_batch(&path, &synthetic(3, 0)).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        bytes.truncate(2 * RECORD + 100);
        fs::write(&path, &bytes).unwrap();
        let msg = read_batch(&path).unwrap_err().to_string();
        assert!(msg.contains("data_batch_1.bin"), "{msg}");
        assert!(msg.contains("record 2 is cut off after 100 bytes"), "{msg}");
        assert!(msg.contains("fetch-cifar"), "{msg}");
    }

    #[test]
    fn bad_label_names_file_and_record() {
        let d = tmp("label");
        let path = d.join("test_batch.bin");
        write_batch(&path, &synthetic(4, 0)).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        bytes[3 * RECORD] = 12;
        fs::write(&path, &bytes).unwrap();
        let msg = read_batch(&path).unwrap_err().to_string();
        assert!(msg.contains("test_batch.bin"), "{msg}");
        assert!(msg.contains("record 3"), "{msg}");
        assert!(msg.contains("label 12"), "{msg}");
    }

    #[test]
    fn empty_file_is_refused() {
        let d = tmp("empty");
        let path = d.join("e.bin");
        fs::write(&path, b"").unwrap();
        assert!(read_batch(&path).unwrap_err().to_string().contains("empty"));
    }

    #[test]
    fn load_joins_the_five_batches_in_order_and_says_how_to_fetch() {
        let d = tmp("load");
        let msg = load(&d).unwrap_err().to_string();
        assert!(
            msg.contains("fetch-cifar") && msg.contains("data_batch_1.bin"),
            "{msg}"
        );
        write_test_set(&d, 10, 3).unwrap();
        let data = load(&d).unwrap();
        assert_eq!(data.train.len(), 50);
        assert_eq!(data.test.len(), 10);
        let b3 = read_batch(&d.join("data_batch_3.bin")).unwrap();
        assert_eq!(data.train.images.slice(s![20..30, .., .., ..]), b3.images);
        assert_eq!(&data.train.labels[20..30], &b3.labels[..]);
        let sub = data.subset(15, 4);
        assert_eq!((sub.train.len(), sub.test.len()), (15, 4));
    }

    #[test]
    fn unit_float_and_one_hot() {
        let imgs = Array4::from_shape_fn((1, 3, 32, 32), |(_, c, _, _)| [0u8, 51, 255][c]);
        let x = to_unit_float(&imgs);
        assert_eq!(x[[0, 0, 0, 0]], 0.0);
        assert!((x[[0, 1, 4, 4]] - 0.2).abs() < 1e-7);
        assert_eq!(x[[0, 2, 31, 31]], 1.0);
        let y = one_hot(&[9, 0, 3], 10);
        assert_eq!(y.sum(), 3.0);
        assert_eq!((y[[0, 9]], y[[1, 0]], y[[2, 3]]), (1.0, 1.0, 1.0));
    }

    #[test]
    fn rng_is_uniform_enough_and_shuffle_is_a_permutation() {
        let mut rng = Rng::new(1);
        let mean: f64 = (0..10_000).map(|_| rng.unit()).sum::<f64>() / 10_000.0;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
        let mut v: Vec<usize> = (0..100).collect();
        rng.shuffle(&mut v);
        assert_ne!(v, (0..100).collect::<Vec<_>>());
        v.sort();
        assert_eq!(v, (0..100).collect::<Vec<_>>());
    }
}
