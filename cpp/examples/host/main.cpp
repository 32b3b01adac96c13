// edge_host: an example inspection host built against the installed edge-sdk (C ABI + C++ wrapper).
//
// It simulates a machine cycle: a camera trigger at a fixed rate delivers the next frame (frames
// are read from a folder once, as a camera would hand over buffers), the runtime judges the units
// of the frame (the bundle's regions, cut by the runtime exactly as in training; or the whole
// frame, optionally an ROI of it passed without copying), and the host drives a reject output per
// unit. Fail-safe rule: only "accept" lets a unit pass; "reject", "review" (could not judge, too
// close to call, deadline) and any missed cycle divert it. See README.md.
//
// usage: edge_host --bundle DIR --frames DIR [--rate HZ] [--cycles N] [--deadline-ms MS]
//                  [--threads N] [--device cpu|cuda:N] [--max-batch N] [--roi X,Y,W,H] [--quiet]
#include <edge_sdk/edge_sdk.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string bundle, frames, device = "cpu";
  double rate_hz = 10.0, deadline_ms = 500.0;
  int cycles = 0, threads = 0, max_batch = 0;
  bool quiet = false, has_roi = false;
  int roi[4] = {0, 0, 0, 0};
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "edge_host: %s\nusage: edge_host --bundle DIR --frames DIR [--rate HZ] [--cycles N] "
               "[--deadline-ms MS] [--threads N] [--device cpu|cuda:N] [--max-batch N] [--roi X,Y,W,H] [--quiet]\n",
               why);
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value after " + k).c_str());
      return argv[++i];
    };
    if (k == "--bundle") a.bundle = value();
    else if (k == "--frames") a.frames = value();
    else if (k == "--rate") a.rate_hz = std::atof(value().c_str());
    else if (k == "--cycles") a.cycles = std::atoi(value().c_str());
    else if (k == "--deadline-ms") a.deadline_ms = std::atof(value().c_str());
    else if (k == "--threads") a.threads = std::atoi(value().c_str());
    else if (k == "--device") a.device = value();
    else if (k == "--max-batch") a.max_batch = std::atoi(value().c_str());
    else if (k == "--quiet") a.quiet = true;
    else if (k == "--roi") {
      const std::string v = value();
      if (std::sscanf(v.c_str(), "%d,%d,%d,%d", &a.roi[0], &a.roi[1], &a.roi[2], &a.roi[3]) != 4) usage("--roi: expected X,Y,W,H");
      a.has_roi = true;
    } else usage(("unknown option " + k).c_str());
  }
  if (a.bundle.empty() || a.frames.empty()) usage("--bundle and --frames are required");
  if (!(a.rate_hz > 0)) usage("--rate: expected > 0");
  if (a.deadline_ms < 0) usage("--deadline-ms: expected >= 0 (0 = none)");
  return a;
}

// A frame as the camera driver would deliver it: 8-bit, HWC, RGB or gray.
struct Frame {
  std::string name;
  int height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;
};

// Binary PGM (P5) / PPM (P6), maxval 255. (Convert other formats beforehand, e.g. with Pillow:
// Image.open(p).convert("RGB").save(q.with_suffix(".ppm")).)
Frame read_pnm(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(path + ": cannot open");
  std::string magic;
  f >> magic;
  if (magic != "P5" && magic != "P6") throw std::runtime_error(path + ": not a binary PGM/PPM (P5/P6)");
  int v[3];
  for (int& x : v) {
    f >> std::ws;
    while (f.peek() == '#') {
      std::string comment;
      std::getline(f, comment);
      f >> std::ws;
    }
    f >> x;
  }
  if (!f || v[0] < 1 || v[1] < 1 || v[2] != 255) throw std::runtime_error(path + ": unsupported header (need maxval 255)");
  f.get();  // the single whitespace after the header
  Frame fr;
  fr.width = v[0];
  fr.height = v[1];
  fr.channels = magic == "P6" ? 3 : 1;
  fr.pixels.resize(static_cast<size_t>(fr.width) * fr.height * fr.channels);
  f.read(reinterpret_cast<char*>(fr.pixels.data()), static_cast<std::streamsize>(fr.pixels.size()));
  if (!f) throw std::runtime_error(path + ": truncated pixel data");
  return fr;
}

std::vector<Frame> load_frames(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string n = e->d_name;
      if (n.size() > 4 && (n.compare(n.size() - 4, 4, ".ppm") == 0 || n.compare(n.size() - 4, 4, ".pgm") == 0)) names.push_back(n);
    }
    closedir(d);
  } else {
    throw std::runtime_error(dir + ": cannot open the frames folder");
  }
  std::sort(names.begin(), names.end());
  if (names.empty()) throw std::runtime_error(dir + ": no .ppm/.pgm frames");
  std::vector<Frame> frames;
  for (const auto& n : names) {
    frames.push_back(read_pnm(dir + "/" + n));
    frames.back().name = n;
  }
  return frames;
}

// The reject actuator of one unit. A real host writes a digital output / PLC tag here; the
// example logs. `divert` is true for every verdict except accept.
void set_reject_output(size_t unit, bool divert) { (void)unit, (void)divert; }

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const double pos = p / 100.0 * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  try {
    edge_sdk::Options opt;
    opt.device = args.device;
    opt.threads = args.threads;
    opt.max_batch = args.max_batch;
    opt.deadline_ms = args.deadline_ms;
    edge_sdk::Runtime rt(args.bundle, opt);
    const edge_output_spec& out = rt.output_spec();
    const std::vector<edge_sdk::Region> regions = rt.regions();
    std::printf("runtime: %s\n", rt.describe().c_str());
    std::printf("edge-sdk %s (C ABI %u.%u), deadline %.1f ms, trigger %.1f Hz\n", edge_sdk_version(), edge_abi_version() >> 16,
                edge_abi_version() & 0xffffu, args.deadline_ms, args.rate_hz);

    std::vector<Frame> frames = load_frames(args.frames);
    std::printf("%zu frame(s) from %s\n", frames.size(), args.frames.c_str());

    // The units of a frame: the bundle's regions (the runtime cuts them), or the frame itself.
    std::vector<std::string> unit_names;
    for (const auto& r : regions) unit_names.push_back(r.name);
    if (unit_names.empty()) unit_names.push_back("part");
    if (!regions.empty()) {
      std::printf("regions (cut by the runtime from %dx%d frames):", out.frame_width, out.frame_height);
      for (const auto& r : regions) std::printf(" %s=[x %d, y %d, %dx%d]", r.name.c_str(), r.x, r.y, r.width, r.height);
      std::printf("\n");
    }

    const auto period = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / args.rate_hz));
    const int cycles = args.cycles > 0 ? args.cycles : static_cast<int>(frames.size());
    std::vector<double> latency;
    latency.reserve(static_cast<size_t>(cycles));
    size_t n_accept = 0, n_reject = 0, n_review = 0, deadline_overruns = 0, trigger_overruns = 0, missed = 0, failed_cycles = 0;
    edge_sdk::Cycle cycle;  // reused: no allocation per cycle after the first
    Clock::time_point trigger = Clock::now();

    for (int c = 0; c < cycles; ++c) {
      std::this_thread::sleep_until(trigger);
      const Frame& fr = frames[static_cast<size_t>(c) % frames.size()];
      edge_image image = edge_sdk::image_u8(fr.pixels.data(), fr.height, fr.width, fr.channels);
      if (args.has_roi) {
        // An ROI of the camera frame, passed as a view: no copy, the frame's row stride.
        const int x = std::clamp(args.roi[0], 0, fr.width - 1), y = std::clamp(args.roi[1], 0, fr.height - 1);
        image = edge_sdk::image_u8(fr.pixels.data() + (static_cast<size_t>(y) * fr.width + x) * fr.channels,
                                   std::min(args.roi[3], fr.height - y), std::min(args.roi[2], fr.width - x), fr.channels,
                                   static_cast<int64_t>(fr.width) * fr.channels);
      }
      const Clock::time_point t0 = Clock::now();
      edge_status status;
      try {
        rt.run(&image, 1, cycle);
        status = cycle.status();
      } catch (const edge_sdk::Error& e) {
        // The call itself failed: nothing was judged. Every unit is diverted.
        status = e.status();
        std::fprintf(stderr, "cycle %d: %s\n", c, e.what());
      }
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      latency.push_back(ms);
      deadline_overruns += cycle.deadline_exceeded();
      failed_cycles += status != EDGE_OK && status != EDGE_E_DEADLINE;

      // Per-unit decisions. Only an explicit accept passes.
      std::string line;
      for (size_t u = 0; u < unit_names.size(); ++u) {
        int verdict = EDGE_VERDICT_REVIEW;
        if (cycle.size() == 1 && (status == EDGE_OK || status == EDGE_E_DEADLINE || status == EDGE_E_IMAGE ||
                                  status == EDGE_E_NUMERIC || status == EDGE_E_BACKEND))
          verdict = regions.empty() ? cycle[0].verdict : cycle.region(0, u).verdict;
        set_reject_output(u, verdict != EDGE_VERDICT_ACCEPT);
        n_accept += verdict == EDGE_VERDICT_ACCEPT;
        n_reject += verdict == EDGE_VERDICT_REJECT;
        n_review += verdict == EDGE_VERDICT_REVIEW;
        line += " " + unit_names[u] + "=" + (verdict == EDGE_VERDICT_ACCEPT ? "accept" : verdict == EDGE_VERDICT_REJECT ? "REJECT" : "REVIEW");
      }
      if (!args.quiet)
        std::printf("cycle %4d %-16s%s | %.2f ms%s%s\n", c, fr.name.c_str(), line.c_str(), ms,
                    cycle.deadline_exceeded() ? " DEADLINE" : "", status != EDGE_OK && !cycle.deadline_exceeded() ? " ERROR" : "");
      if (status != EDGE_OK && !args.quiet) std::printf("           %s\n", cycle.message().c_str());

      // The next trigger. Finishing after it means the machine moved on: the parts of every
      // trigger that passed meanwhile were not inspected and must be diverted.
      trigger += period;
      const Clock::time_point now = Clock::now();
      if (now > trigger) {
        ++trigger_overruns;
        while (now > trigger + period) {
          trigger += period;
          ++missed;
        }
      }
    }

    std::printf("\nsummary: %d cycles at %.1f Hz (period %.1f ms), %zu unit(s) a frame\n", cycles, args.rate_hz,
                1000.0 / args.rate_hz, unit_names.size());
    std::printf("latency ms: p50 %.2f  p99 %.2f  max %.2f\n", percentile(latency, 50), percentile(latency, 99),
                latency.empty() ? 0.0 : *std::max_element(latency.begin(), latency.end()));
    std::printf("overruns: %zu deadline (%.1f ms), %zu trigger period, %zu trigger(s) missed (diverted)\n", deadline_overruns,
                args.deadline_ms, trigger_overruns, missed);
    std::printf("verdicts: %zu accept, %zu reject, %zu review (diverted: %zu)\n", n_accept, n_reject, n_review, n_reject + n_review);
    std::printf("cycles with errors: %zu\n", failed_cycles);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "edge_host: %s\n", e.what());
    return 1;
  }
}
