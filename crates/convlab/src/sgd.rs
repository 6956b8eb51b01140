//! Keras 1's optimiser: `SGD(lr, momentum, decay, nesterov)` with its decaying learning rate,
//! update for update, and its velocities saved with a checkpoint.
//!
//! ```
//! use convlab::sgd::KerasSgd;
//! let vs = tch::nn::VarStore::new(tch::Device::Cpu);
//! let _w = vs.root().var("w", &[2], tch::nn::Init::Const(1.0));
//! let opt = KerasSgd::seed_settings(&vs)?;
//! assert_eq!((opt.lr, opt.momentum, opt.nesterov), (0.01, 0.9, true));
//! # Ok::<(), convlab::Error>(())
//! ```

use crate::error::{Error, Result};
use std::path::Path;
use tch::nn;
use tch::{Device, Tensor};

/// Keras 1's learning rate after `iterations` updates: `lr0 / (1 + decay · iterations)`.
///
/// ```
/// use convlab::train::keras_lr;
/// assert_eq!(keras_lr(0.01, 1e-6, 0), 0.01);
/// assert!((keras_lr(0.01, 1e-6, 1_000_000) - 0.005).abs() < 1e-15);
/// ```
pub fn keras_lr(lr0: f64, decay: f64, iterations: u64) -> f64 {
    let t = iterations as f64;
    lr0 / (1.0 + decay * t)
}

/// Keras 1's `SGD(lr, momentum, decay, nesterov)`, exactly.
///
/// For every weight `p` with gradient `g`, at update number `t` (0, 1, 2, …):
///
/// ```text
/// lr = lr0 / (1 + decay · t)
/// v  = momentum · v − lr · g              (v starts at 0)
/// p  = p + momentum · v − lr · g          (Nesterov; plain momentum: p = p + v)
/// ```
///
/// Why not `tch::nn::Sgd` with `set_lr` every step? Libtorch's SGD keeps its velocity
/// *without* the learning rate (`b = μ·b + g; p −= lr·(g + μ·b)`). With a constant rate
/// the two are the same updates; with Keras's decaying rate they drift apart slightly, and
/// libtorch's velocity cannot be saved, so a resumed run would restart it from zero. This
/// optimiser keeps Keras's velocity and saves it with the checkpoint. (The unit tests check
/// that it makes the very same updates as `tch::nn::Sgd` when `decay` is 0.)
#[derive(Debug)]
pub struct KerasSgd {
    /// Initial learning rate (`lr0`).
    pub lr: f64,
    /// Momentum `μ`.
    pub momentum: f64,
    /// Learning rate decay per update.
    pub decay: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Updates made so far (Keras's `iterations`).
    pub iterations: u64,
    params: Vec<(String, Tensor)>,
    velocity: Vec<Tensor>,
}

impl KerasSgd {
    /// An optimiser for the trainable variables of `vs`.
    pub fn new(
        vs: &nn::VarStore,
        lr: f64,
        momentum: f64,
        decay: f64,
        nesterov: bool,
    ) -> Result<KerasSgd> {
        for (name, v) in [("lr", lr), ("momentum", momentum), ("decay", decay)] {
            if !v.is_finite() || v < 0.0 {
                return Err(Error::Value(format!(
                    "{name} = {v}: it must be a number ≥ 0"
                )));
            }
        }
        let mut params: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        if params.is_empty() {
            return Err(Error::Value(
                "the variable store has no trainable weights: build the model on vs.root() before the optimiser".into(),
            ));
        }
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let velocity = params.iter().map(|(_, p)| p.zeros_like()).collect();
        Ok(KerasSgd {
            lr,
            momentum,
            decay,
            nesterov,
            iterations: 0,
            params,
            velocity,
        })
    }

    /// The seed's settings: `SGD(lr=0.01, decay=1e-6, momentum=0.9, nesterov=True)`.
    pub fn seed_settings(vs: &nn::VarStore) -> Result<KerasSgd> {
        let (lr, momentum, decay, nesterov) = (0.01, 0.9, 1e-6, true);
        KerasSgd::new(vs, lr, momentum, decay, nesterov)
    }

    /// The learning rate the next update will use.
    pub fn lr_now(&self) -> f64 {
        keras_lr(self.lr, self.decay, self.iterations)
    }

    /// Clears the gradients.
    pub fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            p.zero_grad();
        }
    }

    /// One update from the current gradients.
    pub fn step(&mut self) {
        let lr = self.lr_now();
        let mu = self.momentum;
        tch::no_grad(|| {
            for ((_, p), v) in self.params.iter_mut().zip(&mut self.velocity) {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let lr_g = &g * lr;
                *v *= mu;
                *v -= &lr_g;
                if self.nesterov {
                    let update = &*v * mu - &lr_g;
                    *p += update;
                } else {
                    *p += &*v;
                }
            }
        });
        self.iterations += 1;
    }

    /// `zero_grad`, `backward`, `step`.
    pub fn backward_step(&mut self, loss: &Tensor) {
        self.zero_grad();
        loss.backward();
        self.step();
    }

    /// Saves the velocities (safetensors) to `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        let named: Vec<(String, Tensor)> = self
            .params
            .iter()
            .zip(&self.velocity)
            .map(|((n, _), v)| (n.clone(), v.to_device(Device::Cpu).contiguous()))
            .collect();
        Tensor::write_safetensors(&named, path).map_err(|e| Error::format(path, e.to_string()))
    }

    /// Loads velocities saved by [`save`](Self::save); the names and shapes must match.
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let loaded =
            Tensor::read_safetensors(path).map_err(|e| Error::format(path, e.to_string()))?;
        let map: std::collections::HashMap<String, Tensor> = loaded.into_iter().collect();
        for ((name, _), v) in self.params.iter().zip(&mut self.velocity) {
            let t = map.get(name).ok_or_else(|| {
                Error::format(path, format!("no velocity for {name}: the checkpoint is of another model; delete the checkpoint folder"))
            })?;
            if t.size() != v.size() {
                return Err(Error::format(
                    path,
                    format!("velocity of {name} is {:?}, the model has {:?}; delete the checkpoint folder", t.size(), v.size()),
                ));
            }
            tch::no_grad(|| v.copy_(t));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::ModuleT;
    use tch::Kind;

    #[test]
    fn keras_schedule_by_hand() {
        assert_eq!(keras_lr(0.01, 1e-6, 0), 0.01);
        // 0.01 / (1 + 1e-6 · 1563) = 0.01 / 1.001563
        assert!((keras_lr(0.01, 1e-6, 1563) - 0.009_984_394_391_566).abs() < 1e-15);
        assert!((keras_lr(0.01, 1e-6, 3_000_000) - 0.0025).abs() < 1e-15);
        assert_eq!(keras_lr(0.1, 0.0, 12345), 0.1);
    }

    /// One weight w = [1.0], loss = 0.5·w² so the gradient is w. Three Keras updates by hand
    /// (lr0 = 0.1, μ = 0.9, decay = 0.5, Nesterov):
    /// t=0: lr=0.1,    g=1,        v=−0.1,              w = 1 + 0.9·(−0.1) − 0.1 = 0.81
    /// t=1: lr=0.1/1.5, g=0.81,    v=0.9·(−0.1) − 0.054 = −0.144,
    ///                             w = 0.81 + 0.9·(−0.144) − 0.054 = 0.6264
    /// t=2: lr=0.05,   g=0.6264,   v=0.9·(−0.144) − 0.03132 = −0.16092,
    ///                             w = 0.6264 − 0.144828 − 0.03132 = 0.450252
    #[test]
    fn keras_nesterov_updates_by_hand() {
        let vs = nn::VarStore::new(Device::Cpu);
        let w = vs.root().var("w", &[1], nn::Init::Const(1.0));
        let mut opt = KerasSgd::new(&vs, 0.1, 0.9, 0.5, true).unwrap();
        let mut got = Vec::new();
        for _ in 0..3 {
            let loss = (&w * &w).sum(Kind::Float) * 0.5;
            opt.backward_step(&loss);
            got.push(w.double_value(&[0]));
        }
        for (g, want) in got.iter().zip([0.81, 0.6264, 0.450252]) {
            assert!((g - want).abs() < 1e-6, "got {got:?}");
        }
        assert_eq!(opt.iterations, 3);
        assert!((opt.lr_now() - 0.1 / 2.5).abs() < 1e-15);
    }

    #[test]
    fn plain_momentum_by_hand() {
        let vs = nn::VarStore::new(Device::Cpu);
        let w = vs.root().var("w", &[1], nn::Init::Const(1.0));
        let mut opt = KerasSgd::new(&vs, 0.1, 0.5, 0.0, false).unwrap();
        // t=0: v = −0.1, w = 0.9; t=1: v = −0.05 − 0.09 = −0.14, w = 0.76
        for _ in 0..2 {
            let loss = (&w * &w).sum(Kind::Float) * 0.5;
            opt.backward_step(&loss);
        }
        assert!((w.double_value(&[0]) - 0.76).abs() < 1e-6);
    }

    #[test]
    fn same_updates_as_libtorch_sgd_without_decay() {
        use tch::nn::OptimizerConfig;
        let run = |keras: bool| {
            // Fixed numbers, not the global random generator: tests run in parallel threads.
            let fixed = |n: i64, f: f64| (Tensor::arange(n, (Kind::Float, Device::Cpu)) * f).sin();
            let vs = nn::VarStore::new(Device::Cpu);
            let lin = nn::linear(vs.root() / "l", 6, 3, Default::default());
            tch::no_grad(|| {
                lin.ws
                    .shallow_clone()
                    .copy_(&fixed(18, 0.37).reshape([3, 6]));
                if let Some(bs) = &lin.bs {
                    bs.shallow_clone().copy_(&fixed(3, 1.1));
                }
            });
            let x = fixed(48, 0.71).reshape([8, 6]);
            let y = fixed(24, 1.3).reshape([8, 3]);
            let mut k = KerasSgd::new(&vs, 0.05, 0.9, 0.0, true).unwrap();
            let mut t = nn::Sgd {
                momentum: 0.9,
                dampening: 0.0,
                wd: 0.0,
                nesterov: true,
            }
            .build(&vs, 0.05)
            .unwrap();
            for _ in 0..20 {
                let loss = (lin.forward_t(&x, true) - &y).square().mean(Kind::Float);
                if keras {
                    k.backward_step(&loss);
                } else {
                    t.backward_step(&loss);
                }
            }
            lin.ws.copy()
        };
        let (a, b) = (run(true), run(false));
        let diff = (a - b).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "KerasSgd and nn::Sgd differ by {diff}");
    }
}
