/* The C ABI of supervised classifiers (ABI 1.2: edge_class_spec_get, edge_class_name,
 * edge_run_classes) as a C99 host sees it, on the fixtures of make_fixtures.py: the classes and
 * thresholds of the bundle, each image's class probabilities, top class and verdict against the
 * Python API's (py_results_classifier.txt) and against the rule itself, the same cycle as
 * edge_run_with, the fail-safe outputs of refused calls (small buffers, struct sizes, a bad image,
 * a closed handle), and a bundle that is not a classifier.
 *
 * Usage: test_c_api_classes FIXTURES_DIR */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define MAX_IMAGES 64
#define MAX_CLASSES 8

typedef struct expected {
  int k, good, n;
  double accept, reject;
  char names[MAX_CLASSES][64];
  int verdict[MAX_IMAGES], top[MAX_IMAGES];
  float score[MAX_IMAGES], probs[MAX_IMAGES][MAX_CLASSES];
} expected;

static int read_expected(const char* dir, expected* e) {
  char path[4096];
  FILE* f;
  int i, c;
  memset(e, 0, sizeof *e);
  snprintf(path, sizeof path, "%s/py_results_classifier.txt", dir);
  f = fopen(path, "r");
  if (!f || fscanf(f, "%d %d %lf %lf", &e->k, &e->good, &e->accept, &e->reject) != 4 || e->k < 2 || e->k > MAX_CLASSES) {
    fprintf(stderr, "cannot read %s\n", path);
    if (f) fclose(f);
    return 0;
  }
  for (c = 0; c < e->k; ++c)
    if (fscanf(f, "%63s", e->names[c]) != 1) return fclose(f), 0;
  for (i = 0; i < MAX_IMAGES; ++i) {
    if (fscanf(f, "%d %d %f", &e->verdict[i], &e->top[i], &e->score[i]) != 3) break;
    for (c = 0; c < e->k; ++c)
      if (fscanf(f, "%f", &e->probs[i][c]) != 1) return fclose(f), 0;
  }
  e->n = i;
  fclose(f);
  return e->n > 0;
}

static int close_to(float a, float b) { return fabsf(a - b) <= 1e-4f * fabsf(b) + 1e-6f; }

/* The rule of c_api.h written out: reject on a confident defect class, accept on a confident good
 * class, else review. */
static int rule(const float* p, int k, int good, double accept, double reject) {
  int c;
  float defect = -1.0f;
  for (c = 0; c < k; ++c)
    if (c != good && p[c] > defect) defect = p[c];
  if ((double)defect >= reject) return EDGE_VERDICT_REJECT;
  if ((double)p[good] >= accept) return EDGE_VERDICT_ACCEPT;
  return EDGE_VERDICT_REVIEW;
}

static edge_runtime* open_bundle(const char* dir, const char* name, int heatmaps) {
  char path[4096];
  edge_open_options o;
  edge_runtime* rt = NULL;
  edge_open_options_init(&o);
  o.threads = 1;
  o.contexts = 2;
  o.max_batch = 4;
  o.heatmaps = heatmaps;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  CHECK_STATUS(edge_open(path, &o, &rt), EDGE_OK);
  return rt;
}

int main(int argc, char** argv) {
  fixture_images fx;
  expected e;
  edge_runtime* rt;
  edge_runtime* plain;
  edge_class_spec spec;
  edge_class_outputs co;
  edge_batch_outputs out, out2;
  edge_run_options ro;
  edge_image images[MAX_IMAGES];
  edge_image_result results[MAX_IMAGES], results2[MAX_IMAGES];
  float probs[MAX_IMAGES * MAX_CLASSES];
  int32_t top[MAX_IMAGES];
  float* heat;
  size_t heat_floats = 0, len = 0, h;
  char name[64];
  int i, c, n;

  if (argc != 2) {
    fprintf(stderr, "usage: %s FIXTURES_DIR\n", argv[0]);
    return 2;
  }
  if (!read_fixture(argv[1], "plain_images", &fx) || !read_expected(argv[1], &e)) return 2;
  n = fx.n < e.n ? fx.n : e.n;
  CHECK(n == e.n && n <= MAX_IMAGES);
  for (i = 0; i < n; ++i) images[i] = fixture_image(&fx, i);

  rt = open_bundle(argv[1], "classifier", 1);
  plain = open_bundle(argv[1], "plain", 0);
  if (!rt || !plain) return 1;

  /* ---- the classes of the bundle */
  edge_class_spec_init(&spec);
  CHECK_STATUS(edge_class_spec_get(rt, &spec), EDGE_OK);
  CHECK(spec.class_count == e.k && spec.good_class == e.good);
  CHECK(spec.accept_threshold == e.accept && spec.reject_threshold == e.reject);
  for (c = 0; c < e.k; ++c) {
    CHECK_STATUS(edge_class_name(rt, c, name, sizeof name, &len), EDGE_OK);
    CHECK(strcmp(name, e.names[c]) == 0 && len == strlen(e.names[c]));
  }
  CHECK_STATUS(edge_class_name(rt, 0, NULL, 0, &len), EDGE_E_BUFFER_TOO_SMALL);
  CHECK(len == strlen(e.names[0]));
  CHECK_STATUS(edge_class_name(rt, e.k, name, sizeof name, &len), EDGE_E_INVALID_ARGUMENT);
  CHECK_STATUS(edge_class_name(rt, -1, name, sizeof name, &len), EDGE_E_INVALID_ARGUMENT);
  spec.struct_size = 4;
  CHECK_STATUS(edge_class_spec_get(rt, &spec), EDGE_E_INVALID_ARGUMENT);
  edge_class_spec_init(&spec);
  CHECK_STATUS(edge_class_spec_get(plain, &spec), EDGE_OK);
  CHECK(spec.class_count == 0 && spec.good_class == -1);
  CHECK_STATUS(edge_class_name(plain, 0, name, sizeof name, &len), EDGE_E_INVALID_ARGUMENT);

  /* ---- a cycle: probabilities, top class and verdicts as Python has them, and as the rule says */
  CHECK_STATUS(edge_heatmap_floats(rt, images, (size_t)n, &heat_floats), EDGE_OK);
  heat = (float*)malloc(heat_floats * sizeof(float));
  edge_batch_outputs_init(&out);
  out.results = results;
  out.results_capacity = MAX_IMAGES;
  out.heatmaps = heat;
  out.heatmaps_capacity = heat_floats;
  edge_class_outputs_init(&co);
  co.probabilities = probs;
  co.probabilities_capacity = MAX_IMAGES * MAX_CLASSES;
  co.top_class = top;
  co.top_class_capacity = MAX_IMAGES;
  CHECK_STATUS(edge_run_classes(rt, images, (size_t)n, NULL, &out, &co), EDGE_OK);
  CHECK(out.judged == (uint32_t)n);
  {
    int seen[3] = {0, 0, 0};
    for (i = 0; i < n; ++i) {
      float sum = 0.0f;
      int best = 0;
      for (c = 0; c < e.k; ++c) {
        CHECK(close_to(probs[i * e.k + c], e.probs[i][c]));
        sum += probs[i * e.k + c];
        if (probs[i * e.k + c] > probs[i * e.k + best]) best = c;
      }
      CHECK(fabsf(sum - 1.0f) < 1e-5f);
      CHECK(top[i] == e.top[i] && top[i] == best);
      CHECK(results[i].verdict == e.verdict[i]);
      CHECK(results[i].verdict == rule(probs + i * e.k, e.k, e.good, e.accept, e.reject));
      CHECK(close_to(results[i].score, e.score[i]) && close_to(results[i].score, 1.0f - probs[i * e.k + e.good]));
      CHECK(results[i].status == EDGE_OK);
      CHECK(results[i].verdict != EDGE_VERDICT_REVIEW || results[i].review == EDGE_REVIEW_BAND);
      if (results[i].verdict >= 0 && results[i].verdict <= 2) seen[results[i].verdict] = 1;
      /* the CAM of the top defect class, in [0, 1] at the image's size */
      CHECK(results[i].heatmap_height == fx.h && results[i].heatmap_width == fx.w);
      for (h = 0; h < (size_t)(fx.h * fx.w); ++h) {
        const float v = heat[results[i].heatmap_offset + (int64_t)h];
        if (!(v >= -1e-6f && v <= 1.0f + 1e-6f)) {
          CHECK(v >= -1e-6f && v <= 1.0f + 1e-6f);
          break;
        }
      }
    }
    CHECK(seen[0] + seen[1] + seen[2] >= 2);  /* the fixture's thresholds split the images */
  }

  /* the same cycle through edge_run_with: identical results; classes = NULL is edge_run_with */
  edge_run_options_init(&ro);
  edge_batch_outputs_init(&out2);
  out2.results = results2;
  out2.results_capacity = MAX_IMAGES;
  CHECK_STATUS(edge_run_with(rt, images, (size_t)n, &ro, &out2), EDGE_OK);
  for (i = 0; i < n; ++i) CHECK(same_result(&results[i], &results2[i]));
  memset(results2, 0xff, sizeof results2);
  CHECK_STATUS(edge_run_classes(rt, images, (size_t)n, &ro, &out2, NULL), EDGE_OK);
  for (i = 0; i < n; ++i) CHECK(same_result(&results[i], &results2[i]));

  /* ---- an unusable image (4 channels) among good ones: it alone is review, without a class */
  images[1].channels = 4;
  out.heatmaps = NULL;
  CHECK_STATUS(edge_run_classes(rt, images, 3, NULL, &out, &co), EDGE_E_IMAGE);
  CHECK(results[1].verdict == EDGE_VERDICT_REVIEW && results[1].status == EDGE_E_IMAGE && top[1] == -1);
  for (c = 0; c < e.k; ++c) CHECK(isnan(probs[1 * e.k + c]));
  CHECK(top[0] == e.top[0] && top[2] == e.top[2] && results[2].verdict == e.verdict[2]);
  images[1].channels = fx.c;

  /* ---- refused calls: every result review, every top class -1, probabilities NaN */
  co.probabilities_capacity = (size_t)(n * e.k - 1);
  for (i = 0; i < n; ++i) results[i].verdict = EDGE_VERDICT_ACCEPT, top[i] = 5;
  CHECK_STATUS(edge_run_classes(rt, images, (size_t)n, NULL, &out, &co), EDGE_E_BUFFER_TOO_SMALL);
  for (i = 0; i < n; ++i) CHECK(results[i].verdict == EDGE_VERDICT_REVIEW && top[i] == -1 && isnan(probs[i * e.k]));
  co.probabilities_capacity = MAX_IMAGES * MAX_CLASSES;
  co.top_class_capacity = (size_t)(n - 1);
  CHECK_STATUS(edge_run_classes(rt, images, (size_t)n, NULL, &out, &co), EDGE_E_BUFFER_TOO_SMALL);
  co.top_class_capacity = MAX_IMAGES;
  co.struct_size = 8;
  for (i = 0; i < n; ++i) results[i].verdict = EDGE_VERDICT_ACCEPT;
  CHECK_STATUS(edge_run_classes(rt, images, (size_t)n, NULL, &out, &co), EDGE_E_INVALID_ARGUMENT);
  for (i = 0; i < n; ++i) CHECK(results[i].verdict == EDGE_VERDICT_REVIEW);
  edge_class_outputs_init(&co);
  co.probabilities = probs;
  co.probabilities_capacity = MAX_IMAGES * MAX_CLASSES;
  co.top_class = top;
  co.top_class_capacity = MAX_IMAGES;
  ro.color_order = 7;
  CHECK_STATUS(edge_run_classes(rt, images, (size_t)n, &ro, &out, &co), EDGE_E_INVALID_ARGUMENT);
  ro.color_order = EDGE_COLOR_RGB;

  /* ---- a bundle that is not a classifier: no probabilities written, every top class -1 */
  for (i = 0; i < MAX_IMAGES * MAX_CLASSES; ++i) probs[i] = 7.0f;
  for (i = 0; i < n; ++i) top[i] = 5;
  CHECK_STATUS(edge_run_classes(plain, images, (size_t)n, NULL, &out, &co), EDGE_OK);
  for (i = 0; i < n; ++i) CHECK(top[i] == -1 && results[i].status == EDGE_OK);
  for (i = 0; i < MAX_IMAGES * MAX_CLASSES; ++i)
    if (probs[i] != 7.0f) {
      CHECK(probs[i] == 7.0f);
      break;
    }

  /* ---- a closed handle */
  CHECK_STATUS(edge_close(rt), EDGE_OK);
  for (i = 0; i < n; ++i) top[i] = 5, results[i].verdict = EDGE_VERDICT_ACCEPT;
  CHECK_STATUS(edge_run_classes(rt, images, (size_t)n, NULL, &out, &co), EDGE_E_INVALID_HANDLE);
  for (i = 0; i < n; ++i) CHECK(top[i] == -1 && results[i].verdict == EDGE_VERDICT_REVIEW);
  edge_class_spec_init(&spec);
  CHECK_STATUS(edge_class_spec_get(rt, &spec), EDGE_E_INVALID_HANDLE);
  CHECK_STATUS(edge_class_name(rt, 0, name, sizeof name, &len), EDGE_E_INVALID_HANDLE);
  CHECK_STATUS(edge_close(plain), EDGE_OK);

  free(heat);
  free(fx.data);
  if (g_failures) {
    fprintf(stderr, "test_c_api_classes: %d check(s) failed\n", g_failures);
    return 1;
  }
  printf("test_c_api_classes: all checks passed (%d images, %d classes)\n", n, e.k);
  return 0;
}
