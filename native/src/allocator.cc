// A caching CPU allocator. Why: libtorch's default CPU allocator returns every large block to the OS
// (glibc munmaps anything over its mmap threshold), so each training step faults in the same
// activation memory again. On the 2-core VMs this project runs on, that made the kernel's page-fault
// work about half of a ResNet step's time, in PyTorch and here alike. Training repeats the same
// tensor sizes every step, so keeping freed large blocks by size and handing them back avoids the
// faults. Small blocks go straight to the system allocator (it already caches them). The cache is
// capped (KWSHIELD_CPU_CACHE_MB, default 2048; 0 disables it) and can be emptied from JS. A freed block
// that would overflow the cap evicts the oldest cached blocks first: work whose sizes keep changing (the
// attacks' signal processing, feature extraction) once filled an 8 GB cache with blocks no later request
// matched, and two such processes ran a 24 GB machine out of memory.
// The cap grows when it was too small for the work: a request that misses for a size the cache evicted earlier
// raises the cap by the bytes evicted since the cap last grew (at least that size, at most doubling the cap), as
// far as the machine has memory available (see AvailableBytes). Repeated steps re-request the same sizes, so the
// cap settles where they stop missing; work whose sizes keep changing never asks for an evicted size again and
// leaves the cap where it was. A fixed 2 GB cap was smaller than one EAT eval forward at batch 128, which
// evicted and faulted in its activations every time (8.0 s per forward, 0.97 s with the cap out of the way;
// 2026-12-02, bench:models). Raising the cap one re-requested block at a time then took an EAT train step
// (batch 128, 1 thread) six steps to stop faulting (1.3M, 0.4M, 0.5M, 0.2M minor faults in steps 1-4); raising
// it by the bytes let go makes that three (0.5M, 0.4M, then none; steady 8.8 s a step, PyTorch at its best
// 9.0-9.8 s on the same loaded VM, 2026-12-02).
// The ceiling of that growth was half the machine's RAM; an EAT-M train step at batch 128 keeps about 13 GB live,
// so on a 24 GB machine the cap stopped at 11.8 GB and every step still evicted and faulted in 3.2 GB (0.8M minor
// faults, 21 s a step against PyTorch's 12.3 s; 2026-12-03). The cap now grows while the machine has memory
// available (MemAvailable, less a reserve: KWSHIELD_CPU_CACHE_RESERVE_MB, by default an eighth of RAM and at least
// 1 GB), so one big job may use what is
// free, and several processes side by side stop growing once memory runs short instead of exhausting it.
#include "common.h"

#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace kw {
namespace {

constexpr size_t kMinCachedBytes = 256 * 1024;  // below this the system allocator is cheap enough
constexpr size_t kRounding = 64 * 1024;

size_t RoundUp(size_t n) { return (n + kRounding - 1) / kRounding * kRounding; }

class CachingCpuAllocator final : public c10::Allocator {
 public:
  // reserveBytes: memory growth must leave to the rest of the machine; 0 picks an eighth of RAM, at least 1 GB.
  CachingCpuAllocator(size_t capBytes, size_t reserveBytes) : cap_(capBytes), reserve_(reserveBytes) {
    long pages = sysconf(_SC_PHYS_PAGES);
    long pageSize = sysconf(_SC_PAGE_SIZE);
    const size_t ram = pages > 0 && pageSize > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(pageSize) : 0;
    if (reserve_ == 0) reserve_ = std::max<size_t>(ram / 8, size_t{1} << 30);
  }

  c10::DataPtr allocate(size_t n) const override {
    void* ptr = n < kMinCachedBytes ? c10::alloc_cpu(n) : Take(RoundUp(n));
    return {ptr, ptr, &Free, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &Free; }

  void EmptyCache() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [size, blocks] : free_) {
      for (void* p : blocks) c10::free_cpu(p);
    }
    free_.clear();
    order_.clear();
    cachedBytes_ = 0;
  }

  size_t CachedBytes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return cachedBytes_;
  }

  size_t CapBytes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return cap_;
  }

  /** large-block requests the cache could not serve (each one is fresh memory the kernel must fault in) */
  size_t Misses() const {
    std::lock_guard<std::mutex> lock(mu_);
    return misses_;
  }

  static CachingCpuAllocator* instance;

 private:
  void* Take(size_t size) const {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(size);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cachedBytes_ -= size;
        // its entry in order_ goes stale; Evict skips entries no longer in free_
        sizes_[p] = size;
        return p;
      }
    }
    void* p = c10::alloc_cpu(size);
    std::lock_guard<std::mutex> lock(mu_);
    sizes_[p] = size;
    ++misses_;
    if (evictedSizes_.erase(size)) Grow(size);  // evicted, then wanted again
    return p;
  }

  // Called with mu_ held. The cap was too small for repeating work: raise it by what the cache let go since the
  // last raise (at least the size asked for, at most doubling the cap), so that one step's worth of evictions is
  // made good at its first re-request instead of one block at a time.
  void Grow(size_t size) const {
    const size_t by = std::max(size, std::min(evictedBytes_, cap_));
    const size_t available = AvailableBytes();
    const size_t room = available > reserve_ ? available - reserve_ : 0;
    cap_ += std::min(by, room);
    evictedBytes_ = 0;
  }

  // Memory the machine could still give (Linux: MemAvailable, which counts reclaimable page cache; elsewhere the
  // free pages). Blocks this cache holds are not in it: they are already ours.
  static size_t AvailableBytes() {
    if (FILE* f = std::fopen("/proc/meminfo", "r")) {
      char line[256];
      unsigned long long kb = 0;
      bool found = false;
      while (std::fgets(line, sizeof line, f)) {
        if (std::sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
          found = true;
          break;
        }
      }
      std::fclose(f);
      if (found) return static_cast<size_t>(kb) * 1024;
    }
    long pages = sysconf(_SC_AVPHYS_PAGES);
    long pageSize = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && pageSize > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(pageSize) : 0;
  }

  static void Free(void* p) {
    if (!p) return;
    auto* self = instance;
    std::unique_lock<std::mutex> lock(self->mu_);
    auto it = self->sizes_.find(p);
    if (it == self->sizes_.end()) {  // a small block: not ours to cache
      lock.unlock();
      c10::free_cpu(p);
      return;
    }
    size_t size = it->second;
    self->sizes_.erase(it);
    const size_t cap = self->cap_;
    if (size > cap) {
      if (self->evictedSizes_.size() < 4096) self->evictedSizes_.insert(size);
      self->evictedBytes_ += size;
      lock.unlock();
      c10::free_cpu(p);
      return;
    }
    std::vector<void*> evicted;
    while (self->cachedBytes_ + size > cap && !self->order_.empty()) {
      auto [oldSize, old] = self->order_.front();
      self->order_.pop_front();
      auto& bucket = self->free_[oldSize];
      for (size_t i = 0; i < bucket.size(); ++i) {
        if (bucket[i] == old) {
          bucket[i] = bucket.back();
          bucket.pop_back();
          self->cachedBytes_ -= oldSize;
          evicted.push_back(old);
          if (self->evictedSizes_.size() < 4096) self->evictedSizes_.insert(oldSize);
          self->evictedBytes_ += oldSize;
          break;
        }
      }
    }
    self->free_[size].push_back(p);
    self->order_.emplace_back(size, p);
    self->cachedBytes_ += size;
    // Stale entries (blocks handed out again) are dropped once they outnumber the cached ones.
    if (self->order_.size() > 4 * (self->CachedCount() + 16)) self->CompactOrder();
    lock.unlock();
    for (void* e : evicted) c10::free_cpu(e);
  }

  size_t CachedCount() const {
    size_t n = 0;
    for (auto& [size, blocks] : free_) n += blocks.size();
    return n;
  }

  void CompactOrder() const {
    std::deque<std::pair<size_t, void*>> kept;
    std::unordered_map<void*, bool> cached;
    for (auto& [size, blocks] : free_)
      for (void* b : blocks) cached[b] = true;
    for (auto& entry : order_)
      if (cached.erase(entry.second)) kept.push_back(entry);
    order_.swap(kept);
  }

  mutable size_t cap_;  // grows (see the top of this file) while the machine has memory to spare
  size_t reserve_;      // memory growth leaves to the rest of the machine
  mutable std::unordered_set<size_t> evictedSizes_;  // sizes evicted and not requested since
  mutable std::mutex mu_;
  mutable std::unordered_map<size_t, std::vector<void*>> free_;
  mutable std::unordered_map<void*, size_t> sizes_;  // live large blocks
  mutable std::deque<std::pair<size_t, void*>> order_;  // cached blocks, oldest first (may hold stale entries)
  mutable size_t cachedBytes_ = 0;
  mutable size_t evictedBytes_ = 0;  // bytes let go (evicted or too big to keep) since the cap last grew
  mutable size_t misses_ = 0;
};

CachingCpuAllocator* CachingCpuAllocator::instance = nullptr;

Napi::Value EmptyCache(const Napi::CallbackInfo& info) {
  if (CachingCpuAllocator::instance) CachingCpuAllocator::instance->EmptyCache();
  return info.Env().Undefined();
}

Napi::Value CachedBytes(const Napi::CallbackInfo& info) {
  double bytes = CachingCpuAllocator::instance ? static_cast<double>(CachingCpuAllocator::instance->CachedBytes()) : 0;
  return Napi::Number::New(info.Env(), bytes);
}

Napi::Value CacheStats(const Napi::CallbackInfo& info) {
  auto* a = CachingCpuAllocator::instance;
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("capBytes", Napi::Number::New(info.Env(), a ? static_cast<double>(a->CapBytes()) : 0));
  o.Set("misses", Napi::Number::New(info.Env(), a ? static_cast<double>(a->Misses()) : 0));
  return o;
}

}  // namespace

void InitAllocator(Napi::Env env, Napi::Object exports) {
  const char* env_cap = std::getenv("KWSHIELD_CPU_CACHE_MB");
  long capMb = env_cap ? std::strtol(env_cap, nullptr, 10) : 2048;
  // KWSHIELD_CPU_CACHE_RESERVE_MB: memory the cap's growth leaves free (default: an eighth of RAM, at least 1 GB).
  const char* env_reserve = std::getenv("KWSHIELD_CPU_CACHE_RESERVE_MB");
  long reserveMb = env_reserve ? std::strtol(env_reserve, nullptr, 10) : 0;
  if (capMb > 0 && !CachingCpuAllocator::instance) {
    // Never destroyed: tensors freed during process exit still call into it.
    CachingCpuAllocator::instance = new CachingCpuAllocator(static_cast<size_t>(capMb) * 1024 * 1024,
                                                            static_cast<size_t>(std::max(0L, reserveMb)) * 1024 * 1024);
    c10::SetCPUAllocator(CachingCpuAllocator::instance, /*priority=*/10);
  }
  exports.Set("emptyCache", Napi::Function::New(env, EmptyCache));
  exports.Set("cachedBytes", Napi::Function::New(env, CachedBytes));
  exports.Set("cacheStats", Napi::Function::New(env, CacheStats));
}

}  // namespace kw
