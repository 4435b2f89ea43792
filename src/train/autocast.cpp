// bf16 autocast for emolab's trainer. tch 0.24 can switch autocast on but not choose its dtype
// (CUDA's default is fp16, which needs loss scaling); these three calls are what
// `torch.autocast(device, dtype=torch.bfloat16)` does on entry and exit.
#include <ATen/autocast_mode.h>

extern "C" {

// Enable bf16 autocast on `cuda` (1) or CPU (0). Returns 0, or -1 if libtorch threw.
int emolab_autocast_enter(int cuda) {
  try {
    auto dev = cuda ? at::kCUDA : at::kCPU;
    at::autocast::set_autocast_dtype(dev, at::kBFloat16);
    at::autocast::set_autocast_enabled(dev, true);
    at::autocast::increment_nesting();
    return 0;
  } catch (...) {
    return -1;
  }
}

// Leave autocast (clearing its cast cache at the outermost level).
int emolab_autocast_exit(int cuda) {
  try {
    auto dev = cuda ? at::kCUDA : at::kCPU;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(dev, false);
    return 0;
  } catch (...) {
    return -1;
  }
}
}
