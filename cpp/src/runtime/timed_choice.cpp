#include "timed_choice.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>

#include "edge_sdk/runtime/errors.hpp"

namespace edge {
namespace {

// Rounds of the timing: a few untimed calls (first-call set-up: tensors, kernels, caches), then
// timed calls interleaved round-robin, so a change of machine load shifts every candidate alike.
// Each is judged by its fastest call: other processes only ever add time, so the minimum is the
// estimate of a backend's own speed least disturbed by them (on a loaded 2-core machine the median
// of 7 picked the slower library in 2 of 4 cases the benchmark checked, bench_openvino.py).
// Timed at the batch the runtime will run (its max batch, at most kMaxTimedBatch to bound the cost
// of an open): the libraries' order can flip between batch 1 and 8 (bench_anomalib.py: OpenVINO
// 22 % faster at batch 1, ONNX Runtime 4-7 % faster at 8). Inputs are the runtime's buffers as
// bound (zeros before the first image): the networks' arithmetic does not depend on the values.
// The first candidate (ONNX Runtime, the default backend) is left only for one at least kMargin
// faster: within that the two are a coin toss on a loaded machine, and auto must never be slower
// than the default.
constexpr int kUntimed = 2, kTimed = 9;
constexpr int64_t kMaxTimedBatch = 8;
constexpr double kMargin = 0.05;

std::string ms(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3g ms", v);
  return b;
}

struct Pick {
  std::string name, report;
};

// Picks by key, for the life of the process (a few short strings per network ever opened).
std::mutex g_picks_mutex;
std::map<std::string, Pick>& picks() {
  static auto* p = new std::map<std::string, Pick>();  // never destroyed: runtimes may outlive statics
  return *p;
}

struct BackendCandidate {
  std::string name;
  std::unique_ptr<Backend> backend;
};

class TimedChoice final : public Backend {
 public:
  // With `known`, the one candidate is the pick of an earlier timing (no timing again).
  TimedChoice(std::string key, int64_t batch, std::vector<BackendCandidate> candidates,
              std::vector<std::string> skipped, const Pick* known)
      : key_(std::move(key)), batch_(batch), candidates_(std::move(candidates)), skipped_(std::move(skipped)) {
    if (known) report_ = known->report + ", timed at an earlier open of this network in this process";
  }

  std::string description() const override {
    if (!chosen_) return "auto (not bound yet)";
    std::string s = chosen_->description() + "; auto: picked " + chosen_name_ + report_;
    for (const auto& k : skipped_) s += "; " + k;
    return s;
  }

  void bind(int64_t max_batch, const std::vector<const float*>& inputs, const std::vector<float*>& outputs) override {
    for (auto& c : candidates_) c.backend->bind(max_batch, inputs, outputs);
    if (candidates_.size() == 1) return take(0);  // the only one available, or a remembered pick
    const int64_t batch = std::min(batch_, max_batch);
    std::vector<std::vector<double>> times(candidates_.size());
    std::vector<std::string> failed(candidates_.size());
    for (int r = 0; r < kUntimed + kTimed; ++r) {
      for (size_t i = 0; i < candidates_.size(); ++i) {
        if (!failed[i].empty()) continue;
        const auto t0 = std::chrono::steady_clock::now();
        try {
          candidates_[i].backend->run(batch);
        } catch (const std::exception& e) {
          failed[i] = e.what();
          continue;
        }
        if (r >= kUntimed)
          times[i].push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      }
    }
    size_t best = candidates_.size();
    std::vector<double> fastest(candidates_.size(), 0.0);
    for (size_t i = 0; i < candidates_.size(); ++i) {
      if (!failed[i].empty()) {
        skipped_.push_back(candidates_[i].name + ": failed while timed: " + failed[i]);
        continue;
      }
      fastest[i] = *std::min_element(times[i].begin(), times[i].end());
      if (best == candidates_.size()) best = i;
      else if (fastest[i] < fastest[best] * (best == 0 ? 1.0 - kMargin : 1.0)) best = i;
    }
    if (best == candidates_.size())
      throw BackendError("backend auto: every candidate failed: " + skipped_.back());
    report_ = " (" + ms(fastest[best]) + ")";
    for (size_t i = 0; i < candidates_.size(); ++i)
      if (i != best && failed[i].empty()) report_ += " over " + candidates_[i].name + " (" + ms(fastest[i]) + ")";
    report_ += ", fastest of " + std::to_string(kTimed) + " runs at batch " + std::to_string(batch) +
               (best == 0 ? "" : ", at least " + std::to_string(static_cast<int>(kMargin * 100)) + " % faster than " +
                                     candidates_[0].name);
    {
      std::lock_guard<std::mutex> lock(g_picks_mutex);
      picks().emplace(key_, Pick{candidates_[best].name, report_});  // a concurrent first timing: the first stays
    }
    take(best);
  }

  void run(int64_t batch) override { chosen_->run(batch); }
  void cancel() noexcept override {
    if (chosen_) chosen_->cancel();
  }

 private:
  // Keeps candidate i; the others (sessions, compiled models, their memory) go now.
  void take(size_t i) {
    chosen_ = std::move(candidates_[i].backend);
    chosen_name_ = candidates_[i].name;
    candidates_.clear();
  }

  std::string key_;
  int64_t batch_;
  std::vector<BackendCandidate> candidates_;
  std::vector<std::string> skipped_;
  std::unique_ptr<Backend> chosen_;
  std::string chosen_name_, report_;
};

}  // namespace

std::unique_ptr<Backend> make_timed_choice(const std::string& network_key, int64_t max_batch,
                                           const std::vector<BackendFactory>& factories) {
  const int64_t batch = std::max<int64_t>(1, std::min(max_batch, kMaxTimedBatch));
  const std::string key = network_key + "|batch " + std::to_string(batch);
  std::vector<BackendCandidate> candidates;
  std::vector<std::string> skipped;
  std::string first_error;
  auto add = [&](const BackendFactory& f) {
    try {
      candidates.push_back({f.name, f.make()});
    } catch (const BackendError& e) {
      const std::string what = e.what();
      skipped.push_back(f.name + " not used: " + what.substr(0, what.find('\n')));
      if (first_error.empty()) first_error = what;
    }
  };
  Pick known;
  {
    std::lock_guard<std::mutex> lock(g_picks_mutex);
    auto it = picks().find(key);
    if (it != picks().end()) known = it->second;
  }
  if (!known.name.empty()) {
    for (const auto& f : factories)
      if (f.name == known.name) add(f);
    if (!candidates.empty()) return std::make_unique<TimedChoice>(key, batch, std::move(candidates), std::vector<std::string>{}, &known);
    skipped.clear();  // the remembered pick cannot be made any more: time what can
  }
  for (const auto& f : factories) add(f);
  if (candidates.empty()) throw BackendError(first_error);
  return std::make_unique<TimedChoice>(key, batch, std::move(candidates), std::move(skipped), nullptr);
}

}  // namespace edge
