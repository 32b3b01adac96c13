// edge_opencv_host: an inspection host that gets its images from OpenCV and judges them with the
// installed edge-sdk (C ABI + C++ wrapper).
//
// Images come from cv::imread (--image, repeatable) or cv::VideoCapture (--video: a video file, an
// image sequence such as "img_%03d.png", a camera index, a stream URL). Each cv::Mat is handed to
// the runtime as it is: a view of its pixels (data pointer and row step, so a Mat that is an ROI
// of a larger one works too; no copy) in OpenCV's BGR order, which the runtime reads in place
// (edge_sdk::ColorOrder::BGR: the results of the same image in RGB order, no conversion pass).
// Fail-safe rule, as in cpp/examples/host: only "accept" passes; reject, review and anything not
// judged divert the part.
//
// usage: edge_opencv_host --bundle DIR (--image PATH ... | --video SOURCE) [--max-frames N]
//                         [--deadline-ms MS] [--threads N] [--device cpu|cuda:N] [--overlay DIR]
#include <edge_sdk/edge_sdk.hpp>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
constexpr long kMaxFrames = 1000000000L;

struct Args {
  std::string bundle, video, device = "cpu", overlay;
  std::vector<std::string> images;
  long max_frames = 0;  // 0: to the end of the stream
  double deadline_ms = 0;
  int threads = 0;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "edge_opencv_host: %s\nusage: edge_opencv_host --bundle DIR (--image PATH ... | --video SOURCE) "
               "[--max-frames N] [--deadline-ms MS] [--threads N] [--device cpu|cuda:N] [--overlay DIR]\n",
               why.c_str());
  std::exit(2);
}

// A whole number in [lo, hi], or usage() naming the option.
long bounded(const std::string& option, const std::string& text, long lo, long hi) {
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v < lo || v > hi)
    usage(option + ": expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi) + ", got '" + text + "'");
  return v;
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage("missing value after " + k);
      return argv[++i];
    };
    if (k == "--bundle") a.bundle = value();
    else if (k == "--image") a.images.push_back(value());
    else if (k == "--video") a.video = value();
    else if (k == "--max-frames") a.max_frames = bounded(k, value(), 1, kMaxFrames);
    else if (k == "--deadline-ms") a.deadline_ms = static_cast<double>(bounded(k, value(), 0, 3600000));
    else if (k == "--threads") a.threads = static_cast<int>(bounded(k, value(), 0, 256));
    else if (k == "--device") a.device = value();
    else if (k == "--overlay") a.overlay = value();
    else usage("unknown option " + k);
  }
  if (a.bundle.empty()) usage("--bundle is required");
  if (a.images.empty() == a.video.empty()) usage("give either --image (one or more) or --video");
  return a;
}

// The frames of the run, one at a time: the --image files in order, or the capture's frames. An
// image that cannot be read is an empty Mat with the reason (the part is diverted, the run goes on).
class Frames {
 public:
  Frames(const Args& a, bool gray) : images_(a.images), gray_(gray) {
    if (a.video.empty()) return;
    const std::string& v = a.video;
    const bool index = !v.empty() && v.size() < 4 && std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (index ? !cap_.open(std::atoi(v.c_str())) : !cap_.open(v))
      throw std::runtime_error(v + ": cv::VideoCapture cannot open it");
    name_ = v.substr(v.find_last_of('/') + 1);
    const double count = cap_.get(cv::CAP_PROP_FRAME_COUNT);
    frame_count_ = count > 0 && count < 1e12 ? static_cast<long>(count) : 0;
  }

  // false at the end of the stream.
  bool next(cv::Mat& frame, std::string& name, std::string& problem) {
    problem.clear();
    if (!cap_.isOpened()) {
      if (index_ >= images_.size()) return false;
      const std::string& path = images_[index_++];
      name = path.substr(path.find_last_of('/') + 1);
      frame = cv::imread(path, gray_ ? cv::IMREAD_GRAYSCALE : cv::IMREAD_COLOR);
      if (frame.empty()) problem = "cv::imread could not read it";
      return true;
    }
    name = name_ + "#" + std::to_string(index_);
    if (!cap_.read(frame) || frame.empty()) {
      // A file with no frame left has ended; before its frame count a failed read is a lost frame.
      if (frame_count_ == 0 || static_cast<long>(index_) >= frame_count_) return false;
      problem = "cv::VideoCapture returned no frame";
      frame.release();
    } else if (frame.depth() != CV_8U) {
      problem = "not an 8-bit frame";
      frame.release();
    } else if (gray_ && frame.channels() == 3) {
      cv::cvtColor(frame, frame, cv::COLOR_BGR2GRAY);
    }
    ++index_;
    return true;
  }

 private:
  std::vector<std::string> images_;
  bool gray_;
  cv::VideoCapture cap_;
  std::string name_;
  long frame_count_ = 0;
  size_t index_ = 0;
};

// The frame with its heatmap (min-max scaled, jet colours) blended over it and the verdict written
// on it, saved as DIR/NAME_overlay.png under a temporary name first (a reader never sees half a file).
void write_overlay(const std::string& dir, const std::string& name, const cv::Mat& frame, const float* heat,
                   const std::string& caption) {
  cv::Mat raw(frame.rows, frame.cols, CV_32F, const_cast<float*>(heat)), scaled, colours, bgr, out;
  cv::normalize(raw, scaled, 0, 255, cv::NORM_MINMAX, CV_8U);
  cv::applyColorMap(scaled, colours, cv::COLORMAP_JET);
  if (frame.channels() == 1) cv::cvtColor(frame, bgr, cv::COLOR_GRAY2BGR);
  else bgr = frame;
  cv::addWeighted(bgr, 0.5, colours, 0.5, 0.0, out);
  cv::putText(out, caption, cv::Point(2, 12), cv::FONT_HERSHEY_PLAIN, 0.8, cv::Scalar(255, 255, 255), 1);
  std::string stem = name.substr(0, name.find_last_of('.'));
  std::replace(stem.begin(), stem.end(), '#', '_');
  const std::string path = dir + "/" + stem + "_overlay.png", tmp = dir + "/." + stem + "_overlay.tmp.png";
  if (!cv::imwrite(tmp, out) || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error(path + ": cannot write the overlay");
  }
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(std::lround(p / 100.0 * static_cast<double>(v.size() - 1)))];
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  try {
    edge_sdk::Options opt;
    opt.device = args.device;
    opt.threads = args.threads;
    opt.deadline_ms = args.deadline_ms;
    opt.heatmaps = !args.overlay.empty();
    edge_sdk::Runtime rt(args.bundle, opt);
    const bool gray = rt.input_spec().channels == 1;
    std::printf("runtime: %s\nOpenCV %s, frames %s\n", rt.describe().c_str(), CV_VERSION, gray ? "gray" : "BGR");

    if (!args.overlay.empty()) std::filesystem::create_directories(args.overlay);
    Frames frames(args, gray);
    edge_sdk::Cycle cycle;  // reused: no allocation per frame after the first
    cv::Mat frame;
    std::string name, problem;
    size_t counts[3] = {0, 0, 0};  // by edge_verdict
    std::vector<double> latency;
    long n = 0;
    for (; (args.max_frames == 0 || n < args.max_frames) && frames.next(frame, name, problem); ++n) {
      if (!problem.empty()) {
        ++counts[EDGE_VERDICT_REVIEW];
        std::printf("frame %ld %s review score nan normalized nan latency - ms (%s)\n", n, name.c_str(), problem.c_str());
        continue;
      }
      // The Mat itself: its pixels and row step, BGR as OpenCV keeps them.
      const edge_image view = edge_sdk::image_u8(frame.ptr<uint8_t>(), frame.rows, frame.cols, frame.channels(),
                                                 static_cast<int64_t>(frame.step));
      const Clock::time_point t0 = Clock::now();
      rt.run(&view, 1, cycle, -1, opt.heatmaps, true, edge_sdk::ColorOrder::BGR);
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      latency.push_back(ms);
      const edge_image_result& r = cycle[0];
      const int verdict = r.verdict == EDGE_VERDICT_ACCEPT || r.verdict == EDGE_VERDICT_REJECT ? r.verdict : EDGE_VERDICT_REVIEW;
      ++counts[verdict];
      const std::string why = cycle.ok() ? "" : " (" + cycle.message() + ")";
      std::printf("frame %ld %s %s score %.9g normalized %.9g latency %.2f ms%s\n", n, name.c_str(),
                  edge_verdict_name(verdict), r.score, r.normalized, ms, why.c_str());
      if (!args.overlay.empty() && cycle.heatmap(0) != nullptr)
        write_overlay(args.overlay, name, frame, cycle.heatmap(0),
                      std::string(edge_verdict_name(verdict)) + " " + std::to_string(r.score));
    }
    std::printf("summary: %ld frame(s): %zu accept, %zu reject, %zu review (diverted: %zu); latency ms p50 %.2f p99 %.2f\n", n,
                counts[EDGE_VERDICT_ACCEPT], counts[EDGE_VERDICT_REJECT], counts[EDGE_VERDICT_REVIEW],
                counts[EDGE_VERDICT_REJECT] + counts[EDGE_VERDICT_REVIEW], percentile(latency, 50), percentile(latency, 99));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "edge_opencv_host: %s\n", e.what());
    return 1;
  }
}
