// IValue -> JS for what op results (ops.cc FromIValue) and TorchScript outputs (script_module.cc
// OutputFromIValue) convert alike, so the two cannot drift apart: a tensor (a new handle; undefined ->
// null), None, int, double, bool, string, and tuples and lists as arrays. Elements go through the caller's
// own conversion, which accepts more kinds (scalars for ops, string-keyed dicts for TorchScript).
#pragma once
#include <ATen/core/ivalue.h>
#include <optional>
#include "common.h"

namespace kw {

// The JS value of v, or nothing when v is of a kind the caller handles itself (or refuses).
template <typename Convert>
std::optional<Napi::Value> CommonFromIValue(Napi::Env env, const c10::IValue& v, Convert convert) {
  if (v.isTensor()) {
    const auto& t = v.toTensor();
    return t.defined() ? Napi::Value(TensorHandle::Wrap(env, t)) : env.Null();
  }
  if (v.isNone()) return env.Null();
  if (v.isInt()) return Napi::Number::New(env, static_cast<double>(v.toInt()));
  if (v.isDouble()) return Napi::Number::New(env, v.toDouble());
  if (v.isBool()) return Napi::Boolean::New(env, v.toBool());
  if (v.isString()) return Napi::String::New(env, v.toStringRef());
  if (v.isTuple()) {
    const auto& elems = v.toTupleRef().elements();
    auto arr = Napi::Array::New(env, elems.size());
    for (size_t i = 0; i < elems.size(); ++i) arr.Set(static_cast<uint32_t>(i), convert(env, elems[i]));
    return arr;
  }
  if (v.isList()) {
    auto list = v.toListRef();
    auto arr = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); ++i) arr.Set(static_cast<uint32_t>(i), convert(env, list[i]));
    return arr;
  }
  return std::nullopt;
}

}  // namespace kw
