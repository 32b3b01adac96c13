/* The C ABI from a plain C99 program built against the installed SDK: versions, open/close,
 * specifications, cycles with per-image and per-region results and heatmaps, strided region
 * views, the fail-safe verdicts, deadlines, and bad input of every kind (null pointers, wrong
 * sizes, closed or invented handles, corrupt bundles): a status and a message, never a crash;
 * BGR images through edge_run_with; the network on OpenVINO (backend "openvino", ABI 1.2 fields)
 * where EDGE_SDK_OPENVINO_LIB names its library.
 *
 * usage: test_c_api FIXTURES_DIR OUT_DIR
 *   FIXTURES_DIR from make_fixtures.py; OUT_DIR receives c_results_*.txt, which check_results.py
 *   compares with the Python API on the same images. */
#include <math.h>
#include <stdint.h>
#include <time.h>

#include "common.h"

static char g_dir[2048];

static const char* bundle(const char* name) {
  static char path[4096];
  snprintf(path, sizeof path, "%s/%s", g_dir, name);
  return path;
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static edge_runtime* open_plain(int heatmaps, int max_batch, int contexts) {
  edge_open_options o;
  edge_runtime* rt = NULL;
  edge_open_options_init(&o);
  o.threads = 1;
  o.heatmaps = heatmaps;
  o.max_batch = max_batch;
  o.contexts = contexts;
  CHECK_STATUS(edge_open(bundle("plain"), &o, &rt), EDGE_OK);
  CHECK(rt != NULL);
  return rt;
}

static void test_library(void) {
  CHECK(edge_abi_version() == EDGE_ABI_VERSION);
  CHECK(strcmp(edge_sdk_version(), "") != 0);
  CHECK(strcmp(edge_status_name(EDGE_E_DEADLINE), "EDGE_E_DEADLINE") == 0);
  CHECK(strcmp(edge_status_name(12345), "unknown status") == 0);
  CHECK(strcmp(edge_verdict_name(EDGE_VERDICT_REVIEW), "review") == 0);
  CHECK(strcmp(edge_verdict_name(-1), "invalid") == 0);
  CHECK(EDGE_VERDICT_REVIEW == 0); /* zeroed memory reads as review */
}

static void test_open_errors(void) {
  edge_runtime* rt = (edge_runtime*)(uintptr_t)1;
  edge_open_options o;

  CHECK_STATUS(edge_open(NULL, NULL, &rt), EDGE_E_INVALID_ARGUMENT);
  CHECK(rt == NULL);
  CHECK(strstr(edge_last_error(), "bundle_path") != NULL);
  CHECK_STATUS(edge_open(bundle("plain"), NULL, NULL), EDGE_E_INVALID_ARGUMENT);
  CHECK(strstr(edge_last_error(), "out") != NULL);

  CHECK_STATUS(edge_open(bundle("no_such_bundle"), NULL, &rt), EDGE_E_BUNDLE);
  CHECK(strstr(edge_last_error(), "no_such_bundle") != NULL);
  CHECK(rt == NULL);

  /* A flipped byte in the ONNX file: the checksum names the file. */
  CHECK_STATUS(edge_open(bundle("corrupt"), NULL, &rt), EDGE_E_BUNDLE);
  CHECK(strstr(edge_last_error(), ".onnx") != NULL);
  CHECK(rt == NULL);

  edge_open_options_init(&o);
  o.struct_size = 8;
  CHECK_STATUS(edge_open(bundle("plain"), &o, &rt), EDGE_E_INVALID_ARGUMENT);
  CHECK(strstr(edge_last_error(), "struct_size") != NULL);

  /* Thread counts are bounded (at most 4x the hardware threads, and 256): the error names the option. */
  edge_open_options_init(&o);
  o.threads = 100000;
  CHECK_STATUS(edge_open(bundle("plain"), &o, &rt), EDGE_E_INVALID_ARGUMENT);
  CHECK(strstr(edge_last_error(), "options->threads") != NULL && strstr(edge_last_error(), "100000") != NULL);
  CHECK(rt == NULL);

  edge_open_options_init(&o);
  o.device = "gpu7";
  CHECK_STATUS(edge_open(bundle("plain"), &o, &rt), EDGE_E_INVALID_ARGUMENT);
  CHECK(strstr(edge_last_error(), "device") != NULL);

  edge_open_options_init(&o);
  o.backend = "tensorrt";
  CHECK_STATUS(edge_open(bundle("plain"), &o, &rt), EDGE_E_UNSUPPORTED);
  CHECK(strstr(edge_last_error(), "tensorrt") != NULL);

  edge_open_options_init(&o);
  o.backend = "auto"; /* no TensorRT engine for a CPU device: ONNX Runtime */
  CHECK_STATUS(edge_open(bundle("plain"), &o, &rt), EDGE_OK);
  CHECK(edge_close(rt) == EDGE_OK);
  rt = NULL;
  o.backend = "fastest";
  CHECK_STATUS(edge_open(bundle("plain"), &o, &rt), EDGE_E_UNSUPPORTED);
  CHECK(strstr(edge_last_error(), "fastest") != NULL);

  edge_open_options_init(&o);
  o.precision = "int8";
  CHECK_STATUS(edge_open(bundle("plain"), &o, &rt), EDGE_E_INVALID_ARGUMENT);
  CHECK(strstr(edge_last_error(), "precision") != NULL);

  edge_open_options_init(&o);
  o.contexts = -2;
  CHECK_STATUS(edge_open(bundle("plain"), &o, &rt), EDGE_E_INVALID_ARGUMENT);
  edge_open_options_init(&o);
  o.deadline_ms = -5;
  CHECK_STATUS(edge_open(bundle("plain"), &o, &rt), EDGE_E_INVALID_ARGUMENT);
  edge_open_options_init(&o);
  o.review_band = 0.7;
  CHECK_STATUS(edge_open(bundle("plain"), &o, &rt), EDGE_E_INVALID_ARGUMENT);
  CHECK(strstr(edge_last_error(), "review_band") != NULL);

  edge_open_options_init(&o);
  o.onnxruntime_library = "/nonexistent/libonnxruntime.so";
  /* The library is loaded once per process: after the first open this names the conflict,
   * before it the missing file. Either way: a backend error, no crash. */
  CHECK_STATUS(edge_open(bundle("plain"), &o, &rt), EDGE_E_BACKEND);
  CHECK(strstr(edge_last_error(), "libonnxruntime") != NULL);
}

static void test_specs(void) {
  edge_runtime* rt = open_plain(0, 0, 1);
  edge_input_spec in;
  edge_output_spec out;
  edge_region_spec reg;
  char small[4];
  char* text;
  size_t len = 0;

  edge_input_spec_init(&in);
  CHECK_STATUS(edge_input_spec_get(rt, &in), EDGE_OK);
  CHECK(in.height == 32 && in.width == 32 && in.channels == 3);
  CHECK(in.accepts_uint8 == 1);
  CHECK(fabsf(in.scale - 1.0f / 255.0f) < 1e-9f);
  edge_output_spec_init(&out);
  CHECK_STATUS(edge_output_spec_get(rt, &out), EDGE_OK);
  CHECK(out.region_count == 0 && out.contexts == 1 && out.max_batch == 1 && out.heatmaps == 0);
  CHECK(isfinite(out.threshold));

  edge_input_spec_init(&in);
  in.struct_size = 3;
  CHECK_STATUS(edge_input_spec_get(rt, &in), EDGE_E_INVALID_ARGUMENT);
  CHECK_STATUS(edge_input_spec_get(rt, NULL), EDGE_E_INVALID_ARGUMENT);
  edge_region_spec_init(&reg);
  CHECK_STATUS(edge_region_spec_get(rt, 0, &reg), EDGE_E_INVALID_ARGUMENT); /* no regions */

  CHECK_STATUS(edge_describe(rt, NULL, 0, &len), EDGE_E_BUFFER_TOO_SMALL);
  CHECK(len > 20);
  CHECK_STATUS(edge_describe(rt, small, sizeof small, &len), EDGE_E_BUFFER_TOO_SMALL);
  CHECK(small[0] == '\0');
  text = (char*)malloc(len + 1);
  CHECK_STATUS(edge_describe(rt, text, len + 1, &len), EDGE_OK);
  CHECK(strlen(text) == len && text[0] == '{' && strstr(text, "\"model_type\"") && strstr(text, "onnxruntime"));
  free(text);
  CHECK_STATUS(edge_describe(rt, NULL, 10, &len), EDGE_E_INVALID_ARGUMENT);
  CHECK_STATUS(edge_close(rt), EDGE_OK);
}

static void test_regions_specs(void) {
  edge_runtime* rt = NULL;
  edge_output_spec out;
  edge_region_spec reg;
  char name[64];
  size_t len = 0;
  CHECK_STATUS(edge_open(bundle("regions"), NULL, &rt), EDGE_OK);
  edge_output_spec_init(&out);
  CHECK_STATUS(edge_output_spec_get(rt, &out), EDGE_OK);
  CHECK(out.region_count == 3 && out.frame_width == 120 && out.frame_height == 40);
  edge_region_spec_init(&reg);
  CHECK_STATUS(edge_region_spec_get(rt, 1, &reg), EDGE_OK);
  CHECK(reg.x == 40 && reg.y == 4 && reg.width == 40 && reg.height == 32);
  CHECK_STATUS(edge_region_spec_get(rt, 3, &reg), EDGE_E_INVALID_ARGUMENT);
  CHECK_STATUS(edge_region_spec_get(rt, -1, &reg), EDGE_E_INVALID_ARGUMENT);
  CHECK_STATUS(edge_region_name(rt, 2, name, sizeof name, &len), EDGE_OK);
  CHECK(strcmp(name, "right") == 0 && len == 5);
  CHECK_STATUS(edge_region_name(rt, 2, name, 5, &len), EDGE_E_BUFFER_TOO_SMALL);
  CHECK(len == 5);
  CHECK_STATUS(edge_close(rt), EDGE_OK);
}

/* All images in one batch, then each alone, then with row strides: identical results. Writes
 * the results for check_results.py. */
static void test_run_plain(const fixture_images* fx, const char* out_dir) {
  edge_runtime* rt = open_plain(1, 0, 1);
  edge_image* images = (edge_image*)calloc((size_t)fx->n, sizeof(edge_image));
  edge_image_result* batch = (edge_image_result*)calloc((size_t)fx->n, sizeof(edge_image_result));
  edge_image_result single;
  edge_batch_outputs o;
  size_t floats = 0, one_floats = (size_t)fx->h * (size_t)fx->w;
  float* heat;
  float* heat_one = (float*)malloc(one_floats * sizeof(float));
  int i, accepts = 0, rejects = 0;
  char path[4096];
  FILE* f;

  for (i = 0; i < fx->n; ++i) images[i] = fixture_image(fx, i);
  CHECK_STATUS(edge_heatmap_floats(rt, images, (size_t)fx->n, &floats), EDGE_OK);
  CHECK(floats == (size_t)fx->n * one_floats);
  heat = (float*)malloc(floats * sizeof(float));

  edge_batch_outputs_init(&o);
  o.results = batch;
  o.results_capacity = (size_t)fx->n;
  o.heatmaps = heat;
  o.heatmaps_capacity = floats;
  CHECK_STATUS(edge_run(rt, images, (size_t)fx->n, 0, &o), EDGE_OK);
  CHECK(o.judged == (uint32_t)fx->n && o.not_judged == 0 && o.deadline_exceeded == 0 && o.elapsed_ms > 0);
  for (i = 0; i < fx->n; ++i) {
    const edge_image_result* r = &batch[i];
    CHECK(r->status == EDGE_OK && isfinite(r->score) && r->normalized >= 0 && r->normalized <= 1);
    CHECK(r->verdict == EDGE_VERDICT_ACCEPT || r->verdict == EDGE_VERDICT_REJECT || r->verdict == EDGE_VERDICT_REVIEW);
    CHECK(r->verdict != EDGE_VERDICT_REVIEW || r->review == EDGE_REVIEW_BAND);
    CHECK(r->heatmap_height == fx->h && r->heatmap_width == fx->w && r->heatmap_offset == (int64_t)i * (int64_t)one_floats);
    accepts += r->verdict == EDGE_VERDICT_ACCEPT;
    rejects += r->verdict == EDGE_VERDICT_REJECT;
  }
  CHECK(accepts > 0 && rejects > 0); /* the fixture's threshold splits the set */
  for (i = 0; i < (int)floats; ++i)
    if (!isfinite(heat[i])) {
      CHECK(!"heatmap values are finite");
      break;
    }

  /* Each image alone gives the same bits (chunks of one image either way). */
  for (i = 0; i < fx->n; ++i) {
    edge_batch_outputs_init(&o);
    o.results = &single;
    o.results_capacity = 1;
    o.heatmaps = heat_one;
    o.heatmaps_capacity = one_floats;
    CHECK_STATUS(edge_run(rt, &images[i], 1, -1, &o), EDGE_OK);
    CHECK(same_result(&single, &batch[i]));
    CHECK(memcmp(heat_one, heat + (size_t)i * one_floats, one_floats * sizeof(float)) == 0);
  }

  /* A region of a larger frame, passed with the frame's row stride, equals the packed image. */
  {
    const int pad = 7;
    const int fw = fx->w + 2 * pad, fh = fx->h + 3;
    unsigned char* frame = (unsigned char*)malloc((size_t)fh * (size_t)fw * 3);
    const unsigned char* src = (const unsigned char*)images[2].data;
    edge_image view;
    int y;
    memset(frame, 99, (size_t)fh * (size_t)fw * 3);
    for (y = 0; y < fx->h; ++y) memcpy(frame + ((size_t)(y + 2) * fw + pad) * 3, src + (size_t)y * fx->w * 3, (size_t)fx->w * 3);
    view = images[2];
    view.data = frame + ((size_t)2 * fw + pad) * 3;
    view.row_stride = (int64_t)fw * 3;
    edge_batch_outputs_init(&o);
    o.results = &single;
    o.results_capacity = 1;
    CHECK_STATUS(edge_run(rt, &view, 1, 0, &o), EDGE_OK);
    CHECK(same_result(&single, &batch[2]));
    CHECK(single.heatmap_height == 0); /* no heatmaps asked for */
    free(frame);
  }

  snprintf(path, sizeof path, "%s/c_results_plain.txt", out_dir);
  f = fopen(path, "w");
  CHECK(f != NULL);
  if (f) {
    for (i = 0; i < fx->n; ++i)
      fprintf(f, "%.9g %.9g %s\n", batch[i].score, batch[i].normalized, edge_verdict_name(batch[i].verdict));
    fclose(f);
  }
  free(images);
  free(batch);
  free(heat);
  free(heat_one);
  CHECK_STATUS(edge_close(rt), EDGE_OK);
}

/* A wider review band (option) turns uncertain verdicts into review, flagged as such. */
static void test_review_band(const fixture_images* fx) {
  edge_runtime* rt = NULL;
  edge_open_options opt;
  edge_image* images = (edge_image*)calloc((size_t)fx->n, sizeof(edge_image));
  edge_image_result* ref = (edge_image_result*)calloc((size_t)fx->n, sizeof(edge_image_result));
  edge_image_result* res = (edge_image_result*)calloc((size_t)fx->n, sizeof(edge_image_result));
  edge_batch_outputs o;
  edge_output_spec spec;
  int i, reviews = 0;
  edge_runtime* plain = open_plain(0, 0, 1);
  for (i = 0; i < fx->n; ++i) images[i] = fixture_image(fx, i);
  edge_batch_outputs_init(&o);
  o.results = ref;
  o.results_capacity = (size_t)fx->n;
  CHECK_STATUS(edge_run(plain, images, (size_t)fx->n, 0, &o), EDGE_OK);
  CHECK_STATUS(edge_close(plain), EDGE_OK);

  edge_open_options_init(&opt);
  opt.threads = 1;
  opt.review_band = 0.2;
  CHECK_STATUS(edge_open(bundle("plain"), &opt, &rt), EDGE_OK);
  edge_output_spec_init(&spec);
  CHECK_STATUS(edge_output_spec_get(rt, &spec), EDGE_OK);
  CHECK(spec.review_band == 0.2);
  o.results = res;
  CHECK_STATUS(edge_run(rt, images, (size_t)fx->n, 0, &o), EDGE_OK); /* band review is a judgement, not an error */
  for (i = 0; i < fx->n; ++i) {
    const int inside = fabs((double)ref[i].normalized - 0.5) < 0.2;
    CHECK(same_float(res[i].score, ref[i].score));
    if (inside) {
      ++reviews;
      CHECK(res[i].verdict == EDGE_VERDICT_REVIEW && res[i].review == EDGE_REVIEW_BAND && res[i].status == EDGE_OK);
    } else {
      CHECK(res[i].verdict == ref[i].verdict);
    }
  }
  CHECK(reviews > 0 && reviews < fx->n);
  CHECK_STATUS(edge_close(rt), EDGE_OK);
  free(images);
  free(ref);
  free(res);
}

/* Frames with regions: per-region results, the product verdict rule, frame-size heatmaps. */
/* Region groups (left + middle = "a", right = "b"): each group's result is the largest normalized
 * score of its regions, that region's score, and the product rule over them; a caller whose
 * edge_batch_outputs predates the groups field gets none written. */
static void test_groups(edge_runtime* rt, const edge_image* images, int n) {
  edge_output_spec spec;
  edge_region_spec rs;
  edge_batch_outputs o;
  edge_image_result* res = (edge_image_result*)calloc((size_t)n, sizeof(edge_image_result));
  edge_region_result* reg = (edge_region_result*)calloc((size_t)n * 3, sizeof(edge_region_result));
  edge_region_result* grp = (edge_region_result*)calloc((size_t)n * 2, sizeof(edge_region_result));
  char name[16];
  size_t len = 0;
  int i;
  edge_output_spec_init(&spec);
  CHECK_STATUS(edge_output_spec_get(rt, &spec), EDGE_OK);
  CHECK(spec.group_count == 2);
  CHECK_STATUS(edge_group_name(rt, 1, name, sizeof name, &len), EDGE_OK);
  CHECK(strcmp(name, "b") == 0 && len == 1);
  CHECK_STATUS(edge_group_name(rt, 2, name, sizeof name, &len), EDGE_E_INVALID_ARGUMENT);
  edge_region_spec_init(&rs);
  CHECK_STATUS(edge_region_spec_get(rt, 1, &rs), EDGE_OK);
  CHECK(rs.group == 0);
  CHECK_STATUS(edge_region_spec_get(rt, 2, &rs), EDGE_OK);
  CHECK(rs.group == 1);
  edge_batch_outputs_init(&o);
  o.results = res;
  o.results_capacity = (size_t)n;
  o.regions = reg;
  o.regions_capacity = (size_t)n * 3;
  o.groups = grp;
  o.groups_capacity = (size_t)n * 2 - 1; /* too small */
  CHECK_STATUS(edge_run(rt, images, (size_t)n, 0, &o), EDGE_E_BUFFER_TOO_SMALL);
  CHECK(strstr(edge_last_error(), "outputs->groups") != NULL);
  o.groups_capacity = (size_t)n * 2;
  CHECK_STATUS(edge_run(rt, images, (size_t)n, 0, &o), EDGE_OK);
  for (i = 0; i < n; ++i) {
    const edge_region_result* l = &reg[i * 3];
    const edge_region_result* m = &reg[i * 3 + 1];
    const edge_region_result* a = &grp[i * 2];
    const edge_region_result* b = &grp[i * 2 + 1];
    const edge_region_result* best = m->normalized > l->normalized ? m : l;
    const int want = (l->verdict == EDGE_VERDICT_REJECT || m->verdict == EDGE_VERDICT_REJECT) ? EDGE_VERDICT_REJECT
                     : (l->verdict == EDGE_VERDICT_ACCEPT && m->verdict == EDGE_VERDICT_ACCEPT) ? EDGE_VERDICT_ACCEPT
                                                                                                 : EDGE_VERDICT_REVIEW;
    CHECK(a->normalized == best->normalized && a->score == best->score && a->verdict == want);
    CHECK(b->normalized == reg[i * 3 + 2].normalized && b->verdict == reg[i * 3 + 2].verdict);
  }
  /* without a regions buffer the groups are still computed */
  memset(grp, 0, (size_t)n * 2 * sizeof(edge_region_result));
  o.regions = NULL;
  CHECK_STATUS(edge_run(rt, images, (size_t)n, 0, &o), EDGE_OK);
  CHECK(grp[1].verdict == reg[2].verdict && grp[1].score == reg[2].score);
  /* an ABI 1.1 caller: struct_size ends before the groups field, which is left alone */
  memset(grp, 0x7f, (size_t)n * 2 * sizeof(edge_region_result));
  o.struct_size = (uint32_t)offsetof(edge_batch_outputs, groups);
  CHECK_STATUS(edge_run(rt, images, (size_t)n, 0, &o), EDGE_OK);
  CHECK(((const unsigned char*)grp)[0] == 0x7f);
  free(res);
  free(reg);
  free(grp);
}

static void test_run_regions(const fixture_images* frames, const char* out_dir) {
  edge_runtime* rt = NULL;
  edge_open_options opt;
  edge_image* images = (edge_image*)calloc((size_t)frames->n, sizeof(edge_image));
  edge_image_result* res = (edge_image_result*)calloc((size_t)frames->n, sizeof(edge_image_result));
  edge_region_result* reg = (edge_region_result*)calloc((size_t)frames->n * 3, sizeof(edge_region_result));
  edge_batch_outputs o;
  char path[4096];
  FILE* f;
  int i, k;

  edge_open_options_init(&opt);
  opt.threads = 1;
  CHECK_STATUS(edge_open(bundle("regions"), &opt, &rt), EDGE_OK);
  for (i = 0; i < frames->n; ++i) images[i] = fixture_image(frames, i);
  edge_batch_outputs_init(&o);
  o.results = res;
  o.results_capacity = (size_t)frames->n;
  o.regions = reg;
  o.regions_capacity = (size_t)frames->n * 2; /* too small */
  CHECK_STATUS(edge_run(rt, images, (size_t)frames->n, 0, &o), EDGE_E_BUFFER_TOO_SMALL);
  CHECK(res[0].verdict == EDGE_VERDICT_REVIEW && res[0].status == EDGE_E_BUFFER_TOO_SMALL);
  o.regions_capacity = (size_t)frames->n * 3;
  CHECK_STATUS(edge_run(rt, images, (size_t)frames->n, 0, &o), EDGE_OK);
  for (i = 0; i < frames->n; ++i) {
    int any_reject = 0, any_review = 0;
    for (k = 0; k < 3; ++k) {
      const edge_region_result* r = &reg[i * 3 + k];
      CHECK(isfinite(r->score));
      any_reject |= r->verdict == EDGE_VERDICT_REJECT;
      any_review |= r->verdict == EDGE_VERDICT_REVIEW;
    }
    CHECK(res[i].verdict == (any_reject ? EDGE_VERDICT_REJECT : any_review ? EDGE_VERDICT_REVIEW : EDGE_VERDICT_ACCEPT));
    CHECK(res[i].status == EDGE_OK);
  }
  snprintf(path, sizeof path, "%s/c_results_frames.txt", out_dir);
  f = fopen(path, "w");
  CHECK(f != NULL);
  if (f) {
    for (i = 0; i < frames->n; ++i) {
      fprintf(f, "%.9g %.9g %s", res[i].score, res[i].normalized, edge_verdict_name(res[i].verdict));
      for (k = 0; k < 3; ++k) fprintf(f, " %.9g %s", reg[i * 3 + k].score, edge_verdict_name(reg[i * 3 + k].verdict));
      fprintf(f, "\n");
    }
    fclose(f);
  }
  /* A frame of the wrong size: that frame is review with EDGE_E_IMAGE, the others are judged. */
  images[1].width = frames->w - 8;
  images[1].row_stride = (int64_t)frames->w * 3;
  CHECK_STATUS(edge_run(rt, images, (size_t)frames->n, 0, &o), EDGE_E_IMAGE);
  CHECK(res[1].verdict == EDGE_VERDICT_REVIEW && res[1].status == EDGE_E_IMAGE && (res[1].review & EDGE_REVIEW_ERROR));
  CHECK(reg[3].verdict == EDGE_VERDICT_REVIEW && isnan(reg[3].score));
  CHECK(strstr(edge_last_error(), "image 1") != NULL);
  CHECK(res[0].status == EDGE_OK && o.judged == (uint32_t)frames->n - 1 && o.not_judged == 1);
  images[1] = fixture_image(frames, 1);
  test_groups(rt, images, frames->n);
  free(images);
  free(res);
  free(reg);
  CHECK_STATUS(edge_close(rt), EDGE_OK);
}

/* Bad images inside a batch are review, with the others judged as usual. */
static void test_bad_images(const fixture_images* fx) {
  edge_runtime* rt = open_plain(0, 0, 1);
  edge_image images[6];
  edge_image_result ref[6], res[6];
  edge_batch_outputs o;
  float fpix[32 * 32 * 3];
  int i;
  for (i = 0; i < 6; ++i) images[i] = fixture_image(fx, i);
  edge_batch_outputs_init(&o);
  o.results = ref;
  o.results_capacity = 6;
  CHECK_STATUS(edge_run(rt, images, 6, 0, &o), EDGE_OK);

  images[1].data = NULL;                 /* null pixels */
  images[2].channels = 2;                /* unsupported channel count */
  images[3].dtype = 77;                  /* unknown dtype */
  images[4].row_stride = 5;              /* stride shorter than a row */
  for (i = 0; i < 32 * 32 * 3; ++i) fpix[i] = NAN;
  images[5] = fixture_image(fx, 5);
  images[5].data = fpix;                 /* float image full of NaN: the model cannot judge it */
  images[5].dtype = EDGE_DTYPE_FLOAT32;
  memset(res, 0x7f, sizeof res);
  o.results = res;
  CHECK_STATUS(edge_run(rt, images, 6, 0, &o), EDGE_E_IMAGE);
  CHECK(strstr(edge_last_error(), "image 1") != NULL);
  CHECK(same_result(&res[0], &ref[0]));
  for (i = 1; i < 5; ++i) {
    CHECK(res[i].verdict == EDGE_VERDICT_REVIEW && res[i].status == EDGE_E_IMAGE && res[i].review == EDGE_REVIEW_ERROR);
    CHECK(isnan(res[i].score));
  }
  /* NaN pixels are valid float32 input: the network runs and its score is NaN, which the decision
     turns into review with EDGE_E_NUMERIC and the non-finite flag, never accept. */
  CHECK(res[5].verdict == EDGE_VERDICT_REVIEW && res[5].status == EDGE_E_NUMERIC);
  CHECK((res[5].review & EDGE_REVIEW_NONFINITE) != 0 && isnan(res[5].score));
  CHECK(o.judged == 1 && o.not_judged == 5);

  /* The call itself unusable: results written as review where possible. */
  memset(res, 0x7f, sizeof res);
  CHECK_STATUS(edge_run(rt, NULL, 6, 0, &o), EDGE_E_INVALID_ARGUMENT);
  for (i = 0; i < 6; ++i) CHECK(res[i].verdict == EDGE_VERDICT_REVIEW && res[i].status == EDGE_E_INVALID_ARGUMENT);
  CHECK_STATUS(edge_run(rt, images, 6, NAN, &o), EDGE_E_INVALID_ARGUMENT);
  /* Refused calls never leave a prefilled accept behind: a host that ignores the status reads
     review in every entry that exists (capacity 2 of 6 here; nothing past it is touched). */
  for (i = 0; i < 6; ++i) {
    memset(&res[i], 0, sizeof res[i]);
    res[i].verdict = EDGE_VERDICT_ACCEPT;
    res[i].score = 0.0f;
  }
  o.results_capacity = 2;
  CHECK_STATUS(edge_run(rt, images, 6, 0, &o), EDGE_E_INVALID_ARGUMENT);
  CHECK(strstr(edge_last_error(), "results") != NULL);
  for (i = 0; i < 2; ++i) CHECK(res[i].verdict == EDGE_VERDICT_REVIEW && res[i].status == EDGE_E_INVALID_ARGUMENT && isnan(res[i].score));
  for (i = 2; i < 6; ++i) CHECK(res[i].verdict == EDGE_VERDICT_ACCEPT && res[i].score == 0.0f);
  for (i = 0; i < 6; ++i) res[i].verdict = EDGE_VERDICT_ACCEPT;
  o.results_capacity = 6;
  o.struct_size = 0; /* outputs not initialized, fields set by hand */
  CHECK_STATUS(edge_run(rt, images, 6, 0, &o), EDGE_E_INVALID_ARGUMENT);
  CHECK(strstr(edge_last_error(), "struct_size") != NULL);
  for (i = 0; i < 6; ++i) CHECK(res[i].verdict == EDGE_VERDICT_REVIEW && res[i].status == EDGE_E_INVALID_ARGUMENT);
  for (i = 0; i < 6; ++i) res[i].verdict = EDGE_VERDICT_ACCEPT;
  o.struct_size = 4; /* not this struct: nothing of it is read */
  CHECK_STATUS(edge_run(rt, images, 6, 0, &o), EDGE_E_INVALID_ARGUMENT);
  for (i = 0; i < 6; ++i) CHECK(res[i].verdict == EDGE_VERDICT_ACCEPT);
  CHECK_STATUS(edge_run(rt, images, 6, 0, NULL), EDGE_E_INVALID_ARGUMENT);
  edge_batch_outputs_init(&o);
  o.results = res;
  o.results_capacity = 6;
  o.heatmaps = fpix;
  o.heatmaps_capacity = 10;
  CHECK_STATUS(edge_run(rt, images, 1, 0, &o), EDGE_E_INVALID_ARGUMENT); /* opened without heatmaps */
  CHECK(strstr(edge_last_error(), "heatmaps") != NULL);
  o.heatmaps = NULL;
  CHECK_STATUS(edge_run(rt, images, 0, 0, &o), EDGE_OK); /* an empty cycle is a no-op */
  CHECK_STATUS(edge_close(rt), EDGE_OK);
}

/* One image through edge_run (ro NULL, no deadline) or edge_run_with. */
static void run_one(edge_runtime* rt, const edge_image* im, const edge_run_options* ro, edge_image_result* r,
                    float* heat, size_t heat_floats, edge_status expected) {
  edge_batch_outputs o;
  edge_batch_outputs_init(&o);
  o.results = r;
  o.results_capacity = 1;
  o.heatmaps = heat;
  o.heatmaps_capacity = heat_floats;
  CHECK_STATUS(ro ? edge_run_with(rt, im, 1, ro, &o) : edge_run(rt, im, 1, 0, &o), expected);
}

/* BGR images (OpenCV's order) through edge_run_with: exactly the results of the same images in
 * RGB order, uint8 and float, heatmaps included; gray images are unaffected; any other order,
 * or an options struct too small, refuses the call with every result review. */
static void test_color_order(const fixture_images* fx) {
  edge_runtime* rt = open_plain(1, 0, 1);
  const size_t px = (size_t)fx->h * (size_t)fx->w, floats = px;
  unsigned char* rev = (unsigned char*)malloc(px * 3);
  unsigned char* gray = (unsigned char*)malloc(px);
  float* frgb = (float*)malloc(px * 3 * sizeof(float));
  float* fbgr = (float*)malloc(px * 3 * sizeof(float));
  float* heat_ref = (float*)malloc(floats * sizeof(float));
  float* heat = (float*)malloc(floats * sizeof(float));
  edge_run_options ro;
  edge_image_result ref, res;
  edge_image im;
  size_t p;
  int i, c;

  CHECK(fx->c == 3);
  edge_run_options_init(&ro);
  CHECK(ro.struct_size == sizeof ro && ro.color_order == EDGE_COLOR_RGB && ro.deadline_ms < 0);
  for (i = 0; i < fx->n; ++i) {
    const unsigned char* src = fx->data + (size_t)i * px * 3;
    for (p = 0; p < px; ++p)
      for (c = 0; c < 3; ++c) {
        rev[p * 3 + (size_t)c] = src[p * 3 + 2 - (size_t)c];
        frgb[p * 3 + (size_t)c] = (float)src[p * 3 + (size_t)c] * 0.5f + 0.25f;
        fbgr[p * 3 + (size_t)c] = (float)src[p * 3 + 2 - (size_t)c] * 0.5f + 0.25f;
      }
    im = fixture_image(fx, i);
    run_one(rt, &im, NULL, &ref, heat_ref, floats, EDGE_OK);
    ro.color_order = EDGE_COLOR_RGB;
    run_one(rt, &im, &ro, &res, heat, floats, EDGE_OK); /* RGB through edge_run_with = edge_run */
    CHECK(same_result(&res, &ref) && memcmp(heat, heat_ref, floats * sizeof(float)) == 0);
    ro.color_order = EDGE_COLOR_BGR;
    im.data = rev;
    run_one(rt, &im, &ro, &res, heat, floats, EDGE_OK);
    CHECK(same_result(&res, &ref) && memcmp(heat, heat_ref, floats * sizeof(float)) == 0);
    /* float32 pixels: the BGR copy of a float image gives that image's results */
    im.dtype = EDGE_DTYPE_FLOAT32;
    im.data = frgb;
    run_one(rt, &im, NULL, &ref, heat_ref, floats, EDGE_OK);
    im.data = fbgr;
    run_one(rt, &im, &ro, &res, heat, floats, EDGE_OK);
    CHECK(same_result(&res, &ref) && memcmp(heat, heat_ref, floats * sizeof(float)) == 0);
    /* gray: one channel reads the same in either order */
    for (p = 0; p < px; ++p) gray[p] = src[p * 3 + 1];
    im = fixture_image(fx, i);
    im.data = gray;
    im.channels = 1;
    run_one(rt, &im, NULL, &ref, heat_ref, floats, EDGE_OK);
    run_one(rt, &im, &ro, &res, heat, floats, EDGE_OK);
    CHECK(same_result(&res, &ref) && memcmp(heat, heat_ref, floats * sizeof(float)) == 0);
  }

  /* NULL options are edge_run's defaults (RGB, the runtime's deadline). */
  im = fixture_image(fx, 0);
  run_one(rt, &im, NULL, &ref, heat_ref, floats, EDGE_OK);
  {
    edge_batch_outputs o;
    edge_batch_outputs_init(&o);
    o.results = &res;
    o.results_capacity = 1;
    CHECK_STATUS(edge_run_with(rt, &im, 1, NULL, &o), EDGE_OK);
    CHECK(same_result(&res, &ref));
  }

  /* Refused: an unknown order, an options struct of an older or no size, a NaN deadline. The
     prefilled accept never survives. */
  ro.color_order = 2;
  res.verdict = EDGE_VERDICT_ACCEPT;
  run_one(rt, &im, &ro, &res, NULL, 0, EDGE_E_INVALID_ARGUMENT);
  CHECK(strstr(edge_last_error(), "options->color_order") != NULL && strstr(edge_last_error(), "got 2") != NULL);
  CHECK(res.verdict == EDGE_VERDICT_REVIEW && res.status == EDGE_E_INVALID_ARGUMENT && res.review == EDGE_REVIEW_ERROR);
  ro.color_order = -1;
  run_one(rt, &im, &ro, &res, NULL, 0, EDGE_E_INVALID_ARGUMENT);
  edge_run_options_init(&ro);
  ro.struct_size = 4;
  res.verdict = EDGE_VERDICT_ACCEPT;
  run_one(rt, &im, &ro, &res, NULL, 0, EDGE_E_INVALID_ARGUMENT);
  CHECK(strstr(edge_last_error(), "options->struct_size") != NULL);
  CHECK(res.verdict == EDGE_VERDICT_REVIEW);
  edge_run_options_init(&ro);
  ro.deadline_ms = NAN;
  run_one(rt, &im, &ro, &res, NULL, 0, EDGE_E_INVALID_ARGUMENT);
  CHECK(strstr(edge_last_error(), "deadline_ms") != NULL);

  free(rev);
  free(gray);
  free(frgb);
  free(fbgr);
  free(heat_ref);
  free(heat);
  CHECK_STATUS(edge_close(rt), EDGE_OK);
}

static void test_handles(const fixture_images* fx) {
  edge_runtime* rt = open_plain(0, 0, 1);
  edge_runtime* fake = (edge_runtime*)(uintptr_t)0x1234;
  edge_image im = fixture_image(fx, 0);
  edge_image_result res;
  edge_batch_outputs o;
  edge_output_spec spec;
  edge_batch_outputs_init(&o);
  o.results = &res;
  o.results_capacity = 1;
  CHECK_STATUS(edge_run(rt, &im, 1, 0, &o), EDGE_OK);
  CHECK_STATUS(edge_close(rt), EDGE_OK);
  memset(&res, 0x7f, sizeof res);
  CHECK_STATUS(edge_run(rt, &im, 1, 0, &o), EDGE_E_INVALID_HANDLE);
  CHECK(res.verdict == EDGE_VERDICT_REVIEW && res.status == EDGE_E_INVALID_HANDLE);
  CHECK(strstr(edge_last_error(), "closed") != NULL);
  CHECK_STATUS(edge_close(rt), EDGE_E_INVALID_HANDLE);
  CHECK_STATUS(edge_close(fake), EDGE_E_INVALID_HANDLE);
  edge_output_spec_init(&spec);
  CHECK_STATUS(edge_output_spec_get(fake, &spec), EDGE_E_INVALID_HANDLE);
  CHECK_STATUS(edge_output_spec_get(NULL, &spec), EDGE_E_INVALID_HANDLE);
  CHECK_STATUS(edge_run(NULL, &im, 1, 0, &o), EDGE_E_INVALID_HANDLE);
  CHECK_STATUS(edge_close(NULL), EDGE_OK);
  /* A handle opened after the close is a different token. */
  {
    edge_runtime* again = open_plain(0, 0, 1);
    CHECK(again != rt);
    CHECK_STATUS(edge_run(rt, &im, 1, 0, &o), EDGE_E_INVALID_HANDLE);
    CHECK_STATUS(edge_close(again), EDGE_OK);
  }
}

/* Deadlines: a cycle returns on time with review for what was not judged; finished images keep
 * their verdicts (equal to an unhurried run); the runtime works normally afterwards. */
static int cmp_double(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

static double median(double* v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void test_deadline(const fixture_images* slow, const char* backend) {
  enum { kRepeats = 7 };
  double times[kRepeats];
  edge_runtime* rt = NULL;
  edge_open_options opt;
  enum { N = 6 };
  edge_image images[N];
  edge_image_result ref[N], res[N];
  edge_batch_outputs o;
  double t0, full_ms, one_ms, deadline, elapsed;
  int i, judged_prefix, seen_unjudged;

  edge_open_options_init(&opt);
  opt.threads = 1;
  opt.max_batch = 1;
  opt.backend = backend;
  CHECK_STATUS(edge_open(bundle("slow"), &opt, &rt), EDGE_OK);
  printf("deadlines with backend %s\n", backend);
  for (i = 0; i < N; ++i) images[i] = fixture_image(slow, i % slow->n);
  edge_batch_outputs_init(&o);
  o.results = ref;
  o.results_capacity = N;
  CHECK_STATUS(edge_run(rt, images, 1, 0, &o), EDGE_OK); /* warm */
  t0 = now_ms();
  CHECK_STATUS(edge_run(rt, images, N, 0, &o), EDGE_OK);
  full_ms = now_ms() - t0;
  /* One image's time as the median of repeated runs: a shared machine makes single timings noisy. */
  for (i = 0; i < kRepeats; ++i) {
    t0 = now_ms();
    CHECK_STATUS(edge_run(rt, images, 1, 0, &o), EDGE_OK);
    times[i] = now_ms() - t0;
  }
  one_ms = median(times, kRepeats);
  printf("slow bundle: %.1f ms per image (median of %d)\n", one_ms, kRepeats);

  /* Budget for about two and a half images. */
  deadline = 2.5 * one_ms;
  o.results = res;
  t0 = now_ms();
  CHECK_STATUS(edge_run(rt, images, N, deadline, &o), EDGE_E_DEADLINE);
  elapsed = now_ms() - t0;
  printf("deadline %.1f ms: returned after %.1f ms (reported %.1f), %u judged, %u review\n", deadline, elapsed,
         o.elapsed_ms, o.judged, o.not_judged);
  CHECK(o.deadline_exceeded == 1);
  CHECK(elapsed < deadline + 100.0); /* copy-out and wake-up latency on a shared machine */
  CHECK(elapsed < full_ms);
  CHECK(o.judged < (uint32_t)N && o.judged + o.not_judged == (uint32_t)N);
  CHECK(strstr(edge_last_error(), "deadline") != NULL);
  judged_prefix = 1;
  seen_unjudged = 0;
  for (i = 0; i < N; ++i) {
    if (res[i].status == EDGE_OK) {
      judged_prefix &= !seen_unjudged;
      CHECK(same_result(&res[i], &ref[i]));
    } else {
      seen_unjudged = 1;
      CHECK(res[i].status == EDGE_E_DEADLINE && res[i].verdict == EDGE_VERDICT_REVIEW &&
            res[i].review == EDGE_REVIEW_DEADLINE && isnan(res[i].score));
    }
  }
  CHECK(judged_prefix); /* judged in order */

  /* Nothing can be judged in a microsecond. */
  CHECK_STATUS(edge_run(rt, images, N, 0.001, &o), EDGE_E_DEADLINE);
  for (i = 0; i < N; ++i) CHECK(res[i].verdict == EDGE_VERDICT_REVIEW);

  /* The next cycle (no deadline) waits for the abandoned work to end, then runs normally. */
  CHECK_STATUS(edge_run(rt, images, N, 0, &o), EDGE_OK);
  for (i = 0; i < N; ++i) CHECK(same_result(&res[i], &ref[i]));

  /* An overrun in the middle of a network call cancels that call (ONNX Runtime stops between graph
   * nodes), so with one context the next cycle starts about at once instead of after the chunk.
   * OpenVINO's CPU plugin does not stop an infer in progress (measured here: the next cycle waits
   * for the abandoned call), so for it only the results are checked. */
  o.results = res;
  for (i = 0; i < kRepeats; ++i) {
    CHECK_STATUS(edge_run(rt, images, 1, 0.1 * one_ms, &o), EDGE_E_DEADLINE);
    t0 = now_ms();
    CHECK_STATUS(edge_run(rt, images, 1, 0, &o), EDGE_OK);
    times[i] = now_ms() - t0;
    CHECK(same_result(&res[0], &ref[0]));
  }
  elapsed = median(times, kRepeats);
  printf("cycle right after an overrun at 10%% of a network call: median %.1f ms of %d (one image alone: %.1f ms; "
         "waiting for the abandoned call instead of cancelling it: about %.1f)\n", elapsed, kRepeats, one_ms,
         1.9 * one_ms);
  /* Cancelled: ~1.0-1.1 x one image; not cancelled: ~1.9 x. The median separates the two where a
     single timing on a shared machine could not; benchmarks/bench_deadline.py measures it. */
  if (strcmp(backend, "onnxruntime") == 0) CHECK(elapsed < 1.45 * one_ms);

  CHECK_STATUS(edge_close(rt), EDGE_OK);

  /* Closing right after an overrun waits for the worker's chunk; no crash, no leak. */
  CHECK_STATUS(edge_open(bundle("slow"), &opt, &rt), EDGE_OK);
  CHECK_STATUS(edge_run(rt, images, N, 1.0, &o), EDGE_E_DEADLINE);
  CHECK_STATUS(edge_close(rt), EDGE_OK);
}

/* The network on OpenVINO: the ONNX Runtime results to 1e-4, its device named when wrong, and a
 * caller of an older minor ABI (struct ending before the 1.2 fields) still selects it by name. */
static void test_openvino(const fixture_images* fx) {
  edge_open_options o;
  edge_runtime *ort = NULL, *ov = NULL;
  edge_image images[8];
  edge_image_result a[8], b[8];
  edge_batch_outputs out;
  int i, n = fx->n < 8 ? fx->n : 8;
  char info[4096];
  size_t len = 0;

  for (i = 0; i < n; ++i) images[i] = fixture_image(fx, i);
  edge_open_options_init(&o);
  o.threads = 1;
  o.max_batch = 3;
  CHECK_STATUS(edge_open(bundle("plain"), &o, &ort), EDGE_OK);
  o.backend = "openvino";
  o.openvino_library = getenv("EDGE_SDK_OPENVINO_LIB");
  o.openvino_device = "CPU";
  CHECK_STATUS(edge_open(bundle("plain"), &o, &ov), EDGE_OK);
  CHECK_STATUS(edge_describe(ov, info, sizeof info, &len), EDGE_OK);
  CHECK(strstr(info, "\"backend\": \"openvino ") != NULL);
  edge_batch_outputs_init(&out);
  out.results = a;
  out.results_capacity = (size_t)n;
  CHECK_STATUS(edge_run(ort, images, (size_t)n, 0, &out), EDGE_OK);
  out.results = b;
  CHECK_STATUS(edge_run(ov, images, (size_t)n, 0, &out), EDGE_OK);
  for (i = 0; i < n; ++i) {
    CHECK(b[i].status == EDGE_OK && b[i].verdict == a[i].verdict);
    CHECK(fabs(b[i].score - a[i].score) <= 1e-4 * fabs(a[i].score) + 1e-6);
  }
  CHECK_STATUS(edge_close(ov), EDGE_OK);

  /* The bf16 variant: computed by OpenVINO (bfloat16 where the CPU has it, else float32), close to
   * fp32; any other backend refuses it by name. */
  o.precision = "bf16";
  CHECK_STATUS(edge_open(bundle("plain_bf16"), &o, &ov), EDGE_OK);
  CHECK_STATUS(edge_describe(ov, info, sizeof info, &len), EDGE_OK);
  CHECK(strstr(info, "\"precision\": \"bf16\"") != NULL && strstr(info, ", CPU, ") != NULL);
  CHECK_STATUS(edge_run(ov, images, (size_t)n, 0, &out), EDGE_OK);
  for (i = 0; i < n; ++i) CHECK(b[i].status == EDGE_OK && fabs(b[i].score - a[i].score) <= 2e-2 * fabs(a[i].score));
  CHECK_STATUS(edge_close(ov), EDGE_OK);
  o.backend = "onnxruntime";
  CHECK_STATUS(edge_open(bundle("plain_bf16"), &o, &ov), EDGE_E_INVALID_ARGUMENT);
  CHECK(strstr(edge_last_error(), "precision \"bf16\": the bfloat16 variant is computed by the \"openvino\" backend only") != NULL);
  o.backend = "openvino";
  o.precision = NULL;

  o.openvino_device = "FOO";
  CHECK_STATUS(edge_open(bundle("plain"), &o, &ov), EDGE_E_BACKEND);
  CHECK(strstr(edge_last_error(), "openvino_device \"FOO\"") != NULL);

  /* ABI 1.1's struct: the library reads nothing past its size (the library path then comes from
   * the environment). */
  edge_open_options_init(&o);
  o.struct_size = (uint32_t)offsetof(edge_open_options, openvino_library);
  o.backend = "openvino";
  o.openvino_device = "FOO"; /* past the caller's size: not read */
  CHECK_STATUS(edge_open(bundle("plain"), &o, &ov), EDGE_OK);
  CHECK_STATUS(edge_close(ov), EDGE_OK);
  CHECK_STATUS(edge_close(ort), EDGE_OK);
}

/* Resident memory of this process in MB (Linux). */
static double rss_mb(void) {
  long pages = 0, resident = 0;
  FILE* f = fopen("/proc/self/statm", "r");
  if (!f) return -1;
  if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
  fclose(f);
  return (double)resident * 4096.0 / (1024.0 * 1024.0);
}

/* Read-only data is loaded once: more contexts, and a second runtime opened from the same bundle,
 * share the bundle's arrays and network bytes and the ONNX Runtime session (its weights). */
static void test_sharing(const fixture_images* fx, const char* backend) {
  edge_open_options opt;
  edge_runtime *first = NULL, *second = NULL;
  edge_image im = fixture_image(fx, 0);
  edge_image_result r1, r2;
  edge_batch_outputs o;
  double before, one, more;
  edge_open_options_init(&opt);
  opt.threads = 1;
  opt.backend = backend;
  before = rss_mb();
  CHECK_STATUS(edge_open(bundle("big"), &opt, &first), EDGE_OK);
  one = rss_mb() - before;
  opt.contexts = 3;
  before = rss_mb();
  CHECK_STATUS(edge_open(bundle("big"), &opt, &second), EDGE_OK);
  more = rss_mb() - before;
  printf("big bundle (36 MB of weights), %s: first runtime +%.1f MB resident, a second one with 3 contexts +%.1f MB\n",
         backend, one, more);
#ifdef __SANITIZE_ADDRESS__
  /* AddressSanitizer keeps freed memory in quarantine (the second open's validated copy of the
   * bundle, dropped for the shared one) and adds shadow memory: resident size says nothing here. */
  printf("  (resident-memory check skipped under AddressSanitizer)\n");
#else
  CHECK(one > 30.0);
  CHECK(more < 0.25 * one);
#endif
  edge_batch_outputs_init(&o);
  o.results = &r1;
  o.results_capacity = 1;
  CHECK_STATUS(edge_run(first, &im, 1, 0, &o), EDGE_OK);
  o.results = &r2;
  CHECK_STATUS(edge_run(second, &im, 1, 0, &o), EDGE_OK);
  CHECK(same_result(&r1, &r2));
  CHECK_STATUS(edge_close(first), EDGE_OK);
  CHECK_STATUS(edge_run(second, &im, 1, 0, &o), EDGE_OK); /* the shared data outlives the first */
  CHECK(same_result(&r1, &r2));
  CHECK_STATUS(edge_close(second), EDGE_OK);
}

/* The run vote on the runtime handle: the bundle's rule (7 of 10 without decision.run), a run
 * decided on its 10th acquisition, verdicts of real cycles fed in, early close never accepting,
 * and bad calls refused with a message. */
static void test_run_vote(const fixture_images* fx) {
  edge_runtime* rt = open_plain(0, 0, 1);
  edge_run_status st;
  int32_t k = 0, n = 0;
  int i;
  CHECK_STATUS(edge_run_vote_rule(rt, &k, &n), EDGE_OK);
  CHECK(k == 7 && n == 10);
  edge_run_status_init(&st);
  for (i = 0; i < 10; ++i) {
    CHECK_STATUS(edge_run_vote(rt, "rejected", i, i < 7 ? EDGE_VERDICT_REJECT : EDGE_VERDICT_ACCEPT, &st), EDGE_OK);
    CHECK(st.decided == (i == 9));
  }
  CHECK(st.verdict == EDGE_VERDICT_REJECT && st.rejects == 7 && st.accepts == 3 && st.missing == 0);
  for (i = 0; i < 10; ++i)
    CHECK_STATUS(edge_run_vote(rt, "one review", i, i == 4 ? EDGE_VERDICT_REVIEW : EDGE_VERDICT_ACCEPT, &st), EDGE_OK);
  CHECK(st.decided && st.verdict == EDGE_VERDICT_REVIEW && st.reviews == 1);
  /* the verdicts of real cycles: the same image judged 10 times gives one verdict 10 times */
  {
    edge_image im = fixture_image(fx, 0);
    edge_image_result r;
    for (i = 0; i < 10; ++i) {
      edge_batch_outputs o;
      edge_batch_outputs_init(&o);
      o.results = &r;
      o.results_capacity = 1;
      CHECK_STATUS(edge_run(rt, &im, 1, 0, &o), EDGE_OK);
      CHECK_STATUS(edge_run_vote(rt, "real", i, r.verdict, &st), EDGE_OK);
    }
    CHECK(st.decided && st.verdict == r.verdict && (r.verdict == EDGE_VERDICT_ACCEPT || r.verdict == EDGE_VERDICT_REJECT));
  }
  /* closed early with acquisitions missing: review, never accept */
  for (i = 0; i < 9; ++i) CHECK_STATUS(edge_run_vote(rt, "short", i, EDGE_VERDICT_ACCEPT, &st), EDGE_OK);
  CHECK(!st.decided);
  CHECK_STATUS(edge_run_vote_close(rt, "short", &st), EDGE_OK);
  CHECK(st.decided && st.verdict == EDGE_VERDICT_REVIEW && st.missing == 1);
  CHECK_STATUS(edge_run_vote_close(rt, "short", &st), EDGE_E_INVALID_ARGUMENT);
  CHECK(strstr(edge_last_error(), "no open run 'short'") != NULL);
  /* bad calls */
  CHECK_STATUS(edge_run_vote(rt, "dup", 0, EDGE_VERDICT_ACCEPT, &st), EDGE_OK);
  CHECK_STATUS(edge_run_vote(rt, "dup", 0, EDGE_VERDICT_ACCEPT, &st), EDGE_E_INVALID_ARGUMENT);
  CHECK(strstr(edge_last_error(), "given twice") != NULL);
  CHECK_STATUS(edge_run_vote(rt, "dup", 10, EDGE_VERDICT_ACCEPT, &st), EDGE_E_INVALID_ARGUMENT);
  CHECK(strstr(edge_last_error(), "index: expected 0 to 9") != NULL);
  CHECK_STATUS(edge_run_vote(rt, NULL, 0, EDGE_VERDICT_ACCEPT, &st), EDGE_E_INVALID_ARGUMENT);
  CHECK_STATUS(edge_run_vote(rt, "", 0, EDGE_VERDICT_ACCEPT, &st), EDGE_E_INVALID_ARGUMENT);
  CHECK(strstr(edge_last_error(), "product") != NULL);
  st.struct_size = 4;
  CHECK_STATUS(edge_run_vote(rt, "x", 0, EDGE_VERDICT_ACCEPT, &st), EDGE_E_INVALID_ARGUMENT);
  CHECK(strstr(edge_last_error(), "struct_size") != NULL);
  CHECK_STATUS(edge_run_vote_rule(rt, NULL, &n), EDGE_E_INVALID_ARGUMENT);
  CHECK(strcmp(edge_status_name(EDGE_E_CAPACITY), "EDGE_E_CAPACITY") == 0);
  CHECK_STATUS(edge_close(rt), EDGE_OK);
  edge_run_status_init(&st);
  CHECK_STATUS(edge_run_vote(rt, "after close", 0, EDGE_VERDICT_ACCEPT, &st), EDGE_E_INVALID_HANDLE);
}

/* edge_frame_extremes: per-pixel min and max over an acquisition's frames, strided views included,
 * against a direct loop; mismatched frames and bad arguments refused with the frame named. */
static void test_frame_extremes(const fixture_images* fx) {
  const size_t px = (size_t)fx->h * (size_t)fx->w * (size_t)fx->c;
  unsigned char* lo = (unsigned char*)malloc(px);
  unsigned char* hi = (unsigned char*)malloc(px);
  unsigned char* wide = (unsigned char*)calloc(px * 2, 1); /* frame 2 as a view with a doubled row stride */
  edge_image f[3];
  size_t p;
  int y, bad = 0;
  f[0] = fixture_image(fx, 0);
  f[1] = fixture_image(fx, 1);
  f[2] = fixture_image(fx, 2);
  for (y = 0; y < fx->h; ++y)
    memcpy(wide + (size_t)y * 2 * fx->w * fx->c, fx->data + 2 * px + (size_t)y * fx->w * fx->c, (size_t)fx->w * fx->c);
  f[2].data = wide;
  f[2].row_stride = (int64_t)fx->w * fx->c * 2;
  CHECK_STATUS(edge_frame_extremes(f, 3, lo, hi), EDGE_OK);
  for (p = 0; p < px; ++p) {
    unsigned char a = fx->data[p], b = fx->data[px + p], c = fx->data[2 * px + p];
    unsigned char mn = a < b ? a : b, mx = a > b ? a : b;
    mn = c < mn ? c : mn;
    mx = c > mx ? c : mx;
    bad |= lo[p] != mn || hi[p] != mx;
  }
  CHECK(!bad);
  CHECK_STATUS(edge_frame_extremes(f, 1, lo, hi), EDGE_E_INVALID_ARGUMENT);
  CHECK(strstr(edge_last_error(), "k: expected 2 to 1024") != NULL);
  CHECK_STATUS(edge_frame_extremes(f, 3, NULL, hi), EDGE_E_INVALID_ARGUMENT);
  f[1].width -= 1;
  CHECK_STATUS(edge_frame_extremes(f, 3, lo, hi), EDGE_E_IMAGE);
  CHECK(strstr(edge_last_error(), "frames[1]") != NULL);
  free(lo);
  free(hi);
  free(wide);
}

/* edge_run_acquisition: the k frames and their two rank images judged in one cycle, equal to
 * edge_frame_extremes + edge_run on those k + 2 images; a bundle declaring K takes exactly K
 * frames (refused otherwise, every usable result review); the input spec says K. */
static void test_run_acquisition(const fixture_images* fx) {
  const size_t px = (size_t)fx->h * (size_t)fx->w * (size_t)fx->c;
  unsigned char* rank = (unsigned char*)malloc(2 * px);
  edge_image f[5];
  edge_image_result want[5], got[5];
  edge_batch_outputs o;
  edge_input_spec in;
  edge_runtime* plain = open_plain(0, 0, 1);
  edge_runtime* acq = NULL;
  edge_open_options opt;
  int i;
  for (i = 0; i < 3; ++i) f[i] = fixture_image(fx, i);
  CHECK_STATUS(edge_frame_extremes(f, 3, rank, rank + px), EDGE_OK);
  f[3] = f[0];
  f[3].data = rank;
  f[4] = f[0];
  f[4].data = rank + px;
  edge_batch_outputs_init(&o);
  o.results = want;
  o.results_capacity = 5;
  CHECK_STATUS(edge_run(plain, f, 5, 0, &o), EDGE_OK);
  o.results = got;
  CHECK_STATUS(edge_run_acquisition(plain, f, 3, NULL, &o), EDGE_OK); /* no K declared: any k */
  for (i = 0; i < 5; ++i) CHECK(same_result(&got[i], &want[i]));
  edge_open_options_init(&opt);
  opt.threads = 1;
  CHECK_STATUS(edge_open(bundle("acquisition"), &opt, &acq), EDGE_OK);
  edge_input_spec_init(&in);
  CHECK_STATUS(edge_input_spec_get(acq, &in), EDGE_OK);
  CHECK(in.acquisition_frames == 3);
  CHECK_STATUS(edge_input_spec_get(plain, &in), EDGE_OK);
  CHECK(in.acquisition_frames == 0);
  memset(got, 0, sizeof got);
  CHECK_STATUS(edge_run_acquisition(acq, f, 3, NULL, &o), EDGE_OK);
  /* the same network, calibrated apart: the same scores */
  for (i = 0; i < 5; ++i) CHECK(got[i].status == EDGE_OK && got[i].score == want[i].score);
  for (i = 0; i < 5; ++i) got[i].verdict = EDGE_VERDICT_ACCEPT; /* a host's prefill */
  CHECK_STATUS(edge_run_acquisition(acq, f, 2, NULL, &o), EDGE_E_INVALID_ARGUMENT);
  CHECK(strstr(edge_last_error(), "input.acquisition.frames") != NULL);
  for (i = 0; i < 4; ++i) CHECK(got[i].verdict == EDGE_VERDICT_REVIEW && got[i].status == EDGE_E_INVALID_ARGUMENT);
  o.results_capacity = 4; /* k + 2 = 5 needed */
  CHECK(edge_run_acquisition(acq, f, 3, NULL, &o) != EDGE_OK);
  CHECK(got[0].verdict == EDGE_VERDICT_REVIEW);
  CHECK_STATUS(edge_close(acq), EDGE_OK);
  CHECK_STATUS(edge_close(plain), EDGE_OK);
  free(rank);
}

int main(int argc, char** argv) {
  fixture_images plain, frames, slow;
  if (argc != 3) {
    fprintf(stderr, "usage: %s FIXTURES_DIR OUT_DIR\n", argv[0]);
    return 2;
  }
  snprintf(g_dir, sizeof g_dir, "%s", argv[1]);
  if (!read_fixture(g_dir, "plain_images", &plain) || !read_fixture(g_dir, "frames", &frames) ||
      !read_fixture(g_dir, "slow_images", &slow))
    return 2;
  test_library();
  {
    /* Without ONNX Runtime nothing below can run: say so once instead of failing everywhere. */
    edge_runtime* rt = NULL;
    if (edge_open(bundle("plain"), NULL, &rt) != EDGE_OK) {
      fprintf(stderr, "cannot open %s: %s\n(set EDGE_SDK_ONNXRUNTIME_LIB to libonnxruntime.so: edge-sdk config --onnxruntime-lib)\n",
              bundle("plain"), edge_last_error());
      return 1;
    }
    edge_close(rt);
  }
  test_open_errors();
  test_specs();
  test_regions_specs();
  test_run_plain(&plain, argv[2]);
  test_review_band(&plain);
  test_run_regions(&frames, argv[2]);
  test_bad_images(&plain);
  test_color_order(&plain);
  test_run_vote(&plain);
  test_frame_extremes(&plain);
  test_run_acquisition(&plain);
  test_handles(&plain);
  test_sharing(&plain, "onnxruntime");
  test_deadline(&slow, "onnxruntime");
  if (getenv("EDGE_SDK_OPENVINO_LIB") && *getenv("EDGE_SDK_OPENVINO_LIB")) {
    test_openvino(&plain);
    test_sharing(&plain, "openvino");
    test_deadline(&slow, "openvino");
  } else {
    printf("backend openvino: not tested (EDGE_SDK_OPENVINO_LIB not set)\n");
  }
  free(plain.data);
  free(frames.data);
  free(slow.data);
  printf("%s: %d failure(s)\n", argv[0], g_failures);
  return g_failures ? 1 : 0;
}
