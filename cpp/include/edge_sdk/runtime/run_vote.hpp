// The run vote of a product acquired n times (the vial line's 7 of 10): the host passes each
// acquisition's verdict under the product's id, and the run is decided by run_verdict
// (decision_math.hpp) once all n acquisitions are in, or when the host closes it early (then
// missing acquisitions make it review unless it already has k rejects). Thread-safe; the number
// of runs open at once is bounded (a new product beyond it is refused, never an open run
// dropped), and a decided run is forgotten.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "edge_sdk/runtime/decision_math.hpp"

namespace edge {

struct RunVoteOptions {
  int k = 7, n = 10;
  size_t max_open = 4096;
};
constexpr int kMaxRunAcquisitions = 1024;
constexpr size_t kMaxOpenRuns = 1 << 20;
constexpr size_t kMaxProductIdBytes = 256;

struct RunStatus {
  bool decided = false;
  Verdict verdict = Verdict::Review;  // the run's verdict once decided; review before
  int judged = 0, rejects = 0, accepts = 0, reviews = 0, missing = 0;
};

struct RunCapacityError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class RunVote {
 public:
  explicit RunVote(RunVoteOptions options);  // ArgumentError for k, n or max_open out of range
  // Records acquisition `index` (0 <= index < n) of `product`. ArgumentError for a bad index or id,
  // or an acquisition given twice; RunCapacityError when `product` is new and max_open runs are open.
  RunStatus add(const std::string& product, int index, Verdict verdict);
  // Decides `product` now with what it has (ArgumentError when no run of that id is open).
  RunStatus close(const std::string& product);
  size_t open() const;
  const RunVoteOptions& options() const { return options_; }

 private:
  struct Run {
    std::vector<int8_t> seen;  // -1 missing, else the Verdict code
  };
  RunStatus status_of(const Run& run, bool closing) const;
  RunVoteOptions options_;
  mutable std::mutex mutex_;
  std::map<std::string, Run> runs_;
};

}  // namespace edge
