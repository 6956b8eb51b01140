//! Keras's `model.summary()` for the course's models: one row per layer with its output
//! shape and number of weights, and the total. tch has no summary of its own; the VGG-16
//! builder ([`crate::vgg::Model::summary`]) and the CIFAR model ([`crate::train::Stack::summary`])
//! both give this table.
//!
//! ```
//! use convlab::summary::{Summary, SummaryRow};
//! let s = Summary::new(
//!     vec![3, 32, 32],
//!     vec![SummaryRow::new("conv1", "Conv2D, ReLU", vec![32, 32, 32], 896)],
//! );
//! assert_eq!(s.total_params, 896);
//! assert!(s.to_string().ends_with("total weights: 896"));
//! ```

use std::fmt;

/// One line of a [`Summary`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryRow {
    /// The layer's name.
    pub name: String,
    /// Its kind and activation, e.g. `Conv2D, ReLU`; empty when the model does not say.
    pub kind: String,
    /// Its output shape for the summary's input.
    pub output_shape: Vec<i64>,
    /// Its number of weights (biases included).
    pub params: i64,
}

impl SummaryRow {
    /// A row from its parts.
    pub fn new(
        name: impl Into<String>,
        kind: impl Into<String>,
        output_shape: Vec<i64>,
        params: i64,
    ) -> Self {
        SummaryRow {
            name: name.into(),
            kind: kind.into(),
            output_shape,
            params,
        }
    }
}

/// A model's layers with their output shapes and weight counts; print it with
/// `println!("{summary}")`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The input shape the summary was computed for.
    pub input_shape: Vec<i64>,
    /// One row per layer.
    pub rows: Vec<SummaryRow>,
    /// All the model's weights and biases.
    pub total_params: i64,
}

impl Summary {
    /// A summary whose total is the sum of its rows.
    pub fn new(input_shape: Vec<i64>, rows: Vec<SummaryRow>) -> Self {
        let total_params = rows.iter().map(|r| r.params).sum();
        Summary {
            input_shape,
            rows,
            total_params,
        }
    }

    /// The total number of weights and biases.
    pub fn total(&self) -> i64 {
        self.total_params
    }

    /// The row of the layer called `name`.
    ///
    /// ```
    /// use convlab::summary::{Summary, SummaryRow};
    /// let s = Summary::new(vec![4], vec![SummaryRow::new("dense", "", vec![2], 10)]);
    /// assert_eq!(s.layer("dense").map(|r| r.params), Some(10));
    /// assert!(s.layer("conv").is_none());
    /// ```
    pub fn layer(&self, name: &str) -> Option<&SummaryRow> {
        self.rows.iter().find(|r| r.name == name)
    }
}

/// `(3, 224, 224)`.
pub(crate) fn shape_text(shape: &[i64]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("({})", dims.join(", "))
}

/// Writes `1234567` as `1,234,567`.
///
/// ```
/// assert_eq!(convlab::summary::thousands(138_357_544), "138,357,544");
/// assert_eq!(convlab::summary::thousands(-1000), "-1,000");
/// ```
pub fn thousands(n: i64) -> String {
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "input: {}", shape_text(&self.input_shape))?;
        writeln!(
            f,
            "{:>3}  {:<32} {:<20} {:>13}",
            "#", "layer (kind)", "output shape", "weights"
        )?;
        writeln!(f, "{}", "-".repeat(72))?;
        for (i, r) in self.rows.iter().enumerate() {
            let label = if r.kind.is_empty() {
                r.name.clone()
            } else {
                format!("{} ({})", r.name, r.kind)
            };
            writeln!(
                f,
                "{i:>3}  {label:<32} {:<20} {:>13}",
                shape_text(&r.output_shape),
                thousands(r.params)
            )?;
        }
        writeln!(f, "{}", "-".repeat(72))?;
        write!(f, "total weights: {}", thousands(self.total_params))
    }
}
