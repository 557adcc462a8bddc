// What the image-file loaders (image_folder.h, dicom.h) share: options, the report of bad files,
// the bad-file policy, and the parallel decoding engine.
//
// Bad files. A file that cannot be read or decoded, whose channels or size do not fit the set
// (see PreprocessSpec: with channels or image_size 0 every image must match the first good one),
// or that has no label or an unknown label is reported once (logged as a warning with its path and
// the reason, and listed in LoadReport::skipped) and left out. When more than
// max_bad_fraction of the files considered are bad, the load is refused with a DataError that says
// how many are bad and lists the first few with their reasons.
//
// Limits. A file whose header declares more than max_image_pixels pixels (width x height, or
// rows x columns) is a bad file, refused before its pixels are allocated; the decoders also check
// the declared size against what the file can hold where the format allows it (image_folder.h,
// dicom.h). A decoder that runs out of memory (std::bad_alloc) makes that file a bad file ("out
// of memory decoding it"), not the end of the load.
//
// Decoding runs in decode_threads background threads that feed a bounded queue of
// queue_capacity decoded images; the calling thread drains it into the ImageSet. The result does
// not depend on the number of threads or their timing: image i of the set is the i-th good file
// in the loader's documented order.
//
// Memory: the whole set is held in memory, decoded and preprocessed at the model's input size
// (uint8): N * S * S * C bytes for N images of S x S pixels with C channels (e.g. 100,000 RGB
// images at 224 px: 15 GB; at 64 px: 1.2 GB). This is the cache: files are decoded once per load,
// and training reads from memory. When image_size and channels are both fixed, images are written
// straight into the set's buffer; otherwise (size or channels "keep") they are held one by one and
// copied once at the end (twice the memory for a moment).
#ifndef FEDMED_COMMON_DATA_HOSPITAL_IMAGE_LOADING_H_
#define FEDMED_COMMON_DATA_HOSPITAL_IMAGE_LOADING_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/data/image_set.h"
#include "common/data/preprocess.h"

namespace fedmed {

struct LoadOptions {
  // Background decoding threads; 0 = std::thread::hardware_concurrency() (at least 1).
  int decode_threads = 0;
  // Decoded images that may wait between the decoding threads and the consumer, >= 1.
  int queue_capacity = 64;
  // The most bad files tolerated, as a fraction of the files considered, in [0, 1]. 0 refuses
  // any bad file; 1 never refuses (a load with no good file at all is still refused).
  double max_bad_fraction = 0.05;
  // When not empty: the class names in index order (class i is class_names[i]); otherwise the
  // loader derives them (sorted folder names, or the manifest's labels). Lets several splits or
  // sites share one class list.
  std::vector<std::string> class_names;
  // The most pixels (width x height) one image may declare, >= 1; larger files are bad files
  // (default kDefaultMaxImagePixels, image_set.h; the [data] key max_image_pixels).
  int64_t max_image_pixels = kDefaultMaxImagePixels;
};

struct BadFile {
  std::string path;    // as the loader found or was given it
  std::string reason;  // e.g. "cannot decode: bad zlib header", "no label"
};

struct LoadReport {
  int64_t loaded = 0;              // images in the returned set
  std::vector<BadFile> skipped;    // in the loader's order
  std::vector<std::string> class_names;  // index -> name; "0", "1", ... for integer labels
};

// Throws ConfigError naming the field when decode_threads < 0, queue_capacity < 1,
// max_bad_fraction is not in [0, 1] or max_image_pixels < 1.
void ValidateLoadOptions(const LoadOptions& options);

// One file to load: its path and class index, or a reason it is bad before decoding (no label,
// unknown label), in which case label is ignored and the file is not read.
struct LoadItem {
  std::string path;
  int64_t label = -1;
  std::string bad_reason;  // empty = decode it
};

// The engine behind the loaders. Decodes items[i].path with `decode` (in background threads;
// `decode` must be thread-safe and throw DataError, whose message becomes the reason, for a bad
// file; a std::bad_alloc from `decode` or the preprocessing also makes the file bad), applies ApplyPreprocess(spec), checks size and channels (see above), and returns the good
// images in item order, with labels, num_classes and the spec's normalisation; bad files are
// logged (spdlog warning "<what>: skipping <path>: <reason>") and added to report->skipped
// (report may be null). `what` names the source in messages (e.g. "image folder /data/xray").
// Throws DataError "<what>: N of M files are bad (more than max_bad_fraction ...): <first 5
// with reasons> ..." above the threshold or when no file is good; ConfigError for bad options or
// spec; and rethrows any non-DataError exception of `decode`.
ImageSet LoadImageItems(const std::vector<LoadItem>& items, int64_t num_classes,
                        const PreprocessSpec& spec, const LoadOptions& options,
                        const std::function<DecodedImage(const std::string& path)>& decode,
                        const std::string& what, LoadReport* report);

// Runs produce(0) .. produce(count - 1) in `threads` background threads (0 = hardware
// concurrency) and hands each result to consume(index, result) on the calling thread, in
// completion order, through a queue of at most `capacity` waiting results. If produce or consume
// throws, the workers stop and the first exception is rethrown here after they have joined.
template <typename T>
void ParallelProduce(int64_t count, int threads, int capacity,
                     const std::function<T(int64_t)>& produce,
                     const std::function<void(int64_t, T&&)>& consume);

}  // namespace fedmed

#include "common/data/hospital/image_loading_inl.h"

#endif  // FEDMED_COMMON_DATA_HOSPITAL_IMAGE_LOADING_H_
