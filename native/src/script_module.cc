// ScriptModuleHandle: a user's TorchScript archive, loaded by libtorch's own loader (torch::jit::load).
// Its parameters and buffers come back as ordinary TensorHandles that alias the module's own tensors
// (the same TensorImpl), so an in-place optimizer step on them changes what the module computes and
// saves. Only public libtorch API (torch/script.h and the JIT IR it ships) is used, so this builds
// against Debian's libtorch-dev and an official libtorch alike.
//
// A TorchScript archive is code: loading one runs no Python, but its forward is a program the archive's
// author wrote. Load only models you trust.
#include "common.h"
#include "ivalue_js.h"

#include <torch/script.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/runtime/custom_operator.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/csrc/jit/runtime/interpreter.h>

#include <map>
#include <memory>
#include <set>

namespace kw {

namespace {

Napi::FunctionReference* scriptConstructor = nullptr;

// JS -> IValue for forward inputs: tensors, numbers, booleans, strings, null, and arrays of them (as
// tuples: a TorchScript forward taking a List[Tensor] gets a list when every element is a tensor).
c10::IValue InputToIValue(Napi::Env env, const Napi::Value& v, const std::string& where) {
  if (TensorHandle::Is(v)) return c10::IValue(TensorHandle::Unwrap(v.As<Napi::Object>())->Get(env, "forward"));
  if (v.IsNull() || v.IsUndefined()) return c10::IValue();
  if (v.IsBoolean()) return c10::IValue(v.As<Napi::Boolean>().Value());
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (d == static_cast<double>(static_cast<int64_t>(d))) return c10::IValue(static_cast<int64_t>(d));
    return c10::IValue(d);
  }
  if (v.IsString()) return c10::IValue(v.As<Napi::String>().Utf8Value());
  if (v.IsArray()) {
    auto arr = v.As<Napi::Array>();
    bool allTensors = arr.Length() > 0;
    for (uint32_t i = 0; i < arr.Length(); ++i) allTensors = allTensors && TensorHandle::Is(arr.Get(i));
    if (allTensors) {
      std::vector<at::Tensor> list;
      for (uint32_t i = 0; i < arr.Length(); ++i) list.push_back(TensorHandle::Unwrap(arr.Get(i).As<Napi::Object>())->Get(env, "forward"));
      return c10::IValue(list);
    }
    std::vector<c10::IValue> elems;
    for (uint32_t i = 0; i < arr.Length(); ++i) elems.push_back(InputToIValue(env, arr.Get(i), where + "[" + std::to_string(i) + "]"));
    return c10::ivalue::Tuple::create(std::move(elems));
  }
  throw std::runtime_error(where + " is not a tensor, number, boolean, string, null or array");
}

// IValue -> JS for outputs and plain attributes; tensors become new handles (tracked by the caller's scope).
Napi::Value OutputFromIValue(Napi::Env env, const c10::IValue& v) {
  if (auto js = CommonFromIValue(env, v, OutputFromIValue)) return *js;
  if (v.isGenericDict()) {
    auto obj = Napi::Object::New(env);
    for (const auto& e : v.toGenericDict()) {
      if (!e.key().isString()) throw std::runtime_error("a dict output with non-string keys cannot be returned to JS");
      obj.Set(e.key().toStringRef(), OutputFromIValue(env, e.value()));
    }
    return obj;
  }
  throw std::runtime_error(std::string("a value of type ") + v.tagKind() + " cannot be returned to JS");
}

// A plain (non-tensor, non-module) attribute or class constant a defense may read: numbers, booleans,
// strings, None and lists/tuples of numbers. Others are skipped.
bool IsPlain(const c10::IValue& v) {
  if (v.isInt() || v.isDouble() || v.isBool() || v.isString() || v.isNone()) return true;
  if (v.isIntList() || v.isDoubleList() || v.isBoolList()) return true;
  if (v.isTuple()) {
    for (const auto& e : v.toTupleRef().elements()) {
      if (!(e.isInt() || e.isDouble() || e.isBool())) return false;
    }
    return true;
  }
  return false;
}

// Whether a method's graph (blocks included) reads the module's `training` attribute: a scripted
// BatchNorm/Dropout does (`if self.training:`); a traced one has the mode it was traced in baked in.
bool ReadsTraining(const torch::jit::Block* block) {
  for (const torch::jit::Node* node : block->nodes()) {
    if (node->kind() == c10::prim::GetAttr && node->s(c10::attr::name) == "training") return true;
    for (const torch::jit::Block* sub : node->blocks()) {
      if (ReadsTraining(sub)) return true;
    }
  }
  return false;
}

// The layer ops a module's own methods call (not its submodules'), with their constant arguments by
// schema name: a traced module keeps no stride/groups/eps attributes, but its graph has them as constants
// (and a traced batch_norm its baked-in `training` flag).
const std::set<std::string>& LayerOps() {
  static const std::set<std::string> ops = {
    "aten::conv1d", "aten::conv2d", "aten::_convolution", "aten::convolution", "aten::batch_norm", "aten::linear",
    "aten::layer_norm", "aten::group_norm", "aten::instance_norm", "aten::lstm", "aten::gru",
  };
  return ops;
}

void CollectOps(Napi::Env env, const torch::jit::Block* block, Napi::Array& out, uint32_t& k) {
  for (const torch::jit::Node* node : block->nodes()) {
    for (const torch::jit::Block* sub : node->blocks()) CollectOps(env, sub, out, k);
    const std::string op = node->kind().toQualString();
    if (!LayerOps().count(op)) continue;
    auto rec = Napi::Object::New(env);
    rec.Set("op", Napi::String::New(env, op));
    auto args = Napi::Object::New(env);
    if (const c10::FunctionSchema* schema = node->maybeSchema()) {
      const auto& formals = schema->arguments();
      for (size_t i = 0; i < node->inputs().size() && i < formals.size(); ++i) {
        c10::optional<c10::IValue> constant = torch::jit::toIValue(node->input(i));
        if (constant && IsPlain(*constant)) args.Set(formals[i].name(), OutputFromIValue(env, *constant));
      }
    }
    rec.Set("args", args);
    out.Set(k++, rec);
  }
}


// ---------------------------------------------------------------------------------------------------------
// Hooked forwards (forward hooks on a TorchScript model's submodules).
//
// A submodule's forward runs inside the archive's compiled code, so a JS forward hook cannot wrap it as it
// wraps a built-in layer. A hooked forward rewrites a copy of the forward graph instead: every call of a
// hooked submodule's forward (a prim::CallMethod whose module is a prim::GetAttr chain from `self`) becomes
// a call of the operator kwshield::callout(x, id), which hands x to a JS function and continues the graph
// with the tensor that function returns. The JS side runs the view's forward there: its hooks, around the
// submodule's own compiled forward. So a hook reads the layer's input and output, replaces the output, or
// swaps the layer's tensors for the call, exactly as on a built-in layer. Calls of the hooked modules'
// ancestors are inlined first (so that a hooked `layer1.0.bn1` becomes visible in the top graph), every other
// call after the rewrite (torch::jit::Inline).
//
// The rewritten graph runs in libtorch's interpreter (torch::jit::Code + InterpreterState) without the
// graph executor's optimisations: every op runs eagerly and autograd records each one, so gradients flow
// through the JS function's result into the rest of the graph, and a gradient with respect to a hooked
// layer's output (NGF) is taken on the very tensor the rest of the graph consumed. The graph executor could
// merge ops around the tap into one differentiable subgraph, after which that tensor would not be on the
// loss's autograd path.

struct CalloutContext {
  Napi::Env env;
  Napi::Function fn;
  // tensors the JS function returned, by TensorImpl: a later callout whose input is one of them gets the
  // same JS handle (so the JS side sees that a layer read exactly the previous layer's output)
  std::vector<std::pair<const c10::TensorImpl*, Napi::ObjectReference>> returned;
  Napi::ObjectReference error;  // what the JS function threw
};

thread_local CalloutContext* currentCallout = nullptr;

void CalloutOp(torch::jit::Stack& stack) {
  const int64_t id = stack.back().toInt();
  stack.pop_back();
  at::Tensor x = stack.back().toTensor();
  stack.pop_back();
  CalloutContext* ctx = currentCallout;
  if (!ctx) throw std::runtime_error("kwshield::callout ran outside a hooked forward (on another thread?)");
  Napi::Env env = ctx->env;
  Napi::HandleScope scope(env);
  Napi::Value handle;
  for (auto it = ctx->returned.rbegin(); it != ctx->returned.rend() && handle.IsEmpty(); ++it) {
    if (it->first == x.unsafeGetTensorImpl() && !TensorHandle::Unwrap(it->second.Value())->Disposed()) handle = it->second.Value();
  }
  if (handle.IsEmpty()) handle = TensorHandle::Wrap(env, x);
  Napi::Value result;
  try {
    result = ctx->fn.Call({Napi::Number::New(env, static_cast<double>(id)), handle});
  } catch (const Napi::Error& e) {
    ctx->error = Napi::Persistent(e.Value());
    throw std::runtime_error("a forward hook threw");
  }
  if (!TensorHandle::Is(result)) throw std::runtime_error("the forward of a hooked submodule returned no tensor");
  auto obj = result.As<Napi::Object>();
  at::Tensor out = TensorHandle::Unwrap(obj)->Get(env, "hooked forward");
  ctx->returned.emplace_back(out.unsafeGetTensorImpl(), Napi::Persistent(obj));
  stack.emplace_back(std::move(out));
}

torch::jit::RegisterOperators registerCallout({torch::jit::Operator(
    "kwshield::callout(Tensor x, int id) -> Tensor", CalloutOp, c10::AliasAnalysisKind::CONSERVATIVE)});

// The dotted path of the module a value holds, relative to `self`, when it is a prim::GetAttr chain from it.
c10::optional<std::string> ModulePath(torch::jit::Value* v, const torch::jit::Value* self) {
  std::vector<std::string> names;
  while (v != self) {
    torch::jit::Node* n = v->node();
    if (n->kind() != c10::prim::GetAttr) return c10::nullopt;
    names.push_back(n->s(c10::attr::name));
    v = n->input(0);
  }
  std::string path;
  for (auto it = names.rbegin(); it != names.rend(); ++it) path += (path.empty() ? "" : ".") + *it;
  return path;
}

void CollectCalls(torch::jit::Block* block, std::vector<torch::jit::Node*>& out) {
  for (torch::jit::Node* node : block->nodes()) {
    if (node->kind() == c10::prim::CallMethod) out.push_back(node);
    for (torch::jit::Block* sub : node->blocks()) CollectCalls(sub, out);
  }
}

bool IsTensorValue(const torch::jit::Value* v) { return v->type()->isSubtypeOf(*c10::TensorType::get()); }

// The forward graph of `root` with every call of the submodules at `hooked` (paths relative to root) made a
// callout with that path's index. Throws, naming the submodule, when one cannot be hooked.
std::shared_ptr<torch::jit::Graph> HookedGraph(const torch::jit::Module& root, const std::vector<std::string>& hooked) {
  auto method = root.find_method("forward");
  if (!method) throw std::runtime_error("the module has no forward method");
  std::shared_ptr<torch::jit::Graph> graph = torch::jit::toGraphFunction(method->function()).graph()->copy();
  const torch::jit::Value* self = graph->inputs().at(0);
  auto ancestorOfHooked = [&](const std::string& p) {
    for (const auto& h : hooked) {
      if (p.empty() || h.rfind(p + ".", 0) == 0) return true;
    }
    return false;
  };
  // 1. Inline the calls of hooked modules' ancestors (their unoptimised graphs, which keep their own calls).
  for (bool changed = true; changed;) {
    changed = false;
    std::vector<torch::jit::Node*> calls;
    CollectCalls(graph->block(), calls);
    for (torch::jit::Node* call : calls) {
      auto p = ModulePath(call->input(0), self);
      if (!p || p->empty() || std::find(hooked.begin(), hooked.end(), *p) != hooked.end() || !ancestorOfHooked(*p)) continue;
      auto cls = call->input(0)->type()->expect<c10::ClassType>();
      torch::jit::GraphFunction& callee = torch::jit::toGraphFunction(cls->getMethod(call->s(c10::attr::name)));
      torch::jit::inlineCallTo(call, &callee, callee.graph().get());
      changed = true;
      break;
    }
  }
  // 2. Hooked calls -> callouts.
  std::vector<int> found(hooked.size(), 0);
  std::vector<torch::jit::Node*> calls;
  CollectCalls(graph->block(), calls);
  for (torch::jit::Node* call : calls) {
    auto p = ModulePath(call->input(0), self);
    if (!p) continue;
    auto at = std::find(hooked.begin(), hooked.end(), *p);
    if (at == hooked.end()) continue;
    const std::string name = call->s(c10::attr::name);
    const std::string where = "'" + *p + "'";
    if (name != "forward") throw std::runtime_error(where + " is called through its method '" + name + "', not forward, so its forward cannot be hooked");
    if (call->inputs().size() != 2 || !IsTensorValue(call->input(1)) || call->outputs().size() != 1 || !IsTensorValue(call->output())) {
      throw std::runtime_error(where + "'s forward does not map one tensor to one tensor (" + std::to_string(call->inputs().size() - 1) +
                               " inputs, output " + call->outputs().at(0)->type()->repr_str() + "); kwshield hooks layers with one tensor in and one out");
    }
    const int64_t id = at - hooked.begin();
    torch::jit::WithInsertPoint guard(call);
    torch::jit::Value* idValue = graph->insertConstant(id);
    torch::jit::Node* callout = graph->create(c10::Symbol::fromQualString("kwshield::callout"), {call->input(1), idValue}, 1);
    callout->insertBefore(call);
    callout->output()->setType(call->output()->type());
    call->output()->replaceAllUsesWith(callout->output());
    call->destroy();
    found[id] += 1;
  }
  for (size_t i = 0; i < hooked.size(); ++i) {
    if (!found[i]) {
      throw std::runtime_error("'" + hooked[i] + "' is never called by the forward (its code may read the layer's tensors directly instead of " +
                               "calling it), so a hook on it would never run");
    }
  }
  // 3. Everything else inlined: the interpreter then runs the whole forward op by op.
  torch::jit::Inline(*graph);
  return graph;
}

}  // namespace

class ScriptModuleHandle : public Napi::ObjectWrap<ScriptModuleHandle> {
 public:
  static Napi::Function Define(Napi::Env env) {
    Napi::Function ctor = DefineClass(env, "ScriptModuleHandle", {
      InstanceMethod<&ScriptModuleHandle::NamedParameters>("namedParameters"),
      InstanceMethod<&ScriptModuleHandle::NamedBuffers>("namedBuffers"),
      InstanceMethod<&ScriptModuleHandle::Modules>("modules"),
      InstanceMethod<&ScriptModuleHandle::Forward>("forward"),
      InstanceMethod<&ScriptModuleHandle::ForwardHooked>("forwardHooked"),
      InstanceMethod<&ScriptModuleHandle::HookProblem>("hookProblem"),
      InstanceMethod<&ScriptModuleHandle::Train>("train"),
      InstanceMethod<&ScriptModuleHandle::IsTraining>("isTraining"),
      InstanceMethod<&ScriptModuleHandle::SetTrainingAt>("setTrainingAt"),
      InstanceMethod<&ScriptModuleHandle::GetAttr>("getAttr"),
      InstanceMethod<&ScriptModuleHandle::SetAttr>("setAttr"),
      InstanceMethod<&ScriptModuleHandle::Save>("save"),
      InstanceMethod<&ScriptModuleHandle::To>("to"),
      InstanceMethod<&ScriptModuleHandle::ChannelsLast>("channelsLast"),
      InstanceMethod<&ScriptModuleHandle::Code>("code"),
      InstanceMethod<&ScriptModuleHandle::SetGraphOptimizer>("setGraphOptimizer"),
      InstanceMethod<&ScriptModuleHandle::IsDisposed>("isDisposed"),
      InstanceMethod<&ScriptModuleHandle::Dispose>("dispose"),
    });
    scriptConstructor = new Napi::FunctionReference(Napi::Persistent(ctor));
    return ctor;
  }

  explicit ScriptModuleHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ScriptModuleHandle>(info) {
    if (info.Length() != 1 || !info[0].IsExternal()) {
      throw Napi::TypeError::New(info.Env(), "ScriptModuleHandle is made by loadScriptModule(), not with new");
    }
    auto* boxed = info[0].As<Napi::External<torch::jit::Module>>().Data();
    module_ = std::move(*boxed);
    delete boxed;
  }

  static Napi::Object Wrap(Napi::Env env, torch::jit::Module m) {
    auto* boxed = new torch::jit::Module(std::move(m));
    return scriptConstructor->New({Napi::External<torch::jit::Module>::New(env, boxed)});
  }

 private:
  torch::jit::Module& Get(Napi::Env env, const char* what) {
    if (!module_) throw Napi::Error::New(env, std::string(what) + ": the TorchScript module was disposed");
    return *module_;
  }

  // The submodule at a dotted path ('' is the module itself).
  torch::jit::Module At(Napi::Env env, const std::string& path, const char* what) {
    torch::jit::Module m = Get(env, what);
    if (path.empty()) return m;
    size_t start = 0;
    while (start <= path.size()) {
      size_t dot = path.find('.', start);
      std::string name = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      if (!m.hasattr(name) || !m.attr(name).isModule()) {
        throw std::runtime_error("the TorchScript module has no submodule '" + path + "'");
      }
      m = m.attr(name).toModule();
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    return m;
  }

  // [[name, tensor], ...]: the module's own tensors (aliases, not copies).
  template <typename List>
  static Napi::Value Pairs(Napi::Env env, const List& list) {
    auto arr = Napi::Array::New(env);
    uint32_t i = 0;
    for (const auto& item : list) {
      auto pair = Napi::Array::New(env, 2);
      pair.Set(0u, Napi::String::New(env, item.name));
      pair.Set(1u, TensorHandle::Wrap(env, item.value));
      arr.Set(i++, pair);
    }
    return arr;
  }

  Napi::Value NamedParameters(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    auto& m = Get(env, "namedParameters");
    return Guard(env, "namedParameters", [&]() -> Napi::Value { return Pairs(env, m.named_parameters(true)); });
  }

  Napi::Value NamedBuffers(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    auto& m = Get(env, "namedBuffers");
    return Guard(env, "namedBuffers", [&]() -> Napi::Value { return Pairs(env, m.named_buffers(true)); });
  }

  // modules(): one record per module, pre-order ('' first): { path, type, parameters, buffers,
  // attributes (plain attributes and class constants), readsTraining }.
  Napi::Value Modules(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    auto& root = Get(env, "modules");
    return Guard(env, "modules", [&]() -> Napi::Value {
      auto arr = Napi::Array::New(env);
      uint32_t k = 0;
      for (const auto& item : root.named_modules()) {
        const torch::jit::Module& m = item.value;
        auto type = m.type();
        auto rec = Napi::Object::New(env);
        rec.Set("path", Napi::String::New(env, item.name));
        rec.Set("type", Napi::String::New(env, type->name() ? type->name()->qualifiedName() : std::string("")));
        auto params = Napi::Array::New(env);
        auto buffers = Napi::Array::New(env);
        auto attrs = Napi::Object::New(env);
        uint32_t np = 0, nb = 0;
        for (size_t i = 0; i < type->numAttributes(); ++i) {
          const std::string name = type->getAttributeName(i);
          const c10::IValue value = m._ivalue()->getSlot(i);
          // A parameter slot holding None (a conv's absent bias) is no parameter.
          if (type->is_parameter(i)) {
            if (value.isTensor()) params.Set(np++, Napi::String::New(env, name));
          } else if (type->is_buffer(i)) {
            if (value.isTensor()) buffers.Set(nb++, Napi::String::New(env, name));
          } else if (name != "training" && name.rfind('_', 0) != 0 && IsPlain(value)) {
            attrs.Set(name, OutputFromIValue(env, value));
          }
        }
        for (size_t i = 0; i < type->numConstants(); ++i) {
          const c10::IValue value = type->getConstant(i);
          if (IsPlain(value)) attrs.Set(type->getConstantName(i), OutputFromIValue(env, value));
        }
        rec.Set("parameters", params);
        rec.Set("buffers", buffers);
        rec.Set("attributes", attrs);
        auto ops = Napi::Array::New(env);
        uint32_t nops = 0;
        for (const auto& method : m.get_methods()) CollectOps(env, method.graph()->block(), ops, nops);
        rec.Set("ops", ops);
        auto forward = m.find_method("forward");
        rec.Set("hasForward", Napi::Boolean::New(env, forward.has_value()));
        rec.Set("readsTraining", Napi::Boolean::New(env, forward.has_value() && ReadsTraining(forward->graph()->block())));
        arr.Set(k++, rec);
      }
      return arr;
    });
  }

  // forward(path, inputs[]): runs the forward method of the module at `path` ('' for the whole model),
  // under the caller's grad mode (autograd records it unless inside noGrad).
  //
  // It runs on the graph executor's unoptimised plan (GraphOptimizerEnabledGuard(false)): the archive's ops one
  // by one, each recorded by autograd as PyTorch's eager mode records it, as the hooked forward runs them. The
  // optimised plan differentiates the graph itself (autodiff's DifferentiableGraph, whose backward computes
  // e.g. ReLU's gradient as grad * (y > 0).type_as(y), three ops for eager's one threshold_backward, and
  // batch_norm's through _batch_norm_impl_index_backward): measured on a scripted ResNet, it made the GN-FT step
  // 15% slower than the same step in eager PyTorch (bench/profile.ts --torchscript). CPU fusion, the one thing
  // the optimiser could add, is off in libtorch by default. setGraphOptimizer(true) keeps the optimised plan
  // (for comparison); libtorch keeps whichever plan a method ran first, so it is set before the first forward.
  Napi::Value Forward(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    const std::string path = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
    if (!info[1].IsArray()) throw Napi::TypeError::New(env, "forward: inputs must be an array");
    auto inputs = info[1].As<Napi::Array>();
    return Guard(env, path.empty() ? "forward" : "forward of '" + path + "'", [&]() -> Napi::Value {
      torch::jit::Module m = At(env, path, "forward");
      std::vector<c10::IValue> stack;
      for (uint32_t i = 0; i < inputs.Length(); ++i) stack.push_back(InputToIValue(env, inputs.Get(i), "input " + std::to_string(i)));
      auto method = m.find_method("forward");
      if (!method) throw std::runtime_error("the module has no forward method");
      torch::jit::GraphOptimizerEnabledGuard plan(graphOptimizer_);
      return OutputFromIValue(env, (*method)(std::move(stack)));
    });
  }


  // forwardHooked(path, hooked[], inputs[], callout(id, x) -> tensor): the forward of the module at `path`
  // with every call of the submodules at `hooked` (paths relative to it) replaced by a call of `callout`
  // with that path's index (see "Hooked forwards" above). The rewritten graph is compiled once per path and
  // hooked set.
  Napi::Value ForwardHooked(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    const std::string path = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
    if (!info[1].IsArray() || !info[2].IsArray() || !info[3].IsFunction()) {
      throw Napi::TypeError::New(env, "forwardHooked(path, hooked[], inputs[], callout)");
    }
    auto hookedArr = info[1].As<Napi::Array>();
    std::vector<std::string> hooked;
    for (uint32_t i = 0; i < hookedArr.Length(); ++i) hooked.push_back(hookedArr.Get(i).As<Napi::String>().Utf8Value());
    auto inputs = info[2].As<Napi::Array>();
    CalloutContext ctx{env, info[3].As<Napi::Function>(), {}, {}};
    CalloutContext* outer = currentCallout;
    const std::string what = path.empty() ? "hooked forward" : "hooked forward of '" + path + "'";
    try {
      torch::jit::Module m = At(env, path, "forwardHooked");
      std::shared_ptr<torch::jit::Code> code = HookedCode(m, path, hooked);
      torch::jit::Stack stack;
      stack.emplace_back(m._ivalue());
      for (uint32_t i = 0; i < inputs.Length(); ++i) stack.push_back(InputToIValue(env, inputs.Get(i), "input " + std::to_string(i)));
      currentCallout = &ctx;
      try {
        torch::jit::InterpreterState state(*code);
        state.run(stack);
      } catch (...) {
        currentCallout = outer;
        throw;
      }
      currentCallout = outer;
      if (stack.size() != 1) throw std::runtime_error("the forward returned " + std::to_string(stack.size()) + " values");
      return OutputFromIValue(env, stack[0]);
    } catch (const Napi::Error&) {
      throw;
    } catch (const std::exception& e) {
      // A hook's own error is rethrown as it was thrown.
      if (!ctx.error.IsEmpty()) throw Napi::Error(env, ctx.error.Value());
      const c10::Error* ce = dynamic_cast<const c10::Error*>(&e);
      throw Napi::Error::New(env, what + ": " + (ce ? ce->what_without_backtrace() : e.what()));
    }
  }

  // The rewritten forward of the module at `path` with callouts for `hooked`, compiled once per path and set.
  std::shared_ptr<torch::jit::Code> HookedCode(const torch::jit::Module& m, const std::string& path, const std::vector<std::string>& hooked) {
    std::string key = path;
    for (const auto& h : hooked) key += "\n" + h;
    auto cached = hookedCode_.find(key);
    if (cached == hookedCode_.end()) {
      auto graph = HookedGraph(m, hooked);
      cached = hookedCode_.emplace(key, std::make_shared<torch::jit::Code>(graph, "kwshield_hooked_forward")).first;
    }
    return cached->second;
  }

  // hookProblem(path, hooked[]): why the submodules at `hooked` (relative to `path`) cannot be hooked, or null.
  Napi::Value HookProblem(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    auto arr = info[1].As<Napi::Array>();
    std::vector<std::string> hooked;
    for (uint32_t i = 0; i < arr.Length(); ++i) hooked.push_back(arr.Get(i).As<Napi::String>().Utf8Value());
    try {
      HookedCode(At(env, path, "hookProblem"), path, hooked);
      return env.Null();
    } catch (const c10::Error& e) {
      return Napi::String::New(env, e.what_without_backtrace());
    } catch (const std::exception& e) {
      return Napi::String::New(env, e.what());
    }
  }

  Napi::Value Train(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    auto& m = Get(env, "train");
    m.train(info[0].ToBoolean().Value());
    return env.Undefined();
  }

  Napi::Value IsTraining(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), Get(info.Env(), "isTraining").is_training());
  }

  // setTrainingAt(path, on): the `training` flag of one module only (not its submodules), as assigning
  // `module.training` in Python does.
  Napi::Value SetTrainingAt(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    const bool on = info[1].ToBoolean().Value();
    return Guard(env, "setTrainingAt", [&]() -> Napi::Value {
      torch::jit::Module m = At(env, path, "setTrainingAt");
      m.setattr("training", on);
      return env.Undefined();
    });
  }

  // getAttr(path, name): a tensor (a new handle aliasing the slot), a plain value, or null.
  Napi::Value GetAttr(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    const std::string name = info[1].As<Napi::String>().Utf8Value();
    return Guard(env, "getAttr", [&]() -> Napi::Value {
      torch::jit::Module m = At(env, path, "getAttr");
      if (!m.hasattr(name)) throw std::runtime_error("'" + (path.empty() ? name : path + "." + name) + "' is not an attribute of the TorchScript module");
      c10::IValue v = m.attr(name);
      if (v.isModule()) throw std::runtime_error("'" + name + "' is a submodule, not a value");
      return OutputFromIValue(env, v);
    });
  }

  // setAttr(path, name, tensor): puts a tensor in a tensor slot (a parameter or buffer keeps its role;
  // the module computes with the new tensor until it is put back).
  Napi::Value SetAttr(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    const std::string name = info[1].As<Napi::String>().Utf8Value();
    if (!TensorHandle::Is(info[2])) throw Napi::TypeError::New(env, "setAttr: expected a tensor");
    const at::Tensor& t = TensorHandle::Unwrap(info[2].As<Napi::Object>())->Get(env, "setAttr");
    return Guard(env, "setAttr", [&]() -> Napi::Value {
      torch::jit::Module m = At(env, path, "setAttr");
      const std::string full = path.empty() ? name : path + "." + name;
      if (!m.hasattr(name) || !m.attr(name).isTensor()) throw std::runtime_error("'" + full + "' is not a tensor slot of the TorchScript module");
      const at::Tensor old = m.attr(name).toTensor();
      if (old.defined() && old.sizes() != t.sizes()) {
        throw std::runtime_error("'" + full + "' has shape " + ShapeString(old) + ", the new tensor " + ShapeString(t));
      }
      m.setattr(name, c10::IValue(t));
      return env.Undefined();
    });
  }

  // save(path): writes the archive (code, current parameters and buffers) to exactly `path`; the
  // TypeScript side writes to a temporary name and renames.
  Napi::Value Save(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    auto& m = Get(env, "save");
    return Guard(env, "save " + path, [&]() -> Napi::Value {
      m.save(path);
      return env.Undefined();
    });
  }

  // to(device): moves parameters and buffers in place (each keeps its identity, so handles stay valid).
  Napi::Value To(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    const std::string device = info[0].As<Napi::String>().Utf8Value();
    auto& m = Get(env, "to");
    return Guard(env, "to " + device, [&]() -> Napi::Value {
      m.to(c10::Device(device));
      return env.Undefined();
    });
  }

  // channelsLast(): re-lays out every 4-D parameter and buffer in channels_last, in place (set_data: each
  // keeps its identity, so the handles aliasing them stay valid and see the new layout).
  Napi::Value ChannelsLast(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    auto& m = Get(env, "channelsLast");
    return Guard(env, "channelsLast", [&]() -> Napi::Value {
      at::NoGradGuard noGrad;
      auto relayout = [](at::Tensor t) {
        if (t.dim() == 4 && !t.is_contiguous(at::MemoryFormat::ChannelsLast)) t.set_data(t.contiguous(at::MemoryFormat::ChannelsLast));
      };
      for (const auto& p : m.parameters(true)) relayout(p);
      for (const auto& b : m.buffers(true)) relayout(b);
      return env.Undefined();
    });
  }

  // code(): the forward method's TorchScript source (for messages and debugging).
  Napi::Value Code(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    auto& m = Get(env, "code");
    return Guard(env, "code", [&]() -> Napi::Value {
      auto method = m.find_method("forward");
      return Napi::String::New(env, method ? method->graph()->toString() : std::string());
    });
  }

  // setGraphOptimizer(on): forward on the graph executor's optimised plan (see Forward); before the first forward.
  Napi::Value SetGraphOptimizer(const Napi::CallbackInfo& info) {
    graphOptimizer_ = info[0].ToBoolean().Value();
    return info.Env().Undefined();
  }

  Napi::Value IsDisposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !module_.has_value()); }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    hookedCode_.clear();
    module_.reset();
    return info.Env().Undefined();
  }

  c10::optional<torch::jit::Module> module_;
  bool graphOptimizer_ = false;
  std::map<std::string, std::shared_ptr<torch::jit::Code>> hookedCode_;
};

namespace {

// loadScriptModule(path, device?): libtorch's loader, with its errors made plain.
Napi::Value LoadScriptModule(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "loadScriptModule: path must be a string");
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  c10::optional<c10::Device> device;
  if (info.Length() > 1 && info[1].IsString()) device = c10::Device(info[1].As<Napi::String>().Utf8Value());
  torch::jit::Module m;
  try {
    m = torch::jit::load(path, device);
  } catch (const c10::Error& e) {
    throw Napi::Error::New(env, e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
  return ScriptModuleHandle::Wrap(env, std::move(m));
}

}  // namespace

void InitScriptModule(Napi::Env env, Napi::Object exports) {
  exports.Set("ScriptModuleHandle", ScriptModuleHandle::Define(env));
  exports.Set("loadScriptModule", Napi::Function::New(env, LoadScriptModule));
}

}  // namespace kw
