// Module init: the Tensor handle class, ops, autograd, and process-wide settings (threads, seed).
#include "common.h"

#include <ATen/Parallel.h>
#include <ATen/Context.h>

#include <dlfcn.h>

namespace kw {
namespace {

// A libtorch built against OpenBLAS (Debian's) runs matrix products on OpenBLAS's own thread pool, which
// at::set_num_threads does not size: with 1 thread asked for, two OpenBLAS threads still spun in
// sched_yield, and half of a training job's CPU time went to the kernel. MKL builds need nothing here.
void SetBlasThreads(int n) {
  using SetThreads = void (*)(int);
  static SetThreads setThreads = [] {
    for (const char* lib : {"libopenblas.so.0", "libblas.so.3"}) {
      // RTLD_NOLOAD: only a library libtorch already loaded, never a new one.
      if (void* handle = dlopen(lib, RTLD_LAZY | RTLD_NOLOAD)) {
        if (void* fn = dlsym(handle, "openblas_set_num_threads")) return reinterpret_cast<SetThreads>(fn);
      }
    }
    return static_cast<SetThreads>(nullptr);
  }();
  if (setThreads) setThreads(n);
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  int n = info[0].As<Napi::Number>().Int32Value();
  if (n < 1) throw Napi::RangeError::New(info.Env(), "setNumThreads: the thread count must be at least 1, got " + std::to_string(n));
  at::set_num_threads(n);
  SetBlasThreads(n);
  return info.Env().Undefined();
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), at::get_num_threads()); }

Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  auto seed = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
  at::manual_seed(seed);
  return info.Env().Undefined();
}

Napi::Value Memory(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto obj = Napi::Object::New(env);
  obj.Set("liveTensors", Napi::Number::New(env, static_cast<double>(Stats().liveTensors)));
  obj.Set("liveBytes", Napi::Number::New(env, static_cast<double>(Stats().liveBytes)));
  obj.Set("peakBytes", Napi::Number::New(env, static_cast<double>(Stats().peakBytes)));
  return obj;
}

Napi::Value ResetPeak(const Napi::CallbackInfo& info) {
  Stats().peakBytes = Stats().liveBytes;
  return info.Env().Undefined();
}

Napi::Value CudaAvailable(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), at::hasCUDA()); }

Napi::Value Info(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), at::show_config());
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("TensorHandle", TensorHandle::Define(env));
  InitOps(env, exports);
  InitAutograd(env, exports);
  InitAllocator(env, exports);
  InitProfiler(env, exports);
  InitScriptModule(env, exports);
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads));
  exports.Set("manualSeed", Napi::Function::New(env, ManualSeed));
  exports.Set("memory", Napi::Function::New(env, Memory));
  exports.Set("resetPeak", Napi::Function::New(env, ResetPeak));
  exports.Set("cudaAvailable", Napi::Function::New(env, CudaAvailable));
  exports.Set("buildInfo", Napi::Function::New(env, Info));
  return exports;
}

}  // namespace kw

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return kw::Init(env, exports); }
NODE_API_MODULE(kwshield_torch, InitAddon)
