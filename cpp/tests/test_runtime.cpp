// The whole runtime in C++ alone: a bundle built in the test (a Mul network as "reconstructor"
// and the SSIM recipe), opened first thing in the process, run on good and bad images.
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "check.hpp"
#include "edge_sdk/runtime/backend.hpp"
#include "edge_sdk/runtime/runtime.hpp"
#include "edge_sdk/thread_pool.hpp"
#include "tiny_onnx.hpp"

namespace fs = std::filesystem;

static fs::path make_bundle(const std::string& name, float scale) {
  const fs::path dir = fs::temp_directory_path() / ("edge_sdk_rt_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(dir);
  tiny::write_bundle(dir, tiny::manifest(1, 16, 12, "ssim", "reconstruction", "reconstructor"), scale,
                     "reconstruction", "reconstructor");
  return dir;
}

EDGE_TEST(identity_reconstruction_accepts_and_scaled_one_rejects) {
  edge::RuntimeOptions o;
  o.threads = 1;
  o.max_batch = 3;
  const fs::path good_dir = make_bundle("id", 1.0f), bad_dir = make_bundle("half", 0.5f);
  auto rt = edge::Runtime::open(good_dir.string(), o);  // the first ONNX Runtime use of the process
  auto rt_bad = edge::Runtime::open(bad_dir.string(), o);
  std::mt19937 gen(5);
  std::uniform_int_distribution<int> u(0, 255);
  std::vector<std::vector<uint8_t>> pix(5, std::vector<uint8_t>(16 * 12));
  std::vector<edge::ImageView> views;
  for (auto& p : pix) {
    for (auto& v : p) v = static_cast<uint8_t>(u(gen));
    edge::ImageView iv;
    iv.data = p.data();
    iv.height = 16;
    iv.width = 12;
    iv.channels = 1;
    views.push_back(iv);
  }
  edge::Results r;
  rt->predict(views.data(), int64_t(views.size()), r);  // 5 images, batches of 3 + 2
  CHECK(r.images.size() == 5 && r.judged == 5);
  for (const auto& im : r.images) {
    CHECK(im.error.empty());
    CHECK_NEAR(im.score, 0.0, 1e-6);              // X^ == X: SSIM 1
    CHECK(im.verdict == edge::Verdict::Accept);   // threshold 1.0
    CHECK_NEAR(im.normalized, 0.0, 1e-6);         // clip((0 - 1) / 2 + 0.5) = 0
    CHECK(im.heatmap_height == 16 && im.heatmap_width == 12);
  }
  for (float v : r.heatmaps) CHECK(v == 0.0f);
  CHECK(r.times.network > 0 && r.times.total >= r.times.network);

  rt_bad->predict(views.data(), int64_t(views.size()), r);
  for (const auto& im : r.images) {
    CHECK(im.score > 0.0f && im.score < 1.0f);
    CHECK((im.verdict == edge::Verdict::Reject) == (im.score >= 1.0f));
  }
  // |X - X/2| = X/2 in the preprocessed space: (x/255 - 0.5)/0.25 halves to ... check one pixel.
  const float x = (pix[0][0] / 255.0f - 0.5f) / 0.25f;
  CHECK_NEAR(r.heatmaps[0], std::fabs(x - 0.5f * x), 1e-5);

  // A bad image among good ones: that one is "review" with a reason, the others are judged.
  std::vector<uint8_t> rgb(16 * 12 * 3, 7);
  std::vector<edge::ImageView> mixed = {views[0], views[1], views[2]};
  mixed[1].data = rgb.data();
  mixed[1].channels = 3;
  mixed[2].data = nullptr;
  rt->predict(mixed.data(), 3, r);
  CHECK(r.images[0].verdict == edge::Verdict::Accept && r.images[0].error.empty());
  CHECK(r.images[1].verdict == edge::Verdict::Review && r.images[1].invalid_input);
  CHECK(r.images[1].error.find("image 1: 3 channels") != std::string::npos);
  CHECK(r.images[2].verdict == edge::Verdict::Review && r.images[2].error.find("null pointer") != std::string::npos);
  CHECK(std::isnan(r.images[1].score) && r.judged == 1);
  CHECK_THROWS(rt->predict(nullptr, 2, r));
  rt->predict(nullptr, 0, r);
  CHECK(r.images.empty());
  fs::remove_all(good_dir);
  fs::remove_all(bad_dir);
}

EDGE_TEST(thread_count_option_is_bounded) {
  const fs::path dir = make_bundle("threads", 1.0f);
  edge::RuntimeOptions o;
  o.threads = 100000;  // would start 100000 kernel threads plus the network's
  std::string message;
  try {
    edge::Runtime::open(dir.string(), o);
  } catch (const edge::ArgumentError& e) {
    message = e.what();
  }
  CHECK(message.rfind("threads: expected 0..", 0) == 0 && message.find("got 100000") != std::string::npos);
  o.threads = edge::max_threads();  // the bound itself is accepted
  o.warmup = 0;
  CHECK(edge::Runtime::open(dir.string(), o) != nullptr);
  fs::remove_all(dir);
}

int main() {
  if (edge::available_backends().empty()) {
    std::printf("SKIP: built without the ONNX Runtime headers\n");
    return 77;
  }
  const char* lib = std::getenv("EDGE_SDK_ONNXRUNTIME_LIB");
  if (!lib || !*lib) {
    std::printf("SKIP: EDGE_SDK_ONNXRUNTIME_LIB not set (no onnxruntime wheel found at configure time)\n");
    return 77;
  }
  return edge_test::run_all();
}
