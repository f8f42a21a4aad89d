// Shared declarations of the kwshield libtorch addon. The addon is generic: it knows tensors,
// ATen ops and autograd, nothing about audio or backdoors.
#pragma once
#include <napi.h>
#include <ATen/ATen.h>
#include <string>
#include <vector>

namespace kw {

// A JS handle over one at::Tensor. The TypeScript Tensor class owns one of these.
class TensorHandle : public Napi::ObjectWrap<TensorHandle> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Object Wrap(Napi::Env env, at::Tensor t);  // new JS handle owning t
  static bool Is(const Napi::Value& v);
  explicit TensorHandle(const Napi::CallbackInfo& info);
  ~TensorHandle() override;

  // The tensor, or a JS Error naming `what` if the handle was disposed.
  const at::Tensor& Get(Napi::Env env, const char* what) const;
  at::Tensor& Mutable() { return tensor_; }
  bool Disposed() const { return !tensor_.defined(); }
  void Release();  // frees the tensor now; idempotent

 private:
  Napi::Value Shape(const Napi::CallbackInfo& info);
  Napi::Value Dtype(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value Numel(const Napi::CallbackInfo& info);
  Napi::Value IsDisposed(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value GetRequiresGrad(const Napi::CallbackInfo& info);
  Napi::Value SetRequiresGrad(const Napi::CallbackInfo& info);
  Napi::Value GetGrad(const Napi::CallbackInfo& info);
  Napi::Value SetGrad(const Napi::CallbackInfo& info);
  Napi::Value IsLeaf(const Napi::CallbackInfo& info);
  Napi::Value HasGradFn(const Napi::CallbackInfo& info);
  Napi::Value Item(const Napi::CallbackInfo& info);
  Napi::Value ToTypedArray(const Napi::CallbackInfo& info);
  Napi::Value CopyFromTypedArray(const Napi::CallbackInfo& info);
  Napi::Value Bytes(const Napi::CallbackInfo& info);
  Napi::Value Strides(const Napi::CallbackInfo& info);
  Napi::Value IsContiguous(const Napi::CallbackInfo& info);
  Napi::Value IsChannelsLast(const Napi::CallbackInfo& info);
  Napi::Value SameStorage(const Napi::CallbackInfo& info);
  Napi::Value Assign(const Napi::CallbackInfo& info);
  // tells V8 this handle holds its bytes, so that forgetting it builds GC pressure (see tensor.cc)
  Napi::Value ReportToGc(const Napi::CallbackInfo& info);

  at::Tensor tensor_;
  int64_t accounted_ = 0;  // bytes counted in the live counters
  bool reportedToGc_ = false;  // accounted_ also reported to V8 as external memory
};

// Live-tensor accounting over every handle (exposed as native.memory()).
struct MemoryStats {
  int64_t liveTensors = 0;
  int64_t liveBytes = 0;
  int64_t peakBytes = 0;
};
MemoryStats& Stats();

// Runs fn, turning C++ exceptions into JS Errors prefixed with `context`.
Napi::Value Guard(Napi::Env env, const std::string& context, const std::function<Napi::Value()>& fn);
std::string ShapeString(const at::Tensor& t);

at::ScalarType DtypeFromTypedArray(napi_typedarray_type type);

void InitOps(Napi::Env env, Napi::Object exports);
void InitAutograd(Napi::Env env, Napi::Object exports);
void InitAllocator(Napi::Env env, Napi::Object exports);
void InitProfiler(Napi::Env env, Napi::Object exports);
void InitScriptModule(Napi::Env env, Napi::Object exports);

}  // namespace kw
