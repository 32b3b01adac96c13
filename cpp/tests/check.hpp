// Minimal test harness for the C++ unit tests run by CTest: CHECK records a failure and goes on;
// the test's exit code is the number of failures.
#pragma once

#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace edge_test {

inline int& failures() {
  static int n = 0;
  return n;
}

struct Case {
  const char* name;
  std::function<void()> fn;
};
inline std::vector<Case>& cases() {
  static std::vector<Case> c;
  return c;
}
struct Register {
  Register(const char* name, std::function<void()> fn) { cases().push_back({name, std::move(fn)}); }
};

inline int run_all() {
  for (auto& c : cases()) {
    const int before = failures();
    try {
      c.fn();
    } catch (const std::exception& e) {
      std::printf("  exception: %s\n", e.what());
      ++failures();
    }
    std::printf("%s %s\n", failures() == before ? "PASS" : "FAIL", c.name);
  }
  std::printf("%d failure(s)\n", failures());
  return failures() ? 1 : 0;
}

}  // namespace edge_test

#define EDGE_TEST(name)                                                 \
  static void name();                                                   \
  static edge_test::Register name##_reg(#name, name);                   \
  static void name()

#define CHECK(cond)                                                                  \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      std::printf("  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);         \
      ++edge_test::failures();                                                       \
    }                                                                                \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                                                 \
  do {                                                                                        \
    const double va_ = (a), vb_ = (b);                                                        \
    if (!(std::fabs(va_ - vb_) <= (tol))) {                                                   \
      std::printf("  %s:%d: |%s - %s| = |%g - %g| > %g\n", __FILE__, __LINE__, #a, #b, va_, vb_, \
                  (double)(tol));                                                             \
      ++edge_test::failures();                                                                \
    }                                                                                         \
  } while (0)

#define CHECK_THROWS(expr)                                                           \
  do {                                                                               \
    bool thrown_ = false;                                                            \
    try {                                                                            \
      expr;                                                                          \
    } catch (const std::exception&) {                                                \
      thrown_ = true;                                                                \
    }                                                                                \
    if (!thrown_) {                                                                  \
      std::printf("  %s:%d: expected an exception from %s\n", __FILE__, __LINE__, #expr); \
      ++edge_test::failures();                                                       \
    }                                                                                \
  } while (0)

namespace edge_test {

// Runs fn and checks that it throws E with a message containing `needle`.
template <class E, class F>
void expect_error(F fn, const std::string& needle) {
  try {
    fn();
    std::printf("  no error, expected one containing \"%s\"\n", needle.c_str());
    CHECK(false);
  } catch (const E& e) {
    if (std::string(e.what()).find(needle) == std::string::npos) {
      std::printf("  message \"%s\" lacks \"%s\"\n", e.what(), needle.c_str());
      CHECK(false);
    }
  }
}

}  // namespace edge_test

#define EDGE_TEST_MAIN() \
  int main() { return edge_test::run_all(); }
