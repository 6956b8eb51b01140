//! The network's answer (LA13): ImageNet's 1000 class names, the most probable guesses, and
//! a chart of them.
//!
//! ```
//! let mut p = vec![0.0f32; 1000];
//! p[281] = 1.0;
//! let top = convlab::imagenet::top_k(&tch::Tensor::from_slice(&p), 1)?;
//! assert_eq!(top[0].to_string(), "100.0%  tabby (class 281)");
//! # Ok::<(), convlab::Error>(())
//! ```

use crate::display::Picture;
use crate::error::{Error, Result};
use crate::tensor::tensor_to_array;
use std::fmt;
use std::sync::OnceLock;
use tch::Tensor;

/// The 1000 ImageNet class names in the order of the network's outputs (torchvision's list).
///
/// ```
/// let labels = convlab::imagenet::imagenet_classes();
/// assert_eq!(labels.len(), 1000);
/// assert_eq!(labels[281], "tabby");
/// ```
pub fn imagenet_classes() -> &'static [&'static str] {
    static LABELS: OnceLock<Vec<&'static str>> = OnceLock::new();
    LABELS.get_or_init(|| include_str!("imagenet_classes.txt").lines().collect())
}

/// One of the network's guesses.
#[derive(Clone, Debug, PartialEq)]
pub struct Guess {
    /// Output index, 0–999.
    pub class: usize,
    /// ImageNet class name.
    pub label: &'static str,
    /// Probability the network gives it.
    pub probability: f64,
}

impl fmt::Display for Guess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:5.1}%  {} (class {})",
            100.0 * self.probability,
            self.label,
            self.class
        )
    }
}

/// The `k` most probable classes of one picture's `(1000,)` or `(1, 1000)` probabilities,
/// most probable first.
///
/// ```
/// let mut p = vec![0.0f32; 1000];
/// p[281] = 0.7;
/// p[282] = 0.2;
/// let top = convlab::imagenet::top_k(&tch::Tensor::from_slice(&p), 2)?;
/// assert_eq!(top[0].label, "tabby");
/// assert_eq!(top[1].class, 282);
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn top_k(probabilities: &Tensor, k: usize) -> Result<Vec<Guess>> {
    let size = probabilities.size();
    let labels = imagenet_classes();
    if size.iter().product::<i64>() != labels.len() as i64
        || size.iter().filter(|&&d| d != 1).count() > 1
    {
        return Err(Error::Shape(format!(
            "top_k takes the {} probabilities of one picture, shape (1000,) or (1, 1000), got {size:?}; \
             for a batch, pass one row: probabilities.get(i)",
            labels.len()
        )));
    }
    let p = tensor_to_array(probabilities)?;
    if let Some(v) = p.iter().find(|v| !v.is_finite()) {
        return Err(Error::Value(format!(
            "the probabilities hold {v}: the network's output is broken"
        )));
    }
    let mut ranked: Vec<(usize, f32)> = p.iter().cloned().enumerate().collect();
    ranked.sort_by(|x, y| y.1.total_cmp(&x.1));
    Ok(ranked
        .into_iter()
        .take(k)
        .map(|(class, prob)| Guess {
            class,
            label: labels[class],
            probability: f64::from(prob),
        })
        .collect())
}

/// A bar chart of guesses (most probable on top).
pub fn guesses_chart(title: &str, guesses: &[Guess]) -> Result<Picture> {
    let labels: Vec<&str> = guesses.iter().map(|g| g.label).collect();
    let values: Vec<f64> = guesses.iter().map(|g| g.probability).collect();
    crate::plot::bars(title, &labels, &values)
}
