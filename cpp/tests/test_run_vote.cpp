// The run vote: the k-of-n rule with its fail-safe side, bounded state, errors naming the
// argument, and many threads voting on interleaved products.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "check.hpp"
#include "edge_sdk/runtime/run_vote.hpp"

using edge::RunVote;
using edge::Verdict;

EDGE_TEST(rule_matches_k_of_n_with_review_for_anything_unjudged) {
  // every split of 10 acquisitions into rejects / accepts / reviews
  for (int r = 0; r <= 10; ++r)
    for (int a = 0; a + r <= 10; ++a) {
      const int rv = 10 - r - a;
      RunVote vote({7, 10, 4});
      edge::RunStatus s;
      int i = 0;
      for (int j = 0; j < r; ++j) s = vote.add("p", i++, Verdict::Reject);
      for (int j = 0; j < a; ++j) s = vote.add("p", i++, Verdict::Accept);
      for (int j = 0; j < rv; ++j) s = vote.add("p", i++, Verdict::Review);
      CHECK(s.decided && vote.open() == 0);
      const Verdict want = r >= 7 ? Verdict::Reject : (rv == 0 ? Verdict::Accept : Verdict::Review);
      CHECK(s.verdict == want);
      CHECK(s.rejects == r && s.accepts == a && s.reviews == rv && s.missing == 0);
    }
}

EDGE_TEST(closing_early_never_accepts_with_acquisitions_missing) {
  RunVote vote({7, 10, 4});
  for (int i = 0; i < 9; ++i) CHECK(!vote.add("a", i, Verdict::Accept).decided);
  edge::RunStatus s = vote.close("a");
  CHECK(s.decided && s.verdict == Verdict::Review && s.missing == 1);
  for (int i = 0; i < 7; ++i) vote.add("b", i, Verdict::Reject);
  s = vote.close("b");
  CHECK(s.verdict == Verdict::Reject && s.missing == 3);
  CHECK(vote.open() == 0);
  edge_test::expect_error<edge::ArgumentError>([&] { vote.close("b"); }, "no open run 'b'");
}

EDGE_TEST(state_is_bounded_and_errors_name_the_argument) {
  RunVote vote({2, 3, 2});
  vote.add("p1", 0, Verdict::Accept);
  vote.add("p2", 0, Verdict::Accept);
  edge_test::expect_error<edge::RunCapacityError>([&] { vote.add("p3", 0, Verdict::Accept); }, "max_open");
  CHECK(vote.open() == 2);
  edge_test::expect_error<edge::ArgumentError>([&] { vote.add("p1", 0, Verdict::Reject); }, "given twice");
  edge_test::expect_error<edge::ArgumentError>([&] { vote.add("p1", 3, Verdict::Reject); }, "index: expected 0 to 2");
  edge_test::expect_error<edge::ArgumentError>([&] { vote.add("", 0, Verdict::Reject); }, "product:");
  edge_test::expect_error<edge::ArgumentError>([&] { RunVote({0, 10, 4}); }, "k: expected 1 to n");
  edge_test::expect_error<edge::ArgumentError>([&] { RunVote({3, 2, 4}); }, "k: expected 1 to n");
  edge_test::expect_error<edge::ArgumentError>([&] { RunVote({1, 2000, 4}); }, "n: expected 1 to 1024");
  edge_test::expect_error<edge::ArgumentError>([&] { RunVote({1, 2, 0}); }, "max_open");
  // a code that is neither accept nor reject counts as not judged
  RunVote odd({1, 1, 1});
  CHECK(odd.add("x", 0, static_cast<Verdict>(5)).verdict == Verdict::Review);
}

EDGE_TEST(threads_voting_on_interleaved_products) {
  RunVote vote({7, 10, 64});
  std::atomic<int> rejected{0}, accepted{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int p = 0; p < 50; ++p)
        for (int i = t; i < 10; i += 4) {  // each product's acquisitions come from several threads
          const std::string id = "p" + std::to_string(p);
          const Verdict v = (p % 2 && i < 8) ? Verdict::Reject : Verdict::Accept;
          const edge::RunStatus s = vote.add(id, i, v);
          if (s.decided) (s.verdict == Verdict::Reject ? rejected : s.verdict == Verdict::Accept ? accepted : other)++;
        }
    });
  for (auto& th : threads) th.join();
  CHECK(rejected == 25 && accepted == 25 && other == 0 && vote.open() == 0);
}

EDGE_TEST_MAIN()
