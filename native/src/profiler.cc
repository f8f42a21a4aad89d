// libtorch's own (legacy, CPU) profiler through the addon: start, run JS, stop, and get per-op totals.
// Why: to find where a step's time goes beside PyTorch's `torch.autograd.profiler.profile(use_kineto=False)`,
// which records the same events from the same library, so the two tables compare op by op.
#include "common.h"

#include <torch/csrc/autograd/profiler_legacy.h>

#include <map>
#include <vector>

namespace kw {
namespace {

namespace prof = torch::autograd::profiler;

bool active = false;
bool groupByShapes = false;

// "[256, 16, 101, 40], [16]" for an event recorded with input shapes
std::string ShapesKey(const prof::LegacyEvent& e) {
  std::string key;
  for (const auto& shape : e.shapes()) {
    if (!key.empty()) key += ", ";
    key += "[";
    for (size_t i = 0; i < shape.size(); ++i) key += (i ? ", " : "") + std::to_string(shape[i]);
    key += "]";
  }
  return key;
}

Napi::Value ProfileStart(const Napi::CallbackInfo& info) {
  if (active) throw Napi::Error::New(info.Env(), "profileStart: the profiler is already running; call profileStop() first");
  groupByShapes = info.Length() > 0 && info[0].ToBoolean();
  prof::enableProfilerLegacy(torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU, /*report_input_shapes=*/groupByShapes));
  active = true;
  return info.Env().Undefined();
}

struct OpTotals {
  int64_t calls = 0;
  double totalUs = 0;  // inclusive of the ops it called
  double selfUs = 0;   // exclusive
};

// Push/pop ranges nest per thread; an op's self time is its range minus its direct children's.
void Accumulate(const std::vector<prof::LegacyEvent>& events, std::map<std::string, OpTotals>& out) {
  struct Open {
    const prof::LegacyEvent* event;
    double childUs;
  };
  std::vector<Open> stack;
  for (const auto& e : events) {
    if (e.kind() == prof::EventKind::PushRange) {
      stack.push_back({&e, 0});
    } else if (e.kind() == prof::EventKind::PopRange && !stack.empty()) {
      Open open = stack.back();
      stack.pop_back();
      double us = open.event->cpuElapsedUs(e);
      std::string key = open.event->name();
      if (groupByShapes) {
        key += " " + ShapesKey(*open.event);
        if (!stack.empty()) key += std::string(" <- ") + stack.back().event->name();
      }
      auto& t = out[key];
      t.calls += 1;
      t.totalUs += us;
      t.selfUs += us - open.childUs;
      if (!stack.empty()) stack.back().childUs += us;
    }
  }
}

Napi::Value ProfileStop(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (!active) throw Napi::Error::New(env, "profileStop: the profiler is not running; call profileStart() first");
  active = false;
  prof::thread_event_lists lists = prof::disableProfilerLegacy();
  std::map<std::string, OpTotals> totals;
  for (const auto& list : lists) Accumulate(list, totals);
  auto rows = Napi::Array::New(env, totals.size());
  uint32_t i = 0;
  for (const auto& [name, t] : totals) {
    auto row = Napi::Object::New(env);
    row.Set("name", name);
    row.Set("calls", Napi::Number::New(env, static_cast<double>(t.calls)));
    row.Set("totalUs", Napi::Number::New(env, t.totalUs));
    row.Set("selfUs", Napi::Number::New(env, t.selfUs));
    rows.Set(i++, row);
  }
  return rows;
}

}  // namespace

void InitProfiler(Napi::Env env, Napi::Object exports) {
  exports.Set("profileStart", Napi::Function::New(env, ProfileStart));
  exports.Set("profileStop", Napi::Function::New(env, ProfileStop));
}

}  // namespace kw
