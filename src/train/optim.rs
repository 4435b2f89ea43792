//! Optimizers whose state emolab owns (so a checkpoint can hold it and a resumed run continues
//! exactly): Adam, AdamW and SGD with momentum, written as torch.optim writes them; learning-
//! rate schedules; gradient-norm clipping.

use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::{Kind, Tensor};

/// Which update rule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// torch.optim.Adam: weight decay added to the gradient (= L2 in the loss).
    #[default]
    Adam,
    /// torch.optim.AdamW: decoupled weight decay.
    AdamW,
    /// torch.optim.SGD with momentum (weight decay added to the gradient).
    Sgd,
}

/// Optimizer settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimizerSpec {
    pub kind: OptimizerKind,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub momentum: f64,
    /// Weight decay of every trainable variable (AdamW's default use).
    pub weight_decay: f64,
}

impl Default for OptimizerSpec {
    fn default() -> Self {
        OptimizerSpec {
            kind: OptimizerKind::Adam,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            momentum: 0.9,
            weight_decay: 0.0,
        }
    }
}

/// An optimizer over a var store's trainable variables, with per-group extra weight decay.
pub struct Optimizer {
    spec: OptimizerSpec,
    params: Vec<(Tensor, usize)>,
    group_decay: Vec<(usize, f64)>,
    /// Learning-rate factors of groups (pretrained layers fine-tuned slower).
    group_lr: Vec<(usize, f64)>,
    /// First moments (Adam) or momentum buffers (SGD), one per parameter.
    m: Vec<Tensor>,
    /// Second moments (Adam only).
    v: Vec<Tensor>,
    pub step: i64,
    pub lr: f64,
}

impl Optimizer {
    pub fn new(vs: &VarStore, spec: &OptimizerSpec, lr: f64) -> Optimizer {
        let vars = vs.variables_.lock().expect("var store lock");
        let params: Vec<(Tensor, usize)> = vars
            .trainable_variables
            .iter()
            .map(|v| (v.tensor.shallow_clone(), v.group))
            .collect();
        let zeros = |p: &Tensor| p.zeros_like().detach();
        Optimizer {
            spec: spec.clone(),
            m: params.iter().map(|(p, _)| zeros(p)).collect(),
            v: params.iter().map(|(p, _)| zeros(p)).collect(),
            params,
            group_decay: Vec::new(),
            group_lr: Vec::new(),
            step: 0,
            lr,
        }
    }

    /// Extra weight decay for the variables of one group (the models' L2 group).
    pub fn set_group_decay(&mut self, group: usize, decay: f64) {
        self.group_decay.retain(|(g, _)| *g != group);
        self.group_decay.push((group, decay));
    }

    /// The variables of one group learn at `factor` × the learning rate.
    pub fn set_group_lr_scale(&mut self, group: usize, factor: f64) {
        self.group_lr.retain(|(g, _)| *g != group);
        self.group_lr.push((group, factor));
    }

    fn lr_of(&self, group: usize) -> f64 {
        self.group_lr
            .iter()
            .find(|(g, _)| *g == group)
            .map_or(self.lr, |(_, f)| self.lr * f)
    }

    fn decay_of(&self, group: usize) -> f64 {
        self.spec.weight_decay
            + self
                .group_decay
                .iter()
                .filter(|(g, _)| *g == group)
                .map(|(_, d)| d)
                .sum::<f64>()
    }

    pub fn zero_grad(&mut self) {
        for (p, _) in &mut self.params {
            p.zero_grad();
        }
    }

    /// Scale gradients so their global L2 norm is at most `max_norm`; returns the norm before.
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> f64 {
        tch::no_grad(|| {
            let total: f64 = self
                .params
                .iter()
                .map(|(p, _)| p.grad())
                .filter(|g| g.defined())
                .map(|g| g.pow_tensor_scalar(2).sum(Kind::Double).double_value(&[]))
                .sum::<f64>()
                .sqrt();
            if total > max_norm {
                let scale = max_norm / (total + 1e-6);
                for (p, _) in &self.params {
                    let mut g = p.grad();
                    if g.defined() {
                        let _ = g.g_mul_scalar_(scale);
                    }
                }
            }
            total
        })
    }

    /// One update with the current gradients.
    pub fn step(&mut self) {
        self.step += 1;
        let t = self.step as f64;
        let s = self.spec.clone();
        tch::no_grad(|| {
            for i in 0..self.params.len() {
                let (p, group) = (&self.params[i].0, self.params[i].1);
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let wd = self.decay_of(group);
                let lr = self.lr_of(group);
                let mut p = p.shallow_clone();
                match s.kind {
                    OptimizerKind::Adam | OptimizerKind::AdamW => {
                        // torch.optim.Adam's single-tensor update, in place where torch's is:
                        // few passes over the weights, few temporaries.
                        let g = if s.kind == OptimizerKind::Adam && wd != 0.0 {
                            let mut d = p.g_mul_scalar(wd);
                            let _ = d.g_add_(&g);
                            d
                        } else {
                            g
                        };
                        if s.kind == OptimizerKind::AdamW && wd != 0.0 {
                            let _ = p.g_mul_scalar_(1.0 - lr * wd);
                        }
                        let m = &mut self.m[i];
                        let _ = m.lerp_(&g, 1.0 - s.beta1);
                        let v = &mut self.v[i];
                        let _ = v.g_mul_scalar_(s.beta2);
                        let mut g2 = &g * &g;
                        let _ = g2.g_mul_scalar_(1.0 - s.beta2);
                        let _ = v.g_add_(&g2);
                        let bc1 = 1.0 - s.beta1.powf(t);
                        let bc2 = 1.0 - s.beta2.powf(t);
                        let mut denom = v.sqrt();
                        let _ = denom.g_div_scalar_(bc2.sqrt());
                        let _ = denom.g_add_scalar_(s.eps);
                        let mut update = &*m / &denom;
                        let _ = update.g_mul_scalar_(-lr / bc1);
                        let _ = p.g_add_(&update);
                    }
                    OptimizerKind::Sgd => {
                        let g = if wd != 0.0 { &g + &p * wd } else { g };
                        let buf = &mut self.m[i];
                        if self.step == 1 {
                            buf.copy_(&g);
                        } else {
                            let _ = buf.g_mul_scalar_(s.momentum);
                            let _ = buf.g_add_(&g);
                        }
                        let _ = p.g_sub_(&(&*buf * lr));
                    }
                }
            }
        });
    }

    /// The state tensors, named for a checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (i, (m, v)) in self.m.iter().zip(&self.v).enumerate() {
            out.push((format!("opt.m.{i}"), m.shallow_clone()));
            out.push((format!("opt.v.{i}"), v.shallow_clone()));
        }
        out.push(("opt.step".into(), Tensor::from(self.step)));
        out.push(("opt.lr".into(), Tensor::from(self.lr)));
        out
    }

    /// Restore what [`Self::state`] returned.
    pub fn load_state(&mut self, named: &[(String, Tensor)]) -> Result<(), String> {
        let get = |n: &str| {
            named
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, t)| t)
                .ok_or_else(|| format!("checkpoint has no {n}"))
        };
        tch::no_grad(|| -> Result<(), String> {
            for i in 0..self.m.len() {
                self.m[i].copy_(get(&format!("opt.m.{i}"))?);
                self.v[i].copy_(get(&format!("opt.v.{i}"))?);
            }
            Ok(())
        })?;
        self.step = get("opt.step")?.int64_value(&[]);
        self.lr = get("opt.lr")?.double_value(&[]);
        Ok(())
    }
}

/// Learning-rate schedule, applied once per epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    #[default]
    Constant,
    /// Keras ReduceLROnPlateau on validation loss (the seed's: factor 0.5, patience 3, min 1e-6).
    Plateau {
        factor: f64,
        patience: usize,
        min_lr: f64,
    },
    /// Linear warm-up, then cosine decay to `min_lr` at the last epoch.
    Cosine { warmup_epochs: usize, min_lr: f64 },
    /// Multiply by `gamma` every `step` epochs.
    Step { step: usize, gamma: f64 },
}

/// A schedule's running state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scheduler {
    pub schedule: Schedule,
    pub base_lr: f64,
    pub epochs: usize,
    pub best_loss: Option<f64>,
    pub bad_epochs: usize,
}

impl Scheduler {
    pub fn new(schedule: Schedule, base_lr: f64, epochs: usize) -> Scheduler {
        Scheduler {
            schedule,
            base_lr,
            epochs,
            best_loss: None,
            bad_epochs: 0,
        }
    }

    /// Learning rate for epoch `epoch` (1-based) before it runs, given the current one.
    pub fn lr_at(&self, epoch: usize, current: f64) -> f64 {
        match &self.schedule {
            Schedule::Constant | Schedule::Plateau { .. } => current,
            Schedule::Cosine {
                warmup_epochs,
                min_lr,
            } => {
                if epoch <= *warmup_epochs {
                    self.base_lr * epoch as f64 / *warmup_epochs as f64
                } else {
                    let span = (self.epochs - warmup_epochs).max(1) as f64;
                    let progress = (epoch - warmup_epochs - 1) as f64 / span;
                    min_lr
                        + 0.5
                            * (self.base_lr - min_lr)
                            * (1.0 + (std::f64::consts::PI * progress).cos())
                }
            }
            Schedule::Step { step, gamma } => {
                self.base_lr * gamma.powi(((epoch - 1) / (*step).max(1)) as i32)
            }
        }
    }

    /// After an epoch: the learning rate for the next one (plateau watches validation loss).
    pub fn after_epoch(&mut self, val_loss: f64, current: f64) -> f64 {
        if let Schedule::Plateau {
            factor,
            patience,
            min_lr,
        } = self.schedule
        {
            if self.best_loss.is_none_or(|b| val_loss < b) {
                self.best_loss = Some(val_loss);
                self.bad_epochs = 0;
            } else {
                self.bad_epochs += 1;
                if self.bad_epochs >= patience {
                    self.bad_epochs = 0;
                    return (current * factor).max(min_lr);
                }
            }
        }
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::{self, Module, OptimizerConfig};
    use tch::Device;

    fn model(vs: &nn::VarStore) -> nn::Sequential {
        nn::seq()
            .add(nn::linear(vs.root() / "a", 5, 8, Default::default()))
            .add_fn(|x| x.tanh())
            .add(nn::linear(vs.root() / "b", 8, 3, Default::default()))
    }

    fn params(vs: &nn::VarStore) -> Vec<Tensor> {
        let mut v: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.into_iter().map(|(_, t)| t.detach().copy()).collect()
    }

    #[test]
    fn adam_matches_torch_adam_step_for_step() {
        let x = Tensor::randn([16, 5], (Kind::Float, Device::Cpu));
        let y = Tensor::randint(3, [16], (Kind::Int64, Device::Cpu));
        let run = |ours: bool| {
            tch::manual_seed(3);
            let vs = nn::VarStore::new(Device::Cpu);
            let m = model(&vs);
            if ours {
                let mut opt = Optimizer::new(&vs, &OptimizerSpec::default(), 1e-2);
                for _ in 0..5 {
                    opt.zero_grad();
                    m.forward(&x).cross_entropy_for_logits(&y).backward();
                    opt.step();
                }
            } else {
                let mut opt = nn::Adam::default().build(&vs, 1e-2).unwrap();
                for _ in 0..5 {
                    opt.backward_step(&m.forward(&x).cross_entropy_for_logits(&y));
                }
            }
            params(&vs)
        };
        let (a, b) = (run(true), run(false));
        for (p, q) in a.iter().zip(&b) {
            assert!(
                p.allclose(q, 1e-5, 1e-6, false),
                "diverged from torch's Adam"
            );
        }
    }

    #[test]
    fn state_round_trips() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let m = model(&vs);
        let x = Tensor::randn([4, 5], (Kind::Float, Device::Cpu));
        let mut opt = Optimizer::new(&vs, &OptimizerSpec::default(), 1e-3);
        m.forward(&x).sum(Kind::Float).backward();
        opt.step();
        let saved: Vec<(String, Tensor)> = opt
            .state()
            .into_iter()
            .map(|(n, t)| (n, t.copy()))
            .collect();
        let mut other = Optimizer::new(&vs, &OptimizerSpec::default(), 5.0);
        other.load_state(&saved).unwrap();
        assert_eq!((other.step, other.lr), (1, 1e-3));
        assert!(other.m[0].allclose(&opt.m[0], 0.0, 0.0, false));
    }

    #[test]
    fn clipping_bounds_the_norm() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let m = model(&vs);
        let mut opt = Optimizer::new(&vs, &OptimizerSpec::default(), 1e-3);
        (m.forward(&Tensor::randn([4, 5], (Kind::Float, Device::Cpu)))
            .sum(Kind::Float)
            * 1000.0)
            .backward();
        let before = opt.clip_grad_norm(1.0);
        assert!(before > 1.0);
        assert!((opt.clip_grad_norm(1e9) - 1.0).abs() < 1e-3);
    }

    #[test]
    fn schedules() {
        let mut s = Scheduler::new(
            Schedule::Plateau {
                factor: 0.5,
                patience: 3,
                min_lr: 1e-6,
            },
            1e-3,
            20,
        );
        let mut lr = 1e-3;
        for loss in [1.0, 0.9, 0.95, 0.95, 0.95] {
            lr = s.after_epoch(loss, lr);
        }
        assert_eq!(lr, 5e-4, "halved after 3 epochs without improvement");
        let c = Scheduler::new(
            Schedule::Cosine {
                warmup_epochs: 2,
                min_lr: 0.0,
            },
            1.0,
            12,
        );
        assert_eq!(c.lr_at(1, 0.0), 0.5);
        assert_eq!(c.lr_at(3, 0.0), 1.0);
        assert!(c.lr_at(12, 0.0) < 0.03);
        let st = Scheduler::new(
            Schedule::Step {
                step: 5,
                gamma: 0.1,
            },
            1.0,
            20,
        );
        assert!((st.lr_at(6, 0.0) - 0.1).abs() < 1e-12 && st.lr_at(5, 0.0) == 1.0);
    }
}
