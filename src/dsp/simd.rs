//! Runtime CPU-feature dispatch for the hot loops.
//!
//! The crate is built for the baseline x86-64 target (SSE2), so auto-vectorised loops are only
//! 4 lanes wide. [`avx2_dispatch!`] defines a function that calls an `#[inline(always)]`
//! kernel either directly or through a copy compiled with AVX2 + FMA enabled (chosen at run
//! time), in which the kernel's loops are vectorised 8 lanes wide. Rust never contracts
//! `a * b + c` into an FMA on its own and the kernels fix their summation order in the source,
//! so both paths return bit-identical results.

/// Whether the running CPU supports AVX2 and FMA (the detection result is cached by `std`).
#[inline]
pub(crate) fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `avx2_dispatch!(fn name(args...) -> R => kernel);` defines `fn name` that runs `kernel`
/// (which must be `#[inline(always)]`) with AVX2 + FMA code generation when available.
macro_rules! avx2_dispatch {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? => $kernel:path;) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $kernel($($arg),*)
                }
                if $crate::dsp::simd::has_avx2_fma() {
                    // SAFETY: `avx2` only requires the AVX2 and FMA extensions, which the
                    // running CPU was just detected to support.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $kernel($($arg),*)
        }
    };
}
pub(crate) use avx2_dispatch;
