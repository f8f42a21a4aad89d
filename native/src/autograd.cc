// Autograd entry points: backward, grad (with create_graph for exact Hessian-vector products),
// and the grad-mode switch used by noGrad().
#include "common.h"

#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>

namespace kw {

namespace {

std::vector<at::Tensor> TensorList(Napi::Env env, const Napi::Value& v, const char* what, bool allowNull) {
  std::vector<at::Tensor> out;
  if (v.IsUndefined() || v.IsNull()) return out;
  if (!v.IsArray()) throw Napi::TypeError::New(env, std::string(what) + " must be an array of tensors");
  auto arr = v.As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    auto e = arr.Get(i);
    if (allowNull && (e.IsNull() || e.IsUndefined())) {
      out.emplace_back();
      continue;
    }
    if (!TensorHandle::Is(e)) throw Napi::TypeError::New(env, std::string(what) + "[" + std::to_string(i) + "] is not a tensor");
    out.push_back(TensorHandle::Unwrap(e.As<Napi::Object>())->Get(env, what));
  }
  return out;
}

c10::optional<bool> OptionalBool(const Napi::Value& v) {
  if (v.IsUndefined() || v.IsNull()) return c10::nullopt;
  return v.ToBoolean().Value();
}

// backward(tensors, gradTensors?, retainGraph?, createGraph?, inputs?)
Napi::Value Backward(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto tensors = TensorList(env, info[0], "backward tensors", false);
  auto grads = TensorList(env, info[1], "backward gradients", true);
  auto inputs = TensorList(env, info[4], "backward inputs", false);
  return Guard(env, "backward", [&]() -> Napi::Value {
    torch::autograd::backward(tensors, grads, OptionalBool(info[2]), info[3].ToBoolean().Value(), inputs);
    return env.Undefined();
  });
}

// grad(outputs, inputs, gradOutputs?, retainGraph?, createGraph?, allowUnused?) -> (handle|null)[]
Napi::Value Grad(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto outputs = TensorList(env, info[0], "grad outputs", false);
  auto inputs = TensorList(env, info[1], "grad inputs", false);
  auto gradOutputs = TensorList(env, info[2], "grad gradOutputs", true);
  return Guard(env, "grad", [&]() -> Napi::Value {
    auto result = torch::autograd::grad(outputs, inputs, gradOutputs, OptionalBool(info[3]), info[4].ToBoolean().Value(),
                                        info[5].ToBoolean().Value());
    auto arr = Napi::Array::New(env, result.size());
    for (size_t i = 0; i < result.size(); ++i) {
      arr.Set(static_cast<uint32_t>(i), result[i].defined() ? Napi::Value(TensorHandle::Wrap(env, result[i])) : env.Null());
    }
    return arr;
  });
}

Napi::Value SetGradEnabled(const Napi::CallbackInfo& info) {
  bool previous = at::GradMode::is_enabled();
  at::GradMode::set_enabled(info[0].ToBoolean().Value());
  return Napi::Boolean::New(info.Env(), previous);
}

Napi::Value IsGradEnabled(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), at::GradMode::is_enabled()); }

}  // namespace

void InitAutograd(Napi::Env env, Napi::Object exports) {
  exports.Set("backward", Napi::Function::New(env, Backward));
  exports.Set("grad", Napi::Function::New(env, Grad));
  exports.Set("setGradEnabled", Napi::Function::New(env, SetGradEnabled));
  exports.Set("isGradEnabled", Napi::Function::New(env, IsGradEnabled));
}

}  // namespace kw
