// The header-only C++ layer (edge_sdk.hpp) built against the installed SDK: RAII, exceptions for
// unusable calls only, cycles that report per-image problems and deadline overruns without
// throwing, buffer reuse, regions, groups and heatmaps, BGR images, class outputs, the run vote and
// the rank-filter images.
//
// usage: test_cpp_api FIXTURES_DIR
#include <edge_sdk/edge_sdk.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

extern "C" {
#include "common.h"
}

namespace {

std::string g_dir;
std::string bundle(const char* name) { return g_dir + "/" + name; }

template <class F>
edge_status thrown_status(F&& f) {
  try {
    f();
  } catch (const edge_sdk::Error& e) {
    return e.status();
  } catch (...) {
    return EDGE_E_INTERNAL;
  }
  return EDGE_OK;
}

std::vector<edge_image> views(const fixture_images& fx, int n) {
  std::vector<edge_image> out;
  for (int i = 0; i < n; ++i) out.push_back(fixture_image(&fx, i));
  return out;
}

// The images' pixels with the channels of each reversed (RGB -> BGR), and views of them.
std::vector<edge_image> reversed(const std::vector<edge_image>& rgb, std::vector<uint8_t>& pixels) {
  size_t total = 0;
  for (const edge_image& im : rgb) total += static_cast<size_t>(im.height) * static_cast<size_t>(im.width) * 3;
  pixels.resize(total);
  std::vector<edge_image> out;
  size_t at = 0;
  for (const edge_image& im : rgb) {
    const size_t px = static_cast<size_t>(im.height) * static_cast<size_t>(im.width);
    const uint8_t* src = static_cast<const uint8_t*>(im.data);
    for (size_t p = 0; p < px; ++p)
      for (size_t c = 0; c < 3; ++c) pixels[at + p * 3 + c] = src[p * 3 + 2 - c];
    out.push_back(edge_sdk::image_u8(pixels.data() + at, im.height, im.width, 3));
    at += px * 3;
  }
  return out;
}

edge_sdk::Options single_thread() {
  edge_sdk::Options o;
  o.threads = 1;
  return o;
}

void test_errors_throw() {
  edge_sdk::check_abi();
  CHECK(thrown_status([] { edge_sdk::Runtime r(bundle("corrupt")); }) == EDGE_E_BUNDLE);
  CHECK(thrown_status([] { edge_sdk::Runtime r(bundle("missing")); }) == EDGE_E_BUNDLE);
  CHECK(thrown_status([] {
          edge_sdk::Options o;
          o.device = "tpu";
          edge_sdk::Runtime r(bundle("plain"), o);
        }) == EDGE_E_INVALID_ARGUMENT);
  try {
    edge_sdk::Runtime r(bundle("corrupt"));
    CHECK(!"corrupt bundle opened");
  } catch (const edge_sdk::Error& e) {
    CHECK(std::strstr(e.what(), "EDGE_E_BUNDLE") && std::strstr(e.what(), ".onnx"));
  }
}

void test_cycle(const fixture_images& fx) {
  edge_sdk::Options o = single_thread();
  o.heatmaps = true;
  edge_sdk::Runtime rt(bundle("plain"), o);
  const edge_input_spec in = rt.input_spec();
  CHECK(in.height == fx.h && in.width == fx.w && in.channels == 3);
  CHECK(rt.output_spec().region_count == 0 && rt.regions().empty());
  const std::string d = rt.describe();
  CHECK(d.find("\"model_type\": \"resganad\"") != std::string::npos);

  const std::vector<edge_image> images = views(fx, 4);
  edge_sdk::Cycle c;
  rt.run(images.data(), images.size(), c, -1, true);
  CHECK(c.ok() && c.size() == 4 && c.judged() == 4 && !c.deadline_exceeded());
  const float* first_map = c.heatmap(0);
  CHECK(first_map != nullptr && c[0].heatmap_height == fx.h && c[0].heatmap_width == fx.w);
  for (size_t i = 0; i < c.size(); ++i) CHECK(c.verdict(i) != edge_sdk::Verdict::Review || c[i].review == EDGE_REVIEW_BAND);
  // The same Cycle again: buffers reused (same addresses), same results.
  const edge_image_result r0 = c[0];
  rt.run(images.data(), images.size(), c, -1, true);
  CHECK(c.heatmap(0) == first_map && same_result(&c[0], &r0));
  // Without heatmaps.
  edge_sdk::Cycle plain = rt.run(images);
  CHECK(plain.ok() && plain.heatmap(0) == nullptr && same_result(&plain[0], &r0));

  // BGR copies, told so, give the RGB images' results and heatmaps.
  std::vector<uint8_t> bgr_pixels;
  const std::vector<edge_image> bgr = reversed(images, bgr_pixels);
  edge_sdk::Cycle from_bgr;
  rt.run(bgr.data(), bgr.size(), from_bgr, -1, true, true, edge_sdk::ColorOrder::BGR);
  rt.run(images.data(), images.size(), c, -1, true);
  CHECK(from_bgr.ok() && from_bgr.size() == c.size());
  for (size_t i = 0; i < c.size(); ++i) {
    CHECK(same_result(&from_bgr[i], &c[i]));
    CHECK(std::memcmp(from_bgr.heatmap(i), c.heatmap(i), sizeof(float) * static_cast<size_t>(fx.h * fx.w)) == 0);
  }
  CHECK(same_result(&rt.run(bgr, -1, false, edge_sdk::ColorOrder::BGR)[0], &r0));

  // A bad image does not throw: the cycle reports it and the image is review.
  std::vector<edge_image> bad = images;
  bad[1].channels = 4;
  rt.run(bad.data(), bad.size(), c);
  CHECK(c.status() == EDGE_E_IMAGE && c.verdict(1) == edge_sdk::Verdict::Review && c[1].status == EDGE_E_IMAGE);
  CHECK(c.message().find("image 1") != std::string::npos && c.judged() == 3);
  CHECK(same_result(&c[0], &r0));
  // An unusable call throws, and still leaves review behind.
  CHECK(thrown_status([&] { rt.run(nullptr, 3, c); }) == EDGE_E_INVALID_ARGUMENT);
  for (size_t i = 0; i < 3; ++i) CHECK(c.verdict(i) == edge_sdk::Verdict::Review);

  // Move: the moved-to runtime works, the moved-from one is closed.
  edge_sdk::Runtime moved = std::move(rt);
  CHECK(moved.run(images).ok());
  CHECK(thrown_status([&] { rt.run(images); }) == EDGE_E_INVALID_HANDLE);
  moved.close();
  CHECK(thrown_status([&] { moved.run(images); }) == EDGE_E_INVALID_HANDLE);
  moved.close();  // closing twice is harmless
}

void test_regions(const fixture_images& frames) {
  edge_sdk::Runtime rt(bundle("regions"), single_thread());
  const std::vector<edge_sdk::Region> regions = rt.regions();
  CHECK(regions.size() == 3 && regions[0].name == "left" && regions[2].name == "right" && regions[1].x == 40);
  edge_sdk::Cycle c;
  const std::vector<edge_image> images = views(frames, frames.n);
  rt.run(images.data(), images.size(), c);
  CHECK(c.ok() && c.region_count() == 3);
  for (size_t i = 0; i < c.size(); ++i) {
    bool reject = false;
    for (size_t k = 0; k < 3; ++k) reject |= c.region(i, k).verdict == EDGE_VERDICT_REJECT;
    CHECK((c.verdict(i) == edge_sdk::Verdict::Reject) == reject);
  }
  CHECK(thrown_status([&] { (void)c.region(0, 3); }) == EDGE_E_INTERNAL);  // std::out_of_range
  // BGR frames: the regions are cut from the frame as it is, then read in BGR order.
  std::vector<uint8_t> bgr_pixels;
  const std::vector<edge_image> bgr = reversed(images, bgr_pixels);
  edge_sdk::Cycle from_bgr;
  rt.run(bgr.data(), bgr.size(), from_bgr, -1, false, true, edge_sdk::ColorOrder::BGR);
  CHECK(from_bgr.ok());
  for (size_t i = 0; i < c.size(); ++i) {
    CHECK(same_result(&from_bgr[i], &c[i]));
    for (size_t k = 0; k < 3; ++k) CHECK(std::memcmp(&from_bgr.region(i, k), &c.region(i, k), sizeof(edge_region_result)) == 0);
  }
}

void test_deadline(const fixture_images& slow) {
  edge_sdk::Options o = single_thread();
  o.deadline_ms = 1.0;  // the runtime's default budget
  edge_sdk::Runtime rt(bundle("slow"), o);
  CHECK(rt.output_spec().deadline_ms == 1.0);
  const std::vector<edge_image> images = views(slow, slow.n);
  edge_sdk::Cycle c;
  rt.run(images.data(), images.size(), c);  // default deadline: overrun, no exception
  CHECK(c.status() == EDGE_E_DEADLINE && c.deadline_exceeded() && c.not_judged() >= 1);
  for (size_t i = 0; i < c.size(); ++i) CHECK(c[i].status == EDGE_OK || c.verdict(i) == edge_sdk::Verdict::Review);
  rt.run(images.data(), images.size(), c, 0);  // no deadline for this cycle
  CHECK(c.ok() && c.judged() == images.size());
}

void test_groups(const fixture_images& frames) {
  edge_sdk::Runtime rt(bundle("regions"), single_thread());
  const std::vector<std::string> groups = rt.groups();
  CHECK(groups.size() == 2 && groups[0] == "a" && groups[1] == "b");
  const std::vector<edge_sdk::Region> regions = rt.regions();
  CHECK(regions[0].group == 0 && regions[1].group == 0 && regions[2].group == 1);
  const std::vector<edge_image> images = views(frames, frames.n);
  edge_sdk::Cycle c;
  rt.run(images.data(), images.size(), c);
  CHECK(c.ok() && c.group_count() == 2);
  for (size_t i = 0; i < c.size(); ++i) {
    // a group's result: its regions' largest normalized score and the product rule over them
    const edge_region_result& l = c.region(i, 0);
    const edge_region_result& m = c.region(i, 1);
    const edge_region_result& best = m.normalized > l.normalized ? m : l;
    const int want = (l.verdict == EDGE_VERDICT_REJECT || m.verdict == EDGE_VERDICT_REJECT) ? EDGE_VERDICT_REJECT
                     : (l.verdict == EDGE_VERDICT_ACCEPT && m.verdict == EDGE_VERDICT_ACCEPT) ? EDGE_VERDICT_ACCEPT
                                                                                               : EDGE_VERDICT_REVIEW;
    CHECK(c.group(i, 0).normalized == best.normalized && c.group(i, 0).score == best.score && c.group(i, 0).verdict == want);
    CHECK(c.group(i, 1).normalized == c.region(i, 2).normalized && c.group(i, 1).score == c.region(i, 2).score &&
          c.group(i, 1).verdict == c.region(i, 2).verdict);
  }
  CHECK(thrown_status([&] { (void)c.group(0, 2); }) == EDGE_E_INTERNAL);  // std::out_of_range
  rt.run(images.data(), images.size(), c, -1, false, false);  // regions not wanted: no groups either
  CHECK(c.ok() && c.group_count() == 0);
}

void test_classes(const fixture_images& fx) {
  edge_sdk::Runtime rt(bundle("classifier"), single_thread());
  const edge_sdk::Classes k = rt.classes();
  CHECK(k.names.size() == 3 && k.names[0] == "good" && k.names[2] == "spot" && k.good_class == 0);
  const std::vector<edge_image> images = views(fx, fx.n);
  edge_sdk::Cycle c;
  rt.run(images.data(), images.size(), c);
  CHECK(c.ok() && c.class_count() == 3);
  // the same as the C entry point, image for image
  std::vector<edge_image_result> res(images.size());
  std::vector<float> probs(images.size() * 3);
  std::vector<int32_t> top(images.size());
  edge_batch_outputs o;
  edge_batch_outputs_init(&o);
  o.results = res.data();
  o.results_capacity = res.size();
  edge_class_outputs co;
  edge_class_outputs_init(&co);
  co.probabilities = probs.data();
  co.probabilities_capacity = probs.size();
  co.top_class = top.data();
  co.top_class_capacity = top.size();
  CHECK(edge_run_classes(rt.handle(), images.data(), images.size(), nullptr, &o, &co) == EDGE_OK);
  for (size_t i = 0; i < images.size(); ++i) {
    CHECK(same_result(&c[i], &res[i]) && c.top_class(i) == top[i]);
    CHECK(std::memcmp(c.probabilities(i), &probs[i * 3], 3 * sizeof(float)) == 0);
    float sum = 0;
    for (int j = 0; j < 3; ++j) sum += c.probabilities(i)[j];
    CHECK(std::fabs(sum - 1.0f) < 1e-4f);
  }
  // a bundle that is not a classifier has no classes and no class outputs
  edge_sdk::Runtime plain(bundle("plain"), single_thread());
  CHECK(plain.classes().names.empty());
  edge_sdk::Cycle pc = plain.run(images);
  CHECK(pc.class_count() == 0 && pc.top_class(0) == -1 && pc.probabilities(0) == nullptr);
}

void test_run_vote(const fixture_images& fx) {
  edge_sdk::Runtime rt(bundle("plain"), single_thread());
  CHECK(rt.run_vote_rule() == std::make_pair(7, 10));
  edge_sdk::RunStatus st;
  for (int i = 0; i < 10; ++i) {
    st = rt.run_vote("strip 1", i, i < 7 ? edge_sdk::Verdict::Reject : edge_sdk::Verdict::Accept);
    CHECK(st.decided == (i == 9));
  }
  CHECK(st.verdict == edge_sdk::Verdict::Reject && st.rejects == 7 && st.accepts == 3);
  // the verdicts of real cycles
  const std::vector<edge_image> one = views(fx, 1);
  for (int i = 0; i < 10; ++i) st = rt.run_vote("strip 2", i, rt.run(one).verdict(0));
  CHECK(st.decided && st.verdict == rt.run(one).verdict(0));
  // closed early: review, never accept
  for (int i = 0; i < 9; ++i) rt.run_vote("strip 3", i, edge_sdk::Verdict::Accept);
  st = rt.run_vote_close("strip 3");
  CHECK(st.decided && st.verdict == edge_sdk::Verdict::Review && st.missing == 1);
  CHECK(thrown_status([&] { rt.run_vote_close("strip 3"); }) == EDGE_E_INVALID_ARGUMENT);
  CHECK(thrown_status([&] { rt.run_vote("strip 4", 10, edge_sdk::Verdict::Accept); }) == EDGE_E_INVALID_ARGUMENT);
}

void test_run_acquisition(const fixture_images& fx) {
  edge_sdk::Options o = single_thread();
  o.heatmaps = true;
  edge_sdk::Runtime rt(bundle("acquisition"), o);
  CHECK(rt.input_spec().acquisition_frames == 3);
  const std::vector<edge_image> frames = views(fx, 3);
  std::vector<uint8_t> lo, hi;
  edge_sdk::frame_extremes(frames, lo, hi);
  std::vector<edge_image> all = frames;
  all.push_back(edge_sdk::image_u8(lo.data(), fx.h, fx.w, fx.c));
  all.push_back(edge_sdk::image_u8(hi.data(), fx.h, fx.w, fx.c));
  edge_sdk::Cycle want, got;
  rt.run(all.data(), all.size(), want, -1, true);
  rt.run_acquisition(frames.data(), frames.size(), got, -1, true);
  CHECK(got.ok() && got.size() == 5);
  for (size_t i = 0; i < 5; ++i) {
    CHECK(same_result(&got[i], &want[i]));
    CHECK(std::memcmp(got.heatmap(i), want.heatmap(i), sizeof(float) * static_cast<size_t>(fx.h * fx.w)) == 0);
  }
  CHECK(thrown_status([&] { rt.run_acquisition(frames.data(), 2, got); }) == EDGE_E_INVALID_ARGUMENT);
  for (size_t i = 0; i < got.size(); ++i) CHECK(got.verdict(i) == edge_sdk::Verdict::Review);
}

void test_frame_extremes() {
  // three 2 x 3 x 1 frames, the middle one a strided view (row stride 5)
  const uint8_t a[6] = {1, 9, 3, 4, 5, 6};
  const uint8_t b[10] = {7, 2, 8, 0, 0, 1, 1, 1, 0, 0};
  const uint8_t c[6] = {4, 4, 4, 9, 0, 2};
  const std::vector<edge_image> frames = {edge_sdk::image_u8(a, 2, 3, 1), edge_sdk::image_u8(b, 2, 3, 1, 5),
                                          edge_sdk::image_u8(c, 2, 3, 1)};
  std::vector<uint8_t> lo, hi;
  edge_sdk::frame_extremes(frames, lo, hi);
  CHECK((lo == std::vector<uint8_t>{1, 2, 3, 1, 0, 1} && hi == std::vector<uint8_t>{7, 9, 8, 9, 5, 6}));
  std::vector<edge_image> bad = frames;
  bad[2].width = 2;
  CHECK(thrown_status([&] { edge_sdk::frame_extremes(bad, lo, hi); }) == EDGE_E_IMAGE);
  CHECK(std::string(edge_sdk::version()).size() > 0);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s FIXTURES_DIR\n", argv[0]);
    return 2;
  }
  g_dir = argv[1];
  fixture_images plain, frames, slow;
  if (!read_fixture(argv[1], "plain_images", &plain) || !read_fixture(argv[1], "frames", &frames) ||
      !read_fixture(argv[1], "slow_images", &slow))
    return 2;
  try {
    test_errors_throw();
    test_cycle(plain);
    test_regions(frames);
    test_deadline(slow);
    test_groups(frames);
    test_classes(plain);
    test_run_vote(plain);
    test_frame_extremes();
    test_run_acquisition(plain);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unexpected exception: %s\n", e.what());
    ++g_failures;
  }
  std::free(plain.data);
  std::free(frames.data);
  std::free(slow.data);
  std::printf("%s: %d failure(s)\n", argv[0], g_failures);
  return g_failures ? 1 : 0;
}
