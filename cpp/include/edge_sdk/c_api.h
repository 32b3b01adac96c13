/* edge-sdk C ABI: the stable interface for embedding the runtime in machine-control software.
 *
 * Rules of the boundary (see docs/C_API.md for the full contract):
 * - Plain C: no C++ exceptions, STL types or ownership transfer cross it. Every function returns an
 *   edge_status; on failure a message naming the argument, file or field is available from
 *   edge_last_error() on the same thread.
 * - Handles are opaque tokens, not addresses: a closed, never-opened or corrupted handle gives
 *   EDGE_E_INVALID_HANDLE, never a crash, and a stale handle never aliases a newer runtime.
 * - Output buffers are owned by the caller; the library never returns memory the caller must free.
 * - Structs passed by pointer start with `struct_size` (set it to sizeof, e.g. with the *_init
 *   helpers below), so later minor versions can add fields at the end. The element types of arrays
 *   (edge_image, edge_image_result, edge_region_result) are frozen for ABI major version 1.
 * - Fail-safe: every image of a batch gets a verdict; an image the runtime could not judge (error,
 *   non-finite score, deadline) is EDGE_VERDICT_REVIEW, never accept. EDGE_VERDICT_REVIEW is 0, so
 *   zero-initialized result memory reads as "review".
 */
#ifndef EDGE_SDK_C_API_H
#define EDGE_SDK_C_API_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(_WIN32)
#if defined(EDGE_SDK_BUILDING_LIBRARY)
#define EDGE_API __declspec(dllexport)
#else
#define EDGE_API __declspec(dllimport)
#endif
#else
#define EDGE_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ABI version: major << 16 | minor. A program built against headers of minor version m runs with
 * a library of the same major version and minor >= m. */
#define EDGE_ABI_VERSION_MAJOR 1
#define EDGE_ABI_VERSION_MINOR 3
#define EDGE_ABI_VERSION ((EDGE_ABI_VERSION_MAJOR << 16) | EDGE_ABI_VERSION_MINOR)

typedef enum edge_status {
  EDGE_OK = 0,
  EDGE_E_INVALID_ARGUMENT = 1, /* null pointer, wrong size or struct_size, bad option value */
  EDGE_E_INVALID_HANDLE = 2,   /* closed, never opened, or not an edge_runtime */
  EDGE_E_BUFFER_TOO_SMALL = 3, /* an output buffer is smaller than needed (size reported) */
  EDGE_E_BUNDLE = 4,           /* bundle missing, corrupt, wrong checksum, inconsistent */
  EDGE_E_BACKEND = 5,          /* ONNX Runtime missing/too old, provider unavailable, inference failed */
  EDGE_E_UNSUPPORTED = 6,      /* backend not available in this build, or library ABI too old */
  EDGE_E_IMAGE = 7,            /* an image cannot be used (null data, size, channels, dtype) */
  EDGE_E_NUMERIC = 8,          /* the model produced a non-finite score */
  EDGE_E_DEADLINE = 9,         /* the cycle's deadline passed before the image was judged */
  EDGE_E_OUT_OF_MEMORY = 10,
  EDGE_E_INTERNAL = 11,        /* a bug: please report with the message */
  EDGE_E_CAPACITY = 12         /* ABI 1.2: a bounded table is full (edge_run_vote: open runs) */
} edge_status;

/* Zero is review: memory the library did not write never reads as accept. */
typedef enum edge_verdict {
  EDGE_VERDICT_REVIEW = 0, /* not judged, or too close to the threshold to decide: divert/recheck */
  EDGE_VERDICT_ACCEPT = 1, /* judged good */
  EDGE_VERDICT_REJECT = 2  /* judged anomalous */
} edge_verdict;

/* Why a verdict is review (bit flags; 0 when the verdict is accept or reject). */
enum {
  EDGE_REVIEW_ERROR = 1u << 0,     /* the image could not be processed (see the result's status) */
  EDGE_REVIEW_NONFINITE = 1u << 1, /* the score (or a region score) is NaN or infinite */
  EDGE_REVIEW_BAND = 1u << 2,      /* the normalized score lies inside the uncertainty band */
  EDGE_REVIEW_DEADLINE = 1u << 3,  /* not judged before the cycle's deadline */
  EDGE_REVIEW_REGION = 1u << 4     /* a region was review and no region was reject */
};

typedef enum edge_dtype { EDGE_DTYPE_UINT8 = 1, EDGE_DTYPE_FLOAT32 = 2 } edge_dtype;

/* ABI 1.2: channel order of 3-channel images (edge_run_options.color_order). BGR is OpenCV's order
 * (cv::imread, cv::VideoCapture): such an image is read in place, channel 2 - c where an RGB image
 * has channel c, with the same results as the RGB image and no conversion. Gray images read the
 * same either way. */
typedef enum edge_color_order { EDGE_COLOR_RGB = 0, EDGE_COLOR_BGR = 1 } edge_color_order;

/* An opened bundle with its execution contexts. Safe to use from several threads at once. */
typedef struct edge_runtime edge_runtime;

/* ---- library ------------------------------------------------------------------------------- */

/* EDGE_ABI_VERSION of the loaded library. */
EDGE_API uint32_t edge_abi_version(void);
/* SDK version string, e.g. "0.1.0" (static storage). */
EDGE_API const char* edge_sdk_version(void);
/* Message of the last failed call on this thread ("" when the last call succeeded). Valid until the
 * next edge_* call on this thread; copy it to keep it. Never NULL. */
EDGE_API const char* edge_last_error(void);
/* "EDGE_OK", "EDGE_E_BUNDLE", ... (static storage; "unknown status" for other values). */
EDGE_API const char* edge_status_name(int status);
/* "review", "accept", "reject" (static storage; "invalid" for other values). */
EDGE_API const char* edge_verdict_name(int verdict);

/* ---- open / close ---------------------------------------------------------------------------- */

typedef struct edge_open_options {
  uint32_t struct_size;            /* sizeof(edge_open_options) */
  const char* device;              /* "cpu" (NULL = "cpu"), "cuda" or "cuda:N" */
  const char* backend;             /* "onnxruntime" (NULL = default), "openvino" (device "cpu"; OpenVINO's own
                                      device: openvino_device), "tensorrt", or "auto" (TensorRT where the
                                      build has it and an engine matches this GPU; on the CPU, ONNX Runtime
                                      or OpenVINO, whichever runs the network faster, timed at open) */
  const char* precision;           /* network variant: "fp32" (NULL), "fp16", "int8", "bf16"
                                      (backend "openvino" or "auto" only) */
  const char* onnxruntime_library; /* path of libonnxruntime.so; NULL = search (env
                                      EDGE_SDK_ONNXRUNTIME_LIB, the onnxruntime wheel, the loader path) */
  int32_t threads;                 /* intra-op threads of each context's network; 0 = library default;
                                      at most 4x the hardware threads (and 256) */
  int32_t contexts;                /* execution contexts = edge_run calls that run in parallel; 0 = 1 */
  int32_t max_batch;               /* images (frames) per chunk, 0 = 1. A batch is judged in order, in
                                      chunks of max_batch images, each one network call of
                                      max_batch * max(1, region_count) units; a finished chunk keeps its
                                      verdicts when the deadline passes, so 1 gives the finest deadline
                                      granularity and larger values the best throughput on a GPU. */
  int32_t heatmaps;                /* 1: compute heatmaps (needed to pass outputs->heatmaps); 0 (default):
                                      scores and verdicts only, faster */
  double deadline_ms;              /* default cycle budget of edge_run; 0 = no deadline */
  double review_band;              /* half-width of the review band around the threshold in normalized
                                      score units (threshold = 0.5); < 0 = the bundle's value */
  /* ABI 1.1: */
  const char* trusted_keys;        /* ':'-separated Ed25519 public keys (PEM files or folders of *.pem) the
                                      bundle's signature.json must verify against, besides those of the
                                      environment variable EDGE_SDK_TRUSTED_KEYS; NULL = the environment's
                                      only. With no key configured anywhere signatures are not checked;
                                      with one, an unsigned or wrongly signed bundle is refused. */
  /* ABI 1.2: */
  const char* openvino_library;    /* path of libopenvino_c.so.<version>; NULL = search (env
                                      EDGE_SDK_OPENVINO_LIB, the openvino wheel beside edge_sdk, the loader
                                      path) */
  const char* openvino_device;     /* backend "openvino": OpenVINO's device, "CPU" (NULL), "GPU", "NPU" or
                                      "AUTO", where OpenVINO finds it */
} edge_open_options;

static inline void edge_open_options_init(edge_open_options* o) {
  memset(o, 0, sizeof(*o));
  o->struct_size = (uint32_t)sizeof(*o);
  o->review_band = -1.0;
}

/* Loads and validates the bundle (a directory or an uncompressed .tar of one), creates the
 * contexts and warms them up. options may be NULL (defaults). On failure *out is set to NULL.
 * Opening the same bundle again shares its read-only data (arrays, network bytes) with the
 * runtimes already open. */
EDGE_API edge_status edge_open(const char* bundle_path, const edge_open_options* options, edge_runtime** out);

/* Closes a runtime: later calls with the handle give EDGE_E_INVALID_HANDLE. Waits for edge_run calls
 * in progress on other threads to return (each returns within its deadline) and for the contexts'
 * workers to finish the network call they are in (at most one chunk). NULL is accepted (no-op). */
EDGE_API edge_status edge_close(edge_runtime* rt);

/* ---- specifications ---------------------------------------------------------------------------- */

typedef struct edge_input_spec {
  uint32_t struct_size;
  int32_t height, width, channels; /* network input size; channels 3 = RGB, 1 = gray */
  int32_t accepts_uint8, accepts_float32;
  int32_t resize_on_mismatch;      /* 1: other image sizes are resized; 0: they are an error */
  float scale;                     /* raw pixel * scale, then (v - mean[c]) / std[c] */
  float mean[3], std[3];
  double value_min, value_max;     /* expected range of raw pixel values */
  /* ABI 1.3: input.acquisition.frames, the K frames of one acquisition (edge_run_acquisition);
   * 0 when the bundle does not declare one */
  int32_t acquisition_frames;
  int32_t reserved;
} edge_input_spec;

typedef struct edge_output_spec {
  uint32_t struct_size;
  int32_t region_count;                  /* region results per image (0 when the bundle has none) */
  int32_t frame_width, frame_height;     /* with regions: the frame size they are cut from */
  double threshold;                      /* raw-score decision threshold (score >= threshold rejects) */
  double review_band;                    /* effective band half-width (normalized units) */
  int32_t contexts, max_batch, heatmaps; /* as opened */
  double deadline_ms;                    /* default deadline as opened (0 = none) */
  int32_t group_count;                   /* ABI 1.2: region groups (regions[].group, e.g. vials) */
  int32_t reserved;
  /* ABI 1.3: input.tiling. With tiling the regions are the generated tiles (region_count of them,
   * row-major, each with the calibration threshold; edge_region_spec_get gives each rectangle), an
   * image's score is the largest tile score judged once with the bundle's rule, and its heatmap
   * (outputs->heatmaps) is the tiles' maps stitched at frame resolution. */
  int32_t tile_merge;                    /* EDGE_TILE_MERGE_*: 0 no tiling, 1 mean, 2 max over overlaps */
  int32_t tile_height, tile_width;       /* tile size (frame pixels) */
  int32_t tile_stride_y, tile_stride_x;  /* step between tile origins; the last tile of a row or column
                                            is aligned to the frame's edge */
  int32_t reserved2;
} edge_output_spec;

/* edge_output_spec.tile_merge (ABI 1.3) */
enum { EDGE_TILE_MERGE_NONE = 0, EDGE_TILE_MERGE_MEAN = 1, EDGE_TILE_MERGE_MAX = 2 };

typedef struct edge_region_spec {
  uint32_t struct_size;
  int32_t x, y, width, height; /* rectangle of the frame, in frame pixels; cut out by the runtime,
                                  resized to the network input and judged on its own */
  double threshold;            /* raw-score threshold of the region */
  int32_t group;               /* ABI 1.2: index of its group (edge_group_name), -1 for none */
  int32_t reserved;
} edge_region_spec;

static inline void edge_input_spec_init(edge_input_spec* s) { memset(s, 0, sizeof(*s)); s->struct_size = (uint32_t)sizeof(*s); }
static inline void edge_output_spec_init(edge_output_spec* s) { memset(s, 0, sizeof(*s)); s->struct_size = (uint32_t)sizeof(*s); }
static inline void edge_region_spec_init(edge_region_spec* s) { memset(s, 0, sizeof(*s)); s->struct_size = (uint32_t)sizeof(*s); }

EDGE_API edge_status edge_input_spec_get(const edge_runtime* rt, edge_input_spec* out);
EDGE_API edge_status edge_output_spec_get(const edge_runtime* rt, edge_output_spec* out);
EDGE_API edge_status edge_region_spec_get(const edge_runtime* rt, int32_t index, edge_region_spec* out);

/* Strings are copied into caller buffers, NUL-terminated. *length (if not NULL) receives the length
 * without the NUL; when capacity <= length the call returns EDGE_E_BUFFER_TOO_SMALL and writes
 * nothing but *length, so a first call with capacity 0 sizes the buffer. */
EDGE_API edge_status edge_region_name(const edge_runtime* rt, int32_t index, char* buffer, size_t capacity, size_t* length);
/* JSON object: sdk_version, abi_version, bundle, model_type, model_name, backend (a description of the
 * network backend and execution provider), device, precision. */
EDGE_API edge_status edge_describe(const edge_runtime* rt, char* buffer, size_t capacity, size_t* length);

/* ---- running a cycle --------------------------------------------------------------------------- */

typedef struct edge_image {
  const void* data;  /* pixel (row 0, column 0); channels interleaved (HWC), RGB order (BGR: see
                        edge_run_with) */
  int32_t height, width, channels; /* channels 1 or 3 */
  int32_t dtype;     /* edge_dtype */
  int64_t row_stride; /* bytes from one row to the next; 0 = packed. A region of a larger frame is
                         passed without copying: data = &frame[y][x], row_stride = the frame's. */
} edge_image;

typedef struct edge_image_result {
  float score;      /* raw anomaly score; NaN when not judged */
  float normalized; /* calibrated score in [0, 1], 0.5 = threshold; NaN when not judged */
  int32_t verdict;  /* edge_verdict */
  int32_t status;   /* EDGE_OK, or why the image was not judged (EDGE_E_IMAGE, EDGE_E_DEADLINE, ...) */
  uint32_t review;  /* EDGE_REVIEW_* flags when verdict is review */
  int32_t heatmap_height, heatmap_width; /* this image's heatmap (0 x 0 when heatmaps were not asked for) */
  uint32_t reserved;
  int64_t heatmap_offset; /* floats from outputs->heatmaps to this image's heatmap (row-major) */
} edge_image_result;

typedef struct edge_region_result {
  float score;      /* the region's raw score; NaN when not judged */
  float normalized; /* normalized against the region's threshold (0.5 = threshold); NaN when not judged */
  int32_t verdict;
  uint32_t review;
} edge_region_result;

typedef struct edge_batch_outputs {
  uint32_t struct_size;
  /* Caller-owned buffers. results is required; regions and heatmaps may be NULL (not wanted). */
  edge_image_result* results;  size_t results_capacity;  /* >= count */
  edge_region_result* regions; size_t regions_capacity;  /* >= count * region_count, image-major */
  float* heatmaps;             size_t heatmaps_capacity; /* floats, >= edge_heatmap_floats(); needs a
                                                            runtime opened with heatmaps = 1. Each image's
                                                            raw anomaly map at its own size (offset and size
                                                            in its result); NaN where not judged. */
  /* Written by edge_run: */
  double elapsed_ms;          /* wall time of the call */
  uint32_t judged;            /* images with a model verdict (accept, reject or band review) */
  uint32_t not_judged;        /* images marked review because of an error or the deadline */
  int32_t deadline_exceeded;  /* 1 when the deadline passed before every image was judged */
  int32_t reserved;
  /* ABI 1.2, optional (NULL = not wanted): one result per image and region group (a vial of a
   * strip), image-major: the largest normalized score of the group's regions, that region's raw
   * score, and the product rule over the group's regions (a rejected region rejects the group;
   * accepted only when all its regions were); review flags EDGE_REVIEW_REGION (or the image's
   * EDGE_REVIEW_DEADLINE / EDGE_REVIEW_ERROR) when review. */
  edge_region_result* groups; size_t groups_capacity;    /* >= count * group_count */
} edge_batch_outputs;

/* Floats the heatmaps of these images need (raw anomaly maps at each image's own size, one after
 * the other in image order). */
EDGE_API edge_status edge_heatmap_floats(const edge_runtime* rt, const edge_image* images, size_t count, size_t* floats);

static inline void edge_batch_outputs_init(edge_batch_outputs* o) { memset(o, 0, sizeof(*o)); o->struct_size = (uint32_t)sizeof(*o); }

/* Judges `count` images (count >= 1) in order and writes one result per image.
 *
 * deadline_ms: the cycle budget, measured from entry: < 0 uses the runtime's default (options), 0
 * means none, > 0 milliseconds. With a deadline the call returns by then (plus the time to copy the
 * results out and the operating system's wake-up latency) even when the network is still running:
 * finished images keep their verdicts, the others are review with status EDGE_E_DEADLINE, and the call
 * returns EDGE_E_DEADLINE. Without a deadline it returns when every image is judged.
 *
 * Return value: EDGE_OK when every image was judged. Otherwise the first problem: EDGE_E_DEADLINE,
 * or the status of the first image not judged (EDGE_E_IMAGE, EDGE_E_NUMERIC, EDGE_E_BACKEND, ...),
 * with the message in edge_last_error(); each result's status says which images were affected.
 * Whenever outputs->results is usable (not NULL, capacity >= count) every entry is written, also on
 * errors of the call itself (e.g. a NULL images pointer): verdict review, never accept. A call
 * refused because the capacity is below count, or because struct_size is 0 (outputs not
 * initialized with edge_batch_outputs_init), still writes review into the min(count, capacity)
 * entries that exist before returning EDGE_E_INVALID_ARGUMENT.
 *
 * Thread safety: any number of threads may call edge_run on the same runtime at once. Up to
 * `contexts` calls run in parallel; more wait for a free context (the wait counts against the
 * deadline). Results do not depend on which context ran a call or on concurrency. */
EDGE_API edge_status edge_run(edge_runtime* rt, const edge_image* images, size_t count, double deadline_ms,
                              edge_batch_outputs* outputs);

/* ABI 1.2: the options of one cycle. */
typedef struct edge_run_options {
  uint32_t struct_size; /* sizeof(edge_run_options) */
  int32_t color_order;  /* edge_color_order of the cycle's 3-channel images; EDGE_COLOR_RGB (0) by default */
  double deadline_ms;   /* as edge_run's argument: < 0 (default) the runtime's, 0 none, > 0 milliseconds */
} edge_run_options;

static inline void edge_run_options_init(edge_run_options* o) {
  memset(o, 0, sizeof(*o));
  o->struct_size = (uint32_t)sizeof(*o);
  o->deadline_ms = -1.0;
}

/* edge_run with the cycle's options (NULL = defaults: RGB, the runtime's deadline); everything else,
 * the fail-safe results included, is edge_run's. A color_order other than EDGE_COLOR_RGB or
 * EDGE_COLOR_BGR refuses the call with EDGE_E_INVALID_ARGUMENT (every usable result review). Needs
 * a library of ABI 1.2 or later (edge_abi_version() >= EDGE_ABI_VERSION; the C++ wrapper checks). */
EDGE_API edge_status edge_run_with(edge_runtime* rt, const edge_image* images, size_t count,
                                   const edge_run_options* options, edge_batch_outputs* outputs);

/* Name of region group `index` (0 <= index < group_count), as edge_region_name. */
EDGE_API edge_status edge_group_name(const edge_runtime* rt, int32_t index, char* buffer, size_t capacity, size_t* length);

/* ---- rank-filter images of an acquisition (ABI 1.2) -------------------------------------------- */

/* A vial-line acquisition is k frames of the part while it is handled; two more images are made by
 * a rank filter over them: per pixel the lowest value (what moved between frames, bubbles and
 * drops, shows here) and the highest (only what is fixed to the part). Writes those two images, of
 * the frames' size, channels and dtype, packed (height * width * channels values), into lo and hi;
 * the host then judges the k + 2 images (edge_run). Frames may be strided views; 2 <= k <= 1024;
 * frames that differ in size, channels or dtype are refused (EDGE_E_IMAGE, naming the frame). */
EDGE_API edge_status edge_frame_extremes(const edge_image* frames, size_t k, void* lo, void* hi);

/* ABI 1.3: judges an acquisition as the runtime's input policy says (input.acquisition.frames = K):
 * its k frames and the two rank-filter images made from them (edge_frame_extremes), k + 2 results
 * in outputs: frames first, then the lowest, then the highest. k must equal the bundle's K when it
 * declares one (EDGE_E_INVALID_ARGUMENT otherwise, every usable result review); any 2..1024 when it
 * does not. Everything else, the fail-safe results included, is edge_run_with's (options may be
 * NULL); outputs->results_capacity (and the other buffers) must hold k + 2 images. */
EDGE_API edge_status edge_run_acquisition(edge_runtime* rt, const edge_image* frames, size_t k,
                                          const edge_run_options* options, edge_batch_outputs* outputs);

/* ---- the run vote of a product acquired n times (ABI 1.2) ------------------------------------- */

/* A product is acquired n times (the vial line: each strip 10 times); each acquisition is judged by
 * edge_run, and the host reports its verdict here under the product's id. The run is decided by the
 * bundle's decision.run rule (k of n, default 7 of 10): reject when at least k acquisitions were
 * rejected; accept only when all n were judged (accept or reject) and fewer than k rejected;
 * otherwise review: a missing or review acquisition never lets a run pass. A run is decided when its
 * n-th acquisition arrives, or by edge_run_vote_close (then missing acquisitions count as not
 * judged); a decided run is forgotten. Thread-safe. At most 2^20 runs are open at once (a new
 * product beyond that: EDGE_E_CAPACITY; no open run is dropped). */
typedef struct edge_run_status {
  uint32_t struct_size; /* sizeof(edge_run_status) */
  int32_t decided;      /* 1 once the run is decided */
  int32_t verdict;      /* edge_verdict of the run; EDGE_VERDICT_REVIEW until decided */
  int32_t rejects, accepts, reviews, missing; /* acquisitions so far by verdict; missing = n - given */
} edge_run_status;

static inline void edge_run_status_init(edge_run_status* s) {
  memset(s, 0, sizeof(*s));
  s->struct_size = (uint32_t)sizeof(*s);
}

/* Records acquisition `acquisition` (0 <= acquisition < n) of `product` (a NUL-terminated id of 1 to
 * 256 bytes) with its verdict (edge_verdict; any other code counts as review). EDGE_E_INVALID_ARGUMENT
 * for a bad id or index, or an acquisition given twice; EDGE_E_CAPACITY when too many runs are open. */
EDGE_API edge_status edge_run_vote(edge_runtime* rt, const char* product, int32_t acquisition, int32_t verdict,
                                   edge_run_status* out);
/* Decides `product` now (EDGE_E_INVALID_ARGUMENT when it has no open run). */
EDGE_API edge_status edge_run_vote_close(edge_runtime* rt, const char* product, edge_run_status* out);
/* The bundle's rule: k of n. */
EDGE_API edge_status edge_run_vote_rule(const edge_runtime* rt, int32_t* k, int32_t* n);

/* ==== supervised classifiers: class probabilities and the top class (ABI 1.2) ====================
 *
 * A bundle of post-processing kind "classifier" judges each image on K class probabilities, one of
 * them the good class: reject when the most probable defect class reaches reject_threshold (checked
 * first), accept when the good class reaches accept_threshold, otherwise review: the image is
 * ejected for a second look (its result's review flags say EDGE_REVIEW_BAND). Its score is
 * 1 - P(good) and its heatmap the class activation map of the most probable defect class, in [0, 1].
 * Every other bundle has class_count 0. Implemented in c_api_classes.cpp. */

typedef struct edge_class_spec {
  uint32_t struct_size;    /* sizeof(edge_class_spec) */
  int32_t class_count;     /* K (2..256); 0 when the bundle is not a classifier */
  int32_t good_class;      /* index of the good class; -1 when class_count is 0 */
  double accept_threshold; /* accept when P(good) >= this (0 when class_count is 0) */
  double reject_threshold; /* reject when the most probable defect class's probability >= this */
} edge_class_spec;

static inline void edge_class_spec_init(edge_class_spec* s) { memset(s, 0, sizeof(*s)); s->struct_size = (uint32_t)sizeof(*s); }

/* The classes of the bundle (class_count 0 for a bundle that is not a classifier). */
EDGE_API edge_status edge_class_spec_get(const edge_runtime* rt, edge_class_spec* out);
/* Name of class `index` (0 <= index < class_count), copied into the caller's buffer as
 * edge_region_name copies (a first call with capacity 0 gives the length). */
EDGE_API edge_status edge_class_name(const edge_runtime* rt, int32_t index, char* buffer, size_t capacity, size_t* length);

typedef struct edge_class_outputs {
  uint32_t struct_size;  /* sizeof(edge_class_outputs) */
  /* Caller-owned buffers; either may be NULL (not wanted). */
  float* probabilities;  size_t probabilities_capacity; /* floats, >= count * class_count, image-major;
                                                            NaN rows where not judged */
  int32_t* top_class;    size_t top_class_capacity;     /* >= count: the most probable class, -1 where
                                                            not judged */
} edge_class_outputs;

static inline void edge_class_outputs_init(edge_class_outputs* o) { memset(o, 0, sizeof(*o)); o->struct_size = (uint32_t)sizeof(*o); }

/* edge_run_with plus, for each image, its class probabilities and top class into `classes` (NULL:
 * exactly edge_run_with). Everything else, the fail-safe results included, is edge_run_with's; the
 * class outputs too are always written where they exist (NaN / -1 for an image not judged, also
 * when the call itself fails). A buffer of `classes` below its needed size refuses the call with
 * EDGE_E_BUFFER_TOO_SMALL (every usable result review). For a bundle that is not a classifier the
 * probabilities are not written and every top class is -1. */
EDGE_API edge_status edge_run_classes(edge_runtime* rt, const edge_image* images, size_t count,
                                      const edge_run_options* options, edge_batch_outputs* outputs,
                                      edge_class_outputs* classes);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* EDGE_SDK_C_API_H */
