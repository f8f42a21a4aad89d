// Calls any ATen op by its schema through the c10 dispatcher (boxed), converting JS values to
// IValues argument by argument from the schema's types. This keeps the C++ small: every op the
// TypeScript side wraps (conv2d, lstm, stft, linalg_eigh, ...) needs no new native code.
#include "common.h"
#include "ivalue_js.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>
#include <cstring>

namespace kw {

namespace {

enum class Kind {
  Tensor, OptTensor, TensorList, OptTensorList, Int, OptInt, IntList, OptIntList, Float, OptFloat,
  FloatList, Bool, OptBool, BoolList, Scalar, OptScalar, String, OptString, Device, OptDevice,
  OptGenerator, Unsupported
};

Kind KindOf(const c10::TypePtr& type) {
  using K = c10::TypeKind;
  switch (type->kind()) {
    case K::TensorType: return Kind::Tensor;
    case K::IntType:
    case K::SymIntType: return Kind::Int;
    case K::FloatType: return Kind::Float;
    case K::BoolType: return Kind::Bool;
    case K::NumberType: return Kind::Scalar;
    case K::StringType: return Kind::String;
    case K::DeviceObjType: return Kind::Device;
    case K::ListType: {
      auto elem = type->castRaw<c10::ListType>()->getElementType();
      switch (elem->kind()) {
        case K::TensorType: return Kind::TensorList;
        case K::IntType:
        case K::SymIntType: return Kind::IntList;
        case K::FloatType: return Kind::FloatList;
        case K::BoolType: return Kind::BoolList;
        case K::OptionalType:
          if (elem->castRaw<c10::OptionalType>()->getElementType()->kind() == K::TensorType) return Kind::OptTensorList;
          return Kind::Unsupported;
        default: return Kind::Unsupported;
      }
    }
    case K::OptionalType: {
      auto inner = KindOf(type->castRaw<c10::OptionalType>()->getElementType());
      switch (inner) {
        case Kind::Tensor: return Kind::OptTensor;
        case Kind::Int: return Kind::OptInt;
        case Kind::IntList: return Kind::OptIntList;
        case Kind::Float: return Kind::OptFloat;
        case Kind::Bool: return Kind::OptBool;
        case Kind::Scalar: return Kind::OptScalar;
        case Kind::String: return Kind::OptString;
        case Kind::Device: return Kind::OptDevice;
        default:
          if (type->castRaw<c10::OptionalType>()->getElementType()->kind() == K::GeneratorType) return Kind::OptGenerator;
          return Kind::Unsupported;
      }
    }
    default: return Kind::Unsupported;
  }
}

struct ArgSpec {
  std::string name;
  Kind kind;
  c10::optional<int> fixedLength;  // int[2]: a single int is repeated, as in PyTorch
  c10::optional<c10::IValue> defaultValue;
};

[[noreturn]] void BadArg(const ArgSpec& a, const std::string& expected) {
  throw std::runtime_error("argument '" + a.name + "' must be " + expected);
}

const at::Tensor& TensorArg(Napi::Env env, const Napi::Value& v, const ArgSpec& a) {
  if (!TensorHandle::Is(v)) BadArg(a, "a tensor");
  return TensorHandle::Unwrap(v.As<Napi::Object>())->Get(env, a.name.c_str());
}

int64_t IntArg(const Napi::Value& v, const ArgSpec& a) {
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (d != static_cast<double>(static_cast<int64_t>(d))) BadArg(a, "an integer, got " + std::to_string(d));
    return static_cast<int64_t>(d);
  }
  if (v.IsBigInt()) {
    bool lossless = true;
    return v.As<Napi::BigInt>().Int64Value(&lossless);
  }
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value() ? 1 : 0;
  BadArg(a, "an integer");
}

double FloatArg(const Napi::Value& v, const ArgSpec& a) {
  if (!v.IsNumber()) BadArg(a, "a number");
  return v.As<Napi::Number>().DoubleValue();
}

bool BoolArg(const Napi::Value& v, const ArgSpec& a) {
  if (!v.IsBoolean()) BadArg(a, "a boolean");
  return v.As<Napi::Boolean>().Value();
}

at::Scalar ScalarArg(const Napi::Value& v, const ArgSpec& a) {
  if (v.IsBoolean()) return at::Scalar(v.As<Napi::Boolean>().Value());
  if (v.IsBigInt()) return at::Scalar(IntArg(v, a));
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    // Whole numbers become integer Scalars so that integer tensors keep their dtype, as in Python.
    if (std::isfinite(d) && d == static_cast<double>(static_cast<int64_t>(d)) && std::abs(d) < 9.0e15) return at::Scalar(static_cast<int64_t>(d));
    return at::Scalar(d);
  }
  BadArg(a, "a number or boolean");
}

std::vector<int64_t> IntListArg(const Napi::Value& v, const ArgSpec& a) {
  if (v.IsNumber() && a.fixedLength) return std::vector<int64_t>(*a.fixedLength, IntArg(v, a));
  if (!v.IsArray()) BadArg(a, "an array of integers");
  auto arr = v.As<Napi::Array>();
  std::vector<int64_t> out(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); ++i) out[i] = IntArg(arr.Get(i), a);
  return out;
}

c10::IValue ToIValue(Napi::Env env, const Napi::Value& v, const ArgSpec& a) {
  const bool absent = v.IsUndefined() || v.IsNull();
  switch (a.kind) {
    case Kind::Tensor: return TensorArg(env, v, a);
    case Kind::OptTensor: return absent ? c10::IValue() : c10::IValue(TensorArg(env, v, a));
    case Kind::TensorList: {
      if (!v.IsArray()) BadArg(a, "an array of tensors");
      auto arr = v.As<Napi::Array>();
      std::vector<at::Tensor> out;
      out.reserve(arr.Length());
      for (uint32_t i = 0; i < arr.Length(); ++i) out.push_back(TensorArg(env, arr.Get(i), a));
      return c10::IValue(out);
    }
    case Kind::OptTensorList: {
      if (!v.IsArray()) BadArg(a, "an array of tensors or nulls");
      auto arr = v.As<Napi::Array>();
      c10::List<c10::optional<at::Tensor>> out;
      for (uint32_t i = 0; i < arr.Length(); ++i) {
        auto e = arr.Get(i);
        if (e.IsNull() || e.IsUndefined()) out.push_back(c10::nullopt);
        else out.push_back(TensorArg(env, e, a));
      }
      return c10::IValue(out);
    }
    case Kind::Int: return IntArg(v, a);
    case Kind::OptInt: return absent ? c10::IValue() : c10::IValue(IntArg(v, a));
    case Kind::IntList: return c10::IValue(IntListArg(v, a));
    case Kind::OptIntList: return absent ? c10::IValue() : c10::IValue(IntListArg(v, a));
    case Kind::Float: return FloatArg(v, a);
    case Kind::OptFloat: return absent ? c10::IValue() : c10::IValue(FloatArg(v, a));
    case Kind::FloatList: {
      if (!v.IsArray()) BadArg(a, "an array of numbers");
      auto arr = v.As<Napi::Array>();
      std::vector<double> out(arr.Length());
      for (uint32_t i = 0; i < arr.Length(); ++i) out[i] = FloatArg(arr.Get(i), a);
      return c10::IValue(out);
    }
    case Kind::Bool: return BoolArg(v, a);
    case Kind::OptBool: return absent ? c10::IValue() : c10::IValue(BoolArg(v, a));
    case Kind::BoolList: {
      if (!v.IsArray()) BadArg(a, "an array of booleans");
      auto arr = v.As<Napi::Array>();
      if (a.fixedLength && *a.fixedLength == 3 && arr.Length() == 3) {
        std::array<bool, 3> out{};
        for (uint32_t i = 0; i < 3; ++i) out[i] = BoolArg(arr.Get(i), a);
        return c10::IValue(out);
      }
      c10::List<bool> out;
      for (uint32_t i = 0; i < arr.Length(); ++i) out.push_back(BoolArg(arr.Get(i), a));
      return c10::IValue(out);
    }
    case Kind::Scalar: return ScalarArg(v, a);
    case Kind::OptScalar: return absent ? c10::IValue() : c10::IValue(ScalarArg(v, a));
    case Kind::String:
      if (!v.IsString()) BadArg(a, "a string");
      return c10::IValue(v.As<Napi::String>().Utf8Value());
    case Kind::OptString:
      if (absent) return c10::IValue();
      if (!v.IsString()) BadArg(a, "a string");
      return c10::IValue(v.As<Napi::String>().Utf8Value());
    case Kind::Device:
    case Kind::OptDevice:
      if (absent && a.kind == Kind::OptDevice) return c10::IValue();
      if (!v.IsString()) BadArg(a, "a device string such as 'cpu' or 'cuda:0'");
      return c10::IValue(c10::Device(v.As<Napi::String>().Utf8Value()));
    case Kind::OptGenerator:
      if (!absent) BadArg(a, "null (generators are global; use manualSeed)");
      return c10::IValue();
    case Kind::Unsupported: break;
  }
  if (absent) return c10::IValue();
  BadArg(a, "of a type the engine does not convert");
}

Napi::Value FromIValue(Napi::Env env, const c10::IValue& v) {
  // before the generic list case: every element of a tensor list is wrapped, an undefined one too
  if (v.isTensorList()) {
    auto list = v.toTensorVector();
    auto arr = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); ++i) arr.Set(static_cast<uint32_t>(i), TensorHandle::Wrap(env, list[i]));
    return arr;
  }
  if (auto js = CommonFromIValue(env, v, FromIValue)) return *js;
  if (v.isScalar()) {
    auto s = v.toScalar();
    if (s.isBoolean()) return Napi::Boolean::New(env, s.toBool());
    return Napi::Number::New(env, s.toDouble());
  }
  throw std::runtime_error(std::string("cannot return a value of type ") + v.tagKind() + " to JS");
}

// One ATen op (name + overload), its schema looked up once.
class OpHandle : public Napi::ObjectWrap<OpHandle> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "OpHandle", {
      InstanceMethod<&OpHandle::Call>("call"),
      InstanceMethod<&OpHandle::Schema>("schema"),
    });
  }

  explicit OpHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<OpHandle>(info) {
    auto env = info.Env();
    name_ = info[0].As<Napi::String>().Utf8Value();
    overload_ = info[1].As<Napi::String>().Utf8Value();
    try {
      op_ = c10::Dispatcher::singleton().findSchemaOrThrow(name_.c_str(), overload_.c_str());
    } catch (const c10::Error&) {
      throw Napi::Error::New(env, "no ATen op " + name_ + (overload_.empty() ? "" : "." + overload_) + " in this libtorch");
    }
    const auto& schema = op_->schema();
    for (const auto& arg : schema.arguments()) {
      ArgSpec spec{arg.name(), KindOf(arg.type()), arg.N(), arg.default_value()};
      args_.push_back(std::move(spec));
    }
    returns_ = schema.returns().size();
    label_ = name_ + (overload_.empty() ? "" : "." + overload_);
  }

 private:
  std::string Describe(Napi::Env env, const Napi::Array& args) const {
    std::string s;
    for (uint32_t i = 0; i < args.Length() && i < args_.size(); ++i) {
      auto v = args.Get(i);
      if (TensorHandle::Is(v)) {
        auto* h = TensorHandle::Unwrap(v.As<Napi::Object>());
        s += (s.empty() ? "" : ", ") + args_[i].name + ": " + (h->Disposed() ? std::string("disposed") : ShapeString(h->Mutable()));
      }
    }
    return s;
  }

  // call(args: unknown[], discardResult?: boolean)
  Napi::Value Call(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    if (!info[0].IsArray()) throw Napi::TypeError::New(env, label_ + ": arguments must be an array");
    auto args = info[0].As<Napi::Array>();
    const bool discard = info.Length() > 1 && info[1].ToBoolean().Value();
    if (args.Length() > args_.size()) {
      throw Napi::Error::New(env, label_ + ": takes " + std::to_string(args_.size()) + " arguments, got " + std::to_string(args.Length()) + " (schema: " + toString(op_->schema()) + ")");
    }
    torch::jit::Stack stack;
    stack.reserve(args_.size());
    try {
      for (size_t i = 0; i < args_.size(); ++i) {
        const auto& spec = args_[i];
        Napi::Value v = i < args.Length() ? args.Get(static_cast<uint32_t>(i)) : env.Undefined();
        if (v.IsUndefined() && spec.defaultValue) {
          stack.push_back(*spec.defaultValue);
        } else if (v.IsUndefined() && spec.kind != Kind::OptTensor && spec.kind != Kind::OptInt &&
                   spec.kind != Kind::OptFloat && spec.kind != Kind::OptBool && spec.kind != Kind::OptScalar &&
                   spec.kind != Kind::OptIntList && spec.kind != Kind::OptString && spec.kind != Kind::OptDevice &&
                   spec.kind != Kind::OptGenerator) {
          throw std::runtime_error("missing argument '" + spec.name + "'");
        } else {
          stack.push_back(ToIValue(env, v, spec));
        }
      }
      op_->callBoxed(&stack);
    } catch (const Napi::Error&) {
      throw;
    } catch (const c10::Error& e) {
      throw Napi::Error::New(env, label_ + "(" + Describe(env, args) + "): " + e.what_without_backtrace());
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, label_ + "(" + Describe(env, args) + "): " + e.what());
    }
    if (discard) return env.Undefined();
    return Guard(env, label_, [&]() -> Napi::Value {
      if (returns_ == 1 && stack.size() == 1) return FromIValue(env, stack[0]);
      auto arr = Napi::Array::New(env, stack.size());
      for (size_t i = 0; i < stack.size(); ++i) arr.Set(static_cast<uint32_t>(i), FromIValue(env, stack[i]));
      return arr;
    });
  }

  Napi::Value Schema(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), toString(op_->schema())); }

  std::string name_, overload_, label_;
  c10::optional<c10::OperatorHandle> op_;
  std::vector<ArgSpec> args_;
  size_t returns_ = 0;
};

std::vector<int64_t> ShapeArg(const Napi::Value& v) {
  if (!v.IsArray()) throw std::runtime_error("shape must be an array of integers");
  auto arr = v.As<Napi::Array>();
  std::vector<int64_t> out(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    auto e = arr.Get(i);
    if (!e.IsNumber()) throw std::runtime_error("shape must be an array of integers");
    double d = e.As<Napi::Number>().DoubleValue();
    if (d < 0 || d != static_cast<double>(static_cast<int64_t>(d))) throw std::runtime_error("shape entries must be non-negative integers, got " + std::to_string(d));
    out[i] = static_cast<int64_t>(d);
  }
  return out;
}

// fromTypedArray(array, shape, dtype?: number, device?: string, raw?: boolean): copies the data
// into a new tensor. raw: the array holds the tensor's bytes (little-endian) for any dtype.
Napi::Value FromTypedArray(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return Guard(env, "fromArray", [&]() -> Napi::Value {
    if (!info[0].IsTypedArray()) throw std::runtime_error("expected a typed array");
    auto ta = info[0].As<Napi::TypedArray>();
    auto shape = ShapeArg(info[1]);
    const bool raw = info.Length() > 4 && info[4].ToBoolean().Value();
    at::ScalarType source = raw ? static_cast<at::ScalarType>(info[2].As<Napi::Number>().Int32Value()) : DtypeFromTypedArray(ta.TypedArrayType());
    at::ScalarType target = (info.Length() > 2 && info[2].IsNumber()) ? static_cast<at::ScalarType>(info[2].As<Napi::Number>().Int32Value()) : source;
    int64_t numel = 1;
    for (auto s : shape) numel *= s;
    const size_t need = static_cast<size_t>(numel) * c10::elementSize(source);
    if (ta.ByteLength() != need) {
      throw std::runtime_error("the array holds " + std::to_string(ta.ByteLength()) + " bytes but shape [" + c10::Join(", ", shape) + "] of " + c10::toString(source) + " needs " + std::to_string(need));
    }
    at::Tensor t = at::empty(shape, at::TensorOptions().dtype(source));
    if (need > 0) std::memcpy(t.data_ptr(), static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset(), need);
    if (target != source) t = t.to(target);
    if (info.Length() > 3 && info[3].IsString()) {
      auto device = c10::Device(info[3].As<Napi::String>().Utf8Value());
      if (!device.is_cpu()) t = t.to(device);
    }
    return TensorHandle::Wrap(env, t);
  });
}

Napi::Value FindOp(const Napi::CallbackInfo& info) {
  auto* data = info.Env().GetInstanceData<Napi::FunctionReference>();
  return data->New({info[0], info[1]});
}

}  // namespace

void InitOps(Napi::Env env, Napi::Object exports) {
  auto ctor = OpHandle::Define(env);
  env.SetInstanceData<Napi::FunctionReference>(new Napi::FunctionReference(Napi::Persistent(ctor)));
  exports.Set("findOp", Napi::Function::New(env, FindOp));
  exports.Set("fromTypedArray", Napi::Function::New(env, FromTypedArray));
}

}  // namespace kw
