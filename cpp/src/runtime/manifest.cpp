#include "edge_sdk/runtime/manifest.hpp"
#include "edge_sdk/runtime/run_vote.hpp"

#include <cfloat>
#include <cmath>
#include <cstdio>
#include <set>

#include "edge_sdk/kernels/heatmap.hpp"
#include "edge_sdk/kernels/rank.hpp"
#include "edge_sdk/runtime/fields.hpp"
#include "edge_sdk/runtime/signature.hpp"

namespace edge {

const TensorSpec* NetworkSpec::find_output(const std::string& n) const {
  for (const auto& o : outputs)
    if (o.name == n) return &o;
  return nullptr;
}

bool InputSpec::accepts(const std::string& dtype) const {
  for (const auto& d : dtypes)
    if (d == dtype) return true;
  return false;
}

const NetworkSpec* Manifest::network(const std::string& name, const std::string& precision) const {
  for (const auto& n : networks)
    if (n.name == name && n.precision == precision) return &n;
  return nullptr;
}

std::vector<std::string> Manifest::precisions() const {
  std::vector<std::string> out;
  if (networks.empty()) return out;
  for (const auto& n : networks)
    if (n.name == networks.front().name) out.push_back(n.precision);
  return out;
}

namespace {

bool plain_file_name(const std::string& f) {
  // signature.json signs the manifest, so it can never be one of the files the manifest pins.
  if (f.empty() || f == "." || f == ".." || f == kManifestFile || f == kSignatureFile) return false;
  for (char c : f)
    if (c == '/' || c == '\\' || c == '\0') return false;
  return true;
}

std::string require_file_name(const Fields& f, const std::string& key) {
  const std::string s = f.str(key);
  if (!plain_file_name(s)) f.fail(key, "expected a plain file name inside the bundle, got \"" + s + "\"");
  return s;
}

TensorSpec parse_tensor(const Fields& f) {
  TensorSpec t;
  t.name = f.str("name");
  if (t.name.empty()) f.fail("name", "must not be empty");
  t.shape = f.integers("shape");
  if (t.shape.empty()) f.fail("shape", "must have at least one dimension");
  for (size_t i = 0; i < t.shape.size(); ++i) {
    if (i == 0 && t.shape[i] != -1) f.fail("shape", "the first (batch) dimension must be -1 (dynamic)");
    if (i > 0 && t.shape[i] < 1) f.fail("shape", "dimensions after the batch axis must be >= 1");
  }
  t.dtype = f.one_of("dtype", {"float32"});
  t.meaning = f.str("meaning", "");
  return t;
}

std::vector<TensorSpec> parse_tensors(const Fields& net, const std::string& key) {
  std::vector<TensorSpec> out;
  std::set<std::string> names;
  const auto& arr = net.array(key);
  if (arr.empty()) net.fail(key, "must list at least one tensor");
  for (size_t i = 0; i < arr.size(); ++i) {
    Fields t(arr[i], net.source(), net.field(key) + "[" + std::to_string(i) + "]");
    out.push_back(parse_tensor(t));
    if (!names.insert(out.back().name).second) net.fail(key, "duplicate tensor name \"" + out.back().name + "\"");
  }
  return out;
}

// The runtime computes in float32: a number that is not finite there (1e39), or a nonzero one that
// becomes 0 or loses its precision as a subnormal (1e-46), means something else when it is used.
bool float32_representable(double d) {
  const double a = std::fabs(d);
  return std::isfinite(d) && (a == 0.0 || (a >= FLT_MIN && a <= FLT_MAX));
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

double float32_number(const Fields& f, const std::string& key) {
  const double d = f.number(key);
  if (!float32_representable(d)) f.fail(key, "must be a finite float32 number (|x| <= 3.4e38, 0 or >= 1.2e-38), got " + num(d));
  return d;
}

double number_in(const Fields& f, const std::string& key, double lo, double hi, const std::string& why) {
  const double d = f.number(key);
  if (!(d >= lo && d <= hi)) f.fail(key, "expected a number in [" + num(lo) + ", " + num(hi) + "] (" + why + "), got " + num(d));
  return d;
}

// Blur sigmas: 0 disables the blur; below kMinBlurSigma the Gaussian's taps underflow (1e-300
// gave an all-NaN map with an accept verdict) while any sigma below 0.125 already blurs nothing
// (radius 0); the upper bound is the blur kernel's own (its radius cap).
constexpr double kMinBlurSigma = 1e-3;
void check_blur_sigma(const Fields& pp, const std::string& key) {
  if (!pp.has(key)) return;
  const double s = pp.number(key);
  if (s == 0.0) return;
  if (!(s >= kMinBlurSigma)) pp.fail(key, "expected 0 (no blur) or a number >= " + num(kMinBlurSigma) + ", got " + num(s));
  try {
    gaussian_radius(s);
  } catch (const ArgumentError& e) {
    pp.fail(key, e.what());
  }
}

// Every number of the kind-specific postprocess section: finite float32, integers within int32
// (counts, sizes, window), before any kind reads them.
void check_numbers(const json::Value& v, const std::string& source, const std::string& path) {
  if (v.is_number()) {
    if (v.is_integer() ? (v.as_int() < -2147483647 || v.as_int() > 2147483647) : !float32_representable(v.as_double()))
      throw BundleError(source + ": " + path + ": " +
                        (v.is_integer() ? "integer beyond the 32-bit range, got " + std::to_string(v.as_int())
                                        : "must be a finite float32 number, got " + num(v.as_double())));
  } else if (v.is_array()) {
    for (size_t i = 0; i < v.as_array().size(); ++i) check_numbers(v.as_array()[i], source, path + "[" + std::to_string(i) + "]");
  } else if (v.is_object()) {
    for (const auto& [k, e] : v.as_object()) check_numbers(e, source, path + "." + k);
  }
}

void check_postprocess_numbers(const Manifest& m, const std::string& source) {
  check_numbers(m.postprocess, source, "postprocess");
  Fields pp(m.postprocess, source, "postprocess");
  check_blur_sigma(pp, "blur_sigma");
  check_blur_sigma(pp, "score_blur_sigma");
  if (pp.has("ssim") && pp.get("ssim").is_object()) {
    Fields s = pp.object("ssim");
    if (s.has("sigma")) number_in(s, "sigma", 1e-3, 1e3, "Gaussian window width");
    if (s.has("k1")) number_in(s, "k1", 0.0, 1.0, "SSIM stabilizer, 0.01 by convention");
    if (s.has("k2")) number_in(s, "k2", 1e-6, 1.0, "SSIM stabilizer, 0.03 by convention; > 0");
    if (s.has("data_range")) number_in(s, "data_range", 1e-6, 1e6, "value range of the reconstructed input");
  }
}

}  // namespace

json::Value manifest_for_onnx(const json::Value& doc) {
  json::Value v = doc;
  if (v.is_object()) v.erase("files");
  return v;
}

Manifest parse_manifest(const json::Value& doc, const std::string& source) {
  Manifest m;
  m.raw = doc;
  Fields top(doc, source, "");

  // The version decides how everything else is read, so it is checked first.
  const auto& sv = top.get("schema_version");
  if (!sv.is_integer()) top.fail("schema_version", std::string("expected an integer, got ") + sv.type_name());
  m.schema_version = sv.as_int();
  if (m.schema_version != kBundleSchemaVersion)
    top.fail("schema_version", "version " + std::to_string(m.schema_version) +
                                   " is not supported by this runtime (it reads version " +
                                   std::to_string(kBundleSchemaVersion) + ")");
  const std::string format = top.str("format");
  if (format != kBundleFormat) top.fail("format", std::string("expected \"") + kBundleFormat + "\", got \"" + format + "\"");
  m.sdk_version = top.str("sdk_version");

  {
    Fields model = top.object("model");
    m.model_type = model.str("type");
    if (m.model_type.empty()) model.fail("type", "must not be empty");
    m.model_name = model.str("name", "");
  }

  {
    Fields in = top.object("input");
    InputSpec& s = m.input;
    s.height = in.integer("height", 1, 1 << 15);
    s.width = in.integer("width", 1, 1 << 15);
    s.channels = in.integer("channels", 1, 3);
    if (s.channels == 2) in.fail("channels", "expected 1 or 3, got 2");
    s.color_order = in.one_of("color_order", {"RGB", "GRAY"});
    if ((s.channels == 3) != (s.color_order == "RGB"))
      in.fail("color_order", "\"" + s.color_order + "\" does not fit channels=" + std::to_string(s.channels) +
                                 " (RGB needs 3, GRAY needs 1)");
    // Normalization is (x * scale - mean) / std in float32: bounds keep every image's values
    // finite and distinct (std 1e-46 or scale 1e300 made every image "review").
    for (double d : in.numbers("mean")) {
      if (!float32_representable(d) || std::fabs(d) > 1e6)
        in.fail("mean", "every entry must be a finite number with |mean| <= 1e6, got " + num(d));
      s.mean.push_back(static_cast<float>(d));
    }
    for (double d : in.numbers("std")) {
      if (!(d >= 1e-6 && d <= 1e6))
        in.fail("std", "every entry must be finite and > 0 (in [1e-06, 1e+06]), got " + num(d));
      s.std.push_back(static_cast<float>(d));
    }
    if (int64_t(s.mean.size()) != s.channels)
      in.fail("mean", std::to_string(s.mean.size()) + " values for " + std::to_string(s.channels) + " channel(s)");
    if (int64_t(s.std.size()) != s.channels)
      in.fail("std", std::to_string(s.std.size()) + " values for " + std::to_string(s.channels) + " channel(s)");
    s.scale = in.positive("scale");
    if (!(s.scale >= 1e-9 && s.scale <= 1e6)) in.fail("scale", "expected a number in [1e-09, 1e+06], got " + num(s.scale));
    const auto range = in.numbers("value_range");
    if (range.size() != 2 || !(range[1] > range[0])) in.fail("value_range", "expected [min, max] with max > min");
    if (!float32_representable(range[0]) || !float32_representable(range[1]) ||
        !(static_cast<float>(range[1]) > static_cast<float>(range[0])))
      in.fail("value_range", "min and max must be finite float32 numbers with max > min in float32");
    s.value_min = range[0];
    s.value_max = range[1];
    s.resize = in.one_of("resize", {"bilinear"});
    s.antialias = in.boolean("antialias");
    s.on_size_mismatch = in.one_of("on_size_mismatch", {"resize", "reject"});
    s.dtypes = in.strings("dtypes");
    if (s.dtypes.empty()) in.fail("dtypes", "must list at least one accepted image dtype");
    for (const auto& d : s.dtypes)
      if (d != "uint8" && d != "float32") in.fail("dtypes", "unsupported image dtype \"" + d + "\" (uint8, float32)");
    if (top.get("input").find("acquisition")) {
      Fields a = in.object("acquisition");
      s.acquisition_frames = a.integer("frames", 2, kMaxAcquisitionFrames);
    }
  }

  {
    const auto& nets = top.array("networks");
    if (nets.empty()) top.fail("networks", "must list at least one network");
    std::set<std::string> keys;
    for (size_t i = 0; i < nets.size(); ++i) {
      Fields f(nets[i], source, "networks[" + std::to_string(i) + "]");
      NetworkSpec n;
      n.name = f.str("name");
      n.precision = f.one_of("precision", {"fp32", "fp16", "int8", "bf16"});
      n.file = require_file_name(f, "file");
      n.inputs = parse_tensors(f, "inputs");
      n.outputs = parse_tensors(f, "outputs");
      if (!keys.insert(n.name + "/" + n.precision).second)
        f.fail("", "network \"" + n.name + "\" listed twice with precision " + n.precision);
      m.networks.push_back(std::move(n));
    }
    for (const auto& n : m.networks)
      if (!m.network(n.name, "fp32"))
        top.fail("networks", "network \"" + n.name + "\" has no fp32 variant (the reference precision)");
  }

  {
    Fields arrays = top.object("arrays");
    m.arrays_file = require_file_name(arrays, "file");
    Fields tensors = arrays.object("tensors");
    for (const auto& [name, v] : top.get("arrays").find("tensors")->as_object()) {
      Fields t(v, source, "arrays.tensors." + name);
      ArraySpec a;
      const std::string dt = t.one_of("dtype", {"float32", "float16", "int64"});
      dtype_from_name(dt, &a.dtype);
      a.shape = t.integers("shape");
      for (int64_t d : a.shape)
        if (d < 0) t.fail("shape", "dimensions must be >= 0");
      m.arrays.emplace(name, std::move(a));
    }
    (void)tensors;
  }

  {
    Fields pp = top.object("postprocess");
    m.postprocess_kind = pp.str("kind");
    m.postprocess = top.get("postprocess");
    check_postprocess_numbers(m, source);
  }

  {
    Fields c = top.object("calibration");
    m.calibration.threshold = float32_number(c, "threshold");
    m.calibration.min = float32_number(c, "min");
    m.calibration.max = float32_number(c, "max");
    // Scores are float32: the normalization's divisor max - min must be a positive float32.
    const float span = static_cast<float>(m.calibration.max) - static_cast<float>(m.calibration.min);
    if (!(m.calibration.max > m.calibration.min) || !std::isfinite(span) || !(span >= FLT_MIN))
      c.fail("max", "expected finite min < max (max - min a positive float32), got min " + num(m.calibration.min) +
                        ", max " + num(m.calibration.max));
  }

  if (top.has("decision")) {
    Fields d = top.object("decision");
    m.decision.review_band = d.number("review_band", 0.0);
    if (!(m.decision.review_band >= 0.0 && m.decision.review_band < 0.5))
      d.fail("review_band", "expected a number in [0, 0.5)");
    if (d.has("run")) {
      Fields r = d.object("run");
      const double k = r.number("k", 7), n = r.number("n", 10);
      if (!(n >= 1 && n <= kMaxRunAcquisitions && n == std::floor(n)))
        r.fail("n", "expected an integer from 1 to " + std::to_string(kMaxRunAcquisitions));
      if (!(k >= 1 && k <= n && k == std::floor(k))) r.fail("k", "expected an integer from 1 to n");
      m.decision.run_k = static_cast<int>(k);
      m.decision.run_n = static_cast<int>(n);
    }
  }

  if (top.has("regions")) {
    const auto& regs = top.array("regions");
    if (!regs.empty()) {
      Fields frame = top.object("frame");
      m.frame_width = frame.integer("width", 1, 1 << 15);
      m.frame_height = frame.integer("height", 1, 1 << 15);
    }
    std::set<std::string> names;
    for (size_t i = 0; i < regs.size(); ++i) {
      Fields f(regs[i], source, "regions[" + std::to_string(i) + "]");
      RegionSpec r;
      r.name = f.str("name");
      if (r.name.empty()) f.fail("name", "must not be empty");
      if (!names.insert(r.name).second) f.fail("name", "duplicate region name \"" + r.name + "\"");
      r.x = f.integer("x", 0, m.frame_width - 1);
      r.y = f.integer("y", 0, m.frame_height - 1);
      r.width = f.integer("width", 1, m.frame_width - r.x);
      r.height = f.integer("height", 1, m.frame_height - r.y);
      r.threshold = float32_number(f, "threshold");
      if (f.has("group")) {
        r.group = f.str("group");
        if (r.group.empty() || r.group.size() > 64) f.fail("group", "expected a name of 1 to 64 characters");
      }
      m.regions.push_back(std::move(r));
    }
  }

  if (top.get("input").find("tiling")) {
    Fields in = top.object("input");
    Fields t = in.object("tiling");
    if (!m.regions.empty())
      t.fail("", "tiling and regions exclude each other (tiles are generated regions); give one of them");
    Fields frame = top.object("frame");
    m.frame_width = frame.integer("width", 1, 1 << 15);
    m.frame_height = frame.integer("height", 1, 1 << 15);
    auto pair = [&](const std::string& key, int64_t lo_y, int64_t hi_y, int64_t lo_x, int64_t hi_x) {
      const auto v = t.integers(key);
      if (v.size() != 2) t.fail(key, "expected [height, width] (2 integers), got " + std::to_string(v.size()));
      if (v[0] < lo_y || v[0] > hi_y || v[1] < lo_x || v[1] > hi_x)
        t.fail(key, "expected [" + std::to_string(lo_y) + ".." + std::to_string(hi_y) + ", " + std::to_string(lo_x) +
                        ".." + std::to_string(hi_x) + "], got [" + std::to_string(v[0]) + ", " + std::to_string(v[1]) + "]");
      return v;
    };
    const auto tile = pair("tile", 1, std::min(kMaxTileSide, m.frame_height), 1, std::min(kMaxTileSide, m.frame_width));
    const auto stride = pair("stride", 1, tile[0], 1, tile[1]);
    TilingSpec& s = m.tiling;
    s.tile_h = tile[0];
    s.tile_w = tile[1];
    s.stride_y = stride[0];
    s.stride_x = stride[1];
    s.merge = t.one_of("merge", {"mean", "max"}) == "mean" ? TileMerge::Mean : TileMerge::Max;
    const auto ys = tile_starts(m.frame_height, s.tile_h, s.stride_y);
    const auto xs = tile_starts(m.frame_width, s.tile_w, s.stride_x);
    if (static_cast<int64_t>(ys.size() * xs.size()) > kMaxTilesPerFrame)
      t.fail("stride", std::to_string(ys.size()) + " x " + std::to_string(xs.size()) + " tiles on the " +
                           std::to_string(m.frame_height) + "x" + std::to_string(m.frame_width) + " frame; at most " +
                           std::to_string(kMaxTilesPerFrame) + " per frame (larger tiles or strides)");
    for (size_t r = 0; r < ys.size(); ++r)
      for (size_t c = 0; c < xs.size(); ++c) {
        RegionSpec reg;
        reg.name = "tile_" + std::to_string(r) + "_" + std::to_string(c);
        reg.x = xs[c];
        reg.y = ys[r];
        reg.width = s.tile_w;
        reg.height = s.tile_h;
        reg.threshold = m.calibration.threshold;
        m.regions.push_back(std::move(reg));
      }
  }

  {
    Fields files = top.object("files");
    int64_t total = 0;
    for (const auto& [name, v] : top.get("files").as_object()) {
      Fields f(v, source, "files." + name);
      if (!plain_file_name(name)) files.fail(name, "not a plain file name inside the bundle");
      FileEntry e;
      e.sha256 = f.str("sha256");
      bool hex = e.sha256.size() == 64;
      for (char c : e.sha256) hex = hex && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
      if (!hex) f.fail("sha256", "expected 64 lower-case hex digits");
      e.bytes = f.integer("bytes", 0, kMaxFileBytes);
      total += e.bytes;
      if (total > kMaxBundleBytes)
        files.fail(name, "the files add up to more than " + std::to_string(kMaxBundleBytes) + " bytes (the bundle size cap)");
      m.files.emplace(name, std::move(e));
    }
    auto listed = [&](const std::string& file, const std::string& field) {
      if (!m.files.count(file)) top.fail(field, "file \"" + file + "\" is not listed in files (no checksum)");
    };
    for (size_t i = 0; i < m.networks.size(); ++i) listed(m.networks[i].file, "networks[" + std::to_string(i) + "].file");
    listed(m.arrays_file, "arrays.file");
  }
  return m;
}

RegionGroups region_groups(const std::vector<RegionSpec>& regions) {
  RegionGroups g;
  g.of_region.assign(regions.size(), -1);
  for (size_t k = 0; k < regions.size(); ++k) {
    if (regions[k].group.empty()) continue;
    size_t at = 0;
    while (at < g.names.size() && g.names[at] != regions[k].group) ++at;
    if (at == g.names.size()) {
      g.names.push_back(regions[k].group);
      g.members.emplace_back();
    }
    g.members[at].push_back(static_cast<int32_t>(k));
    g.of_region[k] = static_cast<int32_t>(at);
  }
  return g;
}

}  // namespace edge
