#include "edge_sdk/runtime/run_vote.hpp"

#include "edge_sdk/common.hpp"

namespace edge {

RunVote::RunVote(RunVoteOptions options) : options_(options) {
  if (options.n < 1 || options.n > kMaxRunAcquisitions)
    throw ArgumentError("n: expected 1 to " + std::to_string(kMaxRunAcquisitions) + " acquisitions a run, got " +
                        std::to_string(options.n));
  if (options.k < 1 || options.k > options.n)
    throw ArgumentError("k: expected 1 to n (" + std::to_string(options.n) + "), got " + std::to_string(options.k));
  if (options.max_open < 1 || options.max_open > kMaxOpenRuns)
    throw ArgumentError("max_open: expected 1 to " + std::to_string(kMaxOpenRuns) + ", got " +
                        std::to_string(options.max_open));
}

RunStatus RunVote::status_of(const Run& run, bool closing) const {
  RunStatus s;
  for (int8_t v : run.seen) {
    if (v < 0) ++s.missing;
    else if (v == static_cast<int8_t>(Verdict::Reject)) ++s.rejects;
    else if (v == static_cast<int8_t>(Verdict::Accept)) ++s.accepts;
    else ++s.reviews;
  }
  s.judged = s.accepts + s.rejects;
  s.decided = closing || s.missing == 0;
  if (s.decided) s.verdict = run_verdict(s.rejects, s.accepts, options_.n, options_.k);
  return s;
}

RunStatus RunVote::add(const std::string& product, int index, Verdict verdict) {
  if (product.empty() || product.size() > kMaxProductIdBytes)
    throw ArgumentError("product: expected an id of 1 to " + std::to_string(kMaxProductIdBytes) + " bytes");
  if (index < 0 || index >= options_.n)
    throw ArgumentError("index: expected 0 to " + std::to_string(options_.n - 1) + ", got " + std::to_string(index));
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = runs_.find(product);
  if (it == runs_.end()) {
    if (runs_.size() >= options_.max_open)
      throw RunCapacityError("run vote: " + std::to_string(runs_.size()) +
                             " runs are open (max_open); close or finish runs before starting product '" + product +
                             "'");
    it = runs_.emplace(product, Run{std::vector<int8_t>(static_cast<size_t>(options_.n), -1)}).first;
  }
  int8_t& slot = it->second.seen[static_cast<size_t>(index)];
  if (slot >= 0)
    throw ArgumentError("index: acquisition " + std::to_string(index) + " of product '" + product + "' given twice");
  // anything but accept or reject counts as an acquisition that was not judged
  slot = static_cast<int8_t>(verdict == Verdict::Accept || verdict == Verdict::Reject ? verdict : Verdict::Review);
  RunStatus s = status_of(it->second, false);
  if (s.decided) runs_.erase(it);
  return s;
}

RunStatus RunVote::close(const std::string& product) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = runs_.find(product);
  if (it == runs_.end()) throw ArgumentError("product: no open run '" + product + "'");
  RunStatus s = status_of(it->second, true);
  runs_.erase(it);
  return s;
}

size_t RunVote::open() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return runs_.size();
}

}  // namespace edge
