//! Where and how a model runs: device choice (`auto` picks CUDA when present), intra-op
//! threads, and bf16 autocast.
//!
//! tch can enable autocast but not choose its dtype (CUDA's default is fp16, which needs loss
//! scaling), so bf16 autocast goes through a three-call C++ shim (`autocast.cpp`, built by
//! `build.rs`) doing what `torch.autocast(device, dtype=torch.bfloat16)` does.

use serde::{Deserialize, Serialize};
use tch::Device;

/// Which device to train and predict on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DeviceChoice {
    /// CUDA when a GPU is visible, else the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda,
}

impl DeviceChoice {
    /// The tch device, or an error when CUDA was asked for and is not there.
    pub fn resolve(self) -> Result<Device, String> {
        match self {
            DeviceChoice::Auto => Ok(Device::cuda_if_available()),
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Cuda if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
            DeviceChoice::Cuda => Err(
                "device `cuda` requested but LibTorch sees no CUDA device (see `emolab doctor`)"
                    .into(),
            ),
        }
    }
}

/// A device's name for run records: `cpu` or `cuda:0`.
pub fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Arithmetic of forward passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    #[default]
    Fp32,
    /// Autocast to bfloat16 (weights, gradients and optimizer state stay f32).
    Bf16,
}

extern "C" {
    fn emolab_autocast_enter(cuda: i32) -> i32;
    fn emolab_autocast_exit(cuda: i32) -> i32;
}

/// bf16 autocast on `device` while alive (nothing for [`Precision::Fp32`]).
pub struct Autocast {
    cuda: Option<i32>,
}

impl Autocast {
    pub fn new(precision: Precision, device: Device) -> Autocast {
        let cuda = match precision {
            Precision::Fp32 => None,
            Precision::Bf16 => Some(i32::from(device.is_cuda())),
        };
        if let Some(c) = cuda {
            // SAFETY: plain C calls into libtorch's autocast state; they catch every exception.
            let rc = unsafe { emolab_autocast_enter(c) };
            assert_eq!(rc, 0, "libtorch refused to enable bf16 autocast");
        }
        Autocast { cuda }
    }
}

impl Drop for Autocast {
    fn drop(&mut self) {
        if let Some(c) = self.cuda {
            // SAFETY: as in `new`; undoes exactly what it did.
            unsafe { emolab_autocast_exit(c) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    #[test]
    fn bf16_autocast_casts_matmuls_inside_and_not_after() {
        let a = Tensor::ones([4, 4], (Kind::Float, Device::Cpu));
        {
            let _ac = Autocast::new(Precision::Bf16, Device::Cpu);
            assert_eq!(a.matmul(&a).kind(), Kind::BFloat16);
            let _fp = Autocast::new(Precision::Fp32, Device::Cpu);
            assert_eq!(
                a.matmul(&a).kind(),
                Kind::BFloat16,
                "fp32 guard changes nothing"
            );
        }
        assert_eq!(a.matmul(&a).kind(), Kind::Float);
    }

    #[test]
    fn cuda_on_a_machine_without_it_is_a_clear_error() {
        if !tch::Cuda::is_available() {
            let e = DeviceChoice::Cuda.resolve().unwrap_err();
            assert!(e.contains("no CUDA device"), "{e}");
            assert_eq!(DeviceChoice::Auto.resolve().unwrap(), Device::Cpu);
        }
    }
}
