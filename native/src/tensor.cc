// TensorHandle: a JS object that owns one at::Tensor, with exact memory accounting.
#include "common.h"

#include <cstring>

namespace kw {

namespace {
Napi::FunctionReference* tensorConstructor = nullptr;
MemoryStats stats;
// Bytes freed by GC finalizers, which may not call back into V8; reported at the next Wrap.
int64_t pendingExternalRelease = 0;
// Only tensors no tidy() scope will free are reported to V8 as external memory (TensorHandle::ReportToGc,
// called from JS when a tensor is made outside every scope, kept, or returned past the outermost one). Why:
// reporting every activation (hundreds of MB per training step, freed by scopes moments later) made V8 run
// concurrent major GCs all through training, on the same 2 cores as libtorch's threads: about 10% of a
// ResNet step on the 2-core VM (2026-12-02, bench/profile.ts). Scoped tensors never need the GC's help.

int64_t BytesOf(const at::Tensor& t) { return t.defined() ? t.numel() * static_cast<int64_t>(t.element_size()) : 0; }

Napi::Value TypedArrayOf(Napi::Env env, const at::Tensor& cpu, bool raw) {
  const size_t bytes = static_cast<size_t>(cpu.numel()) * cpu.element_size();
  auto buffer = Napi::ArrayBuffer::New(env, bytes);
  if (bytes > 0) std::memcpy(buffer.Data(), cpu.data_ptr(), bytes);
  const size_t n = static_cast<size_t>(cpu.numel());
  if (raw) return Napi::Uint8Array::New(env, bytes, buffer, 0);
  switch (cpu.scalar_type()) {
    case at::kFloat: return Napi::Float32Array::New(env, n, buffer, 0);
    case at::kDouble: return Napi::Float64Array::New(env, n, buffer, 0);
    case at::kInt: return Napi::Int32Array::New(env, n, buffer, 0);
    case at::kLong: return Napi::BigInt64Array::New(env, n, buffer, 0);
    case at::kShort: return Napi::Int16Array::New(env, n, buffer, 0);
    case at::kChar: return Napi::Int8Array::New(env, n, buffer, 0);
    case at::kByte:
    case at::kBool: return Napi::Uint8Array::New(env, n, buffer, 0);
    case at::kHalf:
    case at::kBFloat16: return Napi::Uint16Array::New(env, n, buffer, 0);
    default:
      throw std::runtime_error(std::string("cannot copy a ") + c10::toString(cpu.scalar_type()) +
                               " tensor to a typed array; take view_as_real() or abs() first");
  }
}
}  // namespace

MemoryStats& Stats() { return stats; }

std::string ShapeString(const at::Tensor& t) {
  if (!t.defined()) return "undefined";
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "] " + c10::toString(t.scalar_type());
}

at::ScalarType DtypeFromTypedArray(napi_typedarray_type type) {
  switch (type) {
    case napi_float32_array: return at::kFloat;
    case napi_float64_array: return at::kDouble;
    case napi_int32_array: return at::kInt;
    case napi_bigint64_array: return at::kLong;
    case napi_int16_array: return at::kShort;
    case napi_int8_array: return at::kChar;
    case napi_uint8_array:
    case napi_uint8_clamped_array: return at::kByte;
    default: throw std::runtime_error("unsupported typed array type (use Float32Array, Float64Array, Int32Array, BigInt64Array, Int16Array, Int8Array or Uint8Array)");
  }
}

Napi::Value Guard(Napi::Env env, const std::string& context, const std::function<Napi::Value()>& fn) {
  try {
    return fn();
  } catch (const Napi::Error& e) {
    throw;
  } catch (const c10::Error& e) {
    throw Napi::Error::New(env, context + ": " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, context + ": " + e.what());
  }
}

Napi::Function TensorHandle::Define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "TensorHandle", {
    InstanceMethod<&TensorHandle::Shape>("shape"),
    InstanceMethod<&TensorHandle::Strides>("strides"),
    InstanceMethod<&TensorHandle::Dtype>("dtype"),
    InstanceMethod<&TensorHandle::Device>("device"),
    InstanceMethod<&TensorHandle::Numel>("numel"),
    InstanceMethod<&TensorHandle::Bytes>("bytes"),
    InstanceMethod<&TensorHandle::IsDisposed>("isDisposed"),
    InstanceMethod<&TensorHandle::Dispose>("dispose"),
    InstanceMethod<&TensorHandle::GetRequiresGrad>("requiresGrad"),
    InstanceMethod<&TensorHandle::SetRequiresGrad>("setRequiresGrad"),
    InstanceMethod<&TensorHandle::GetGrad>("grad"),
    InstanceMethod<&TensorHandle::SetGrad>("setGrad"),
    InstanceMethod<&TensorHandle::IsLeaf>("isLeaf"),
    InstanceMethod<&TensorHandle::HasGradFn>("hasGradFn"),
    InstanceMethod<&TensorHandle::Item>("item"),
    InstanceMethod<&TensorHandle::ToTypedArray>("toTypedArray"),
    InstanceMethod<&TensorHandle::CopyFromTypedArray>("copyFrom"),
    InstanceMethod<&TensorHandle::IsContiguous>("isContiguous"),
    InstanceMethod<&TensorHandle::IsChannelsLast>("isChannelsLast"),
    InstanceMethod<&TensorHandle::SameStorage>("sameStorage"),
    InstanceMethod<&TensorHandle::ReportToGc>("reportToGc"),
  });
  tensorConstructor = new Napi::FunctionReference(Napi::Persistent(ctor));
  return ctor;
}

Napi::Object TensorHandle::Wrap(Napi::Env env, at::Tensor t) {
  if (pendingExternalRelease > 0) {
    Napi::MemoryManagement::AdjustExternalMemory(env, -pendingExternalRelease);
    pendingExternalRelease = 0;
  }
  auto* boxed = new at::Tensor(std::move(t));
  Napi::Object obj = tensorConstructor->New({Napi::External<at::Tensor>::New(env, boxed)});
  return obj;
}

bool TensorHandle::Is(const Napi::Value& v) {
  return v.IsObject() && v.As<Napi::Object>().InstanceOf(tensorConstructor->Value());
}

TensorHandle::TensorHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorHandle>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "TensorHandle is made by the engine, not with new");
  }
  auto* boxed = info[0].As<Napi::External<at::Tensor>>().Data();
  tensor_ = std::move(*boxed);
  delete boxed;
  accounted_ = BytesOf(tensor_);
  stats.liveTensors += 1;
  stats.liveBytes += accounted_;
  if (stats.liveBytes > stats.peakBytes) stats.peakBytes = stats.liveBytes;
}

Napi::Value TensorHandle::ReportToGc(const Napi::CallbackInfo& info) {
  if (!Disposed() && !reportedToGc_ && accounted_ > 0) {
    Napi::MemoryManagement::AdjustExternalMemory(info.Env(), accounted_);
    reportedToGc_ = true;
  }
  return info.Env().Undefined();
}

TensorHandle::~TensorHandle() {
  if (!Disposed()) {
    stats.liveTensors -= 1;
    stats.liveBytes -= accounted_;
    // The finalizer may run inside GC, where calling back into V8 is not allowed; V8's view of
    // external memory is corrected at the next Wrap instead.
    if (reportedToGc_) pendingExternalRelease += accounted_;
    tensor_.reset();
  }
}

void TensorHandle::Release() {
  if (Disposed()) return;
  tensor_.reset();
  stats.liveTensors -= 1;
  stats.liveBytes -= accounted_;
  if (reportedToGc_) Napi::MemoryManagement::AdjustExternalMemory(Env(), -accounted_);
  reportedToGc_ = false;
  accounted_ = 0;
}

const at::Tensor& TensorHandle::Get(Napi::Env env, const char* what) const {
  if (Disposed()) {
    throw Napi::Error::New(env, std::string(what) + ": the tensor was disposed (it was freed by dispose() or by the tidy() scope that made it; keep() it or return it from the scope to use it later)");
  }
  return tensor_;
}

Napi::Value TensorHandle::Shape(const Napi::CallbackInfo& info) {
  const auto& t = Get(info.Env(), "shape");
  auto arr = Napi::Array::New(info.Env(), t.dim());
  for (int64_t i = 0; i < t.dim(); ++i) arr.Set(static_cast<uint32_t>(i), Napi::Number::New(info.Env(), static_cast<double>(t.size(i))));
  return arr;
}

Napi::Value TensorHandle::Strides(const Napi::CallbackInfo& info) {
  const auto& t = Get(info.Env(), "strides");
  auto arr = Napi::Array::New(info.Env(), t.dim());
  for (int64_t i = 0; i < t.dim(); ++i) arr.Set(static_cast<uint32_t>(i), Napi::Number::New(info.Env(), static_cast<double>(t.stride(i))));
  return arr;
}

Napi::Value TensorHandle::Dtype(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<int>(Get(info.Env(), "dtype").scalar_type()));
}

Napi::Value TensorHandle::Device(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), Get(info.Env(), "device").device().str());
}

Napi::Value TensorHandle::Numel(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Get(info.Env(), "numel").numel()));
}

Napi::Value TensorHandle::Bytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(accounted_));
}

Napi::Value TensorHandle::IsDisposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), Disposed()); }

Napi::Value TensorHandle::Dispose(const Napi::CallbackInfo& info) {
  Release();
  return info.Env().Undefined();
}

Napi::Value TensorHandle::GetRequiresGrad(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), Get(info.Env(), "requiresGrad").requires_grad());
}

Napi::Value TensorHandle::SetRequiresGrad(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return Guard(env, "requiresGrad", [&]() -> Napi::Value {
    tensor_.set_requires_grad(info[0].ToBoolean().Value());
    Get(env, "requiresGrad");
    return env.Undefined();
  });
}

Napi::Value TensorHandle::GetGrad(const Napi::CallbackInfo& info) {
  const auto& g = Get(info.Env(), "grad").grad();
  if (!g.defined()) return info.Env().Null();
  return Wrap(info.Env(), g);
}

Napi::Value TensorHandle::SetGrad(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto& self = const_cast<at::Tensor&>(Get(env, "setGrad"));
  return Guard(env, "setGrad", [&]() -> Napi::Value {
    if (info[0].IsNull() || info[0].IsUndefined()) {
      self.mutable_grad().reset();
    } else {
      if (!Is(info[0])) throw Napi::TypeError::New(env, "setGrad: expected a tensor or null");
      const auto& g = Unwrap(info[0].As<Napi::Object>())->Get(env, "setGrad");
      if (g.sizes() != self.sizes()) {
        throw std::runtime_error("gradient shape " + ShapeString(g) + " does not match the tensor's " + ShapeString(self));
      }
      self.mutable_grad() = g.detach();
    }
    return env.Undefined();
  });
}

Napi::Value TensorHandle::IsLeaf(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), Get(info.Env(), "isLeaf").is_leaf()); }

Napi::Value TensorHandle::HasGradFn(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), Get(info.Env(), "gradFn").grad_fn() != nullptr);
}

Napi::Value TensorHandle::Item(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const auto& t = Get(env, "item");
  return Guard(env, "item", [&]() -> Napi::Value {
    if (t.numel() != 1) throw std::runtime_error("a tensor of shape " + ShapeString(t) + " has " + std::to_string(t.numel()) + " elements, item() needs exactly one");
    auto s = t.item();
    if (s.isBoolean()) return Napi::Boolean::New(env, s.toBool());
    if (s.isIntegral(false)) return Napi::Number::New(env, static_cast<double>(s.toLong()));
    if (s.isComplex()) throw std::runtime_error("item() of a complex tensor; take abs() or view_as_real() first");
    return Napi::Number::New(env, s.toDouble());
  });
}

Napi::Value TensorHandle::ToTypedArray(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const auto& t = Get(env, "toArray");
  bool raw = info.Length() > 0 && info[0].ToBoolean().Value();
  return Guard(env, "toArray", [&]() -> Napi::Value {
    at::Tensor cpu = t.detach().to(at::kCPU).contiguous();
    return TypedArrayOf(env, cpu, raw);
  });
}

// copyFrom(typedArray): fills this tensor with the array's bytes (same element size, same count).
Napi::Value TensorHandle::CopyFromTypedArray(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto& self = const_cast<at::Tensor&>(Get(env, "copyFrom"));
  return Guard(env, "copyFrom", [&]() -> Napi::Value {
    if (!info[0].IsTypedArray()) throw std::runtime_error("expected a typed array");
    auto ta = info[0].As<Napi::TypedArray>();
    const size_t bytes = ta.ByteLength();
    const size_t need = static_cast<size_t>(self.numel()) * self.element_size();
    if (bytes != need) throw std::runtime_error("the array has " + std::to_string(bytes) + " bytes, the tensor " + ShapeString(self) + " needs " + std::to_string(need));
    auto* src = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    at::NoGradGuard noGrad;
    if (self.is_contiguous() && self.device().is_cpu()) {
      std::memcpy(self.data_ptr(), src, bytes);
    } else {
      auto tmp = at::empty(self.sizes(), self.options().device(at::kCPU).memory_format(at::MemoryFormat::Contiguous));
      std::memcpy(tmp.data_ptr(), src, bytes);
      self.copy_(tmp);
    }
    return env.Undefined();
  });
}

Napi::Value TensorHandle::IsContiguous(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), Get(info.Env(), "isContiguous").is_contiguous());
}

Napi::Value TensorHandle::IsChannelsLast(const Napi::CallbackInfo& info) {
  const auto& t = Get(info.Env(), "isChannelsLast");
  return Napi::Boolean::New(info.Env(), t.dim() == 4 && t.is_contiguous(at::MemoryFormat::ChannelsLast));
}

Napi::Value TensorHandle::SameStorage(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (!Is(info[0])) throw Napi::TypeError::New(env, "sameStorage: expected a tensor");
  const auto& a = Get(env, "sameStorage");
  const auto& b = Unwrap(info[0].As<Napi::Object>())->Get(env, "sameStorage");
  return Napi::Boolean::New(env, a.is_alias_of(b));
}

}  // namespace kw
