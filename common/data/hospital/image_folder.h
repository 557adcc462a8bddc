// PNG and JPEG images as hospitals export them: folders in the torchvision ImageFolder convention,
// or a CSV manifest. Decoding is stb_image's (libstb-dev); preprocessing is
// common/data/preprocess.h's; the bad-file policy, the background decoding and the memory held are
// image_loading.h's.
//
// Decoding (ReadImageFile):
//   - PNG (8- and 16-bit, gray, gray+alpha, RGB, RGBA, palette) and JPEG (baseline and
//     progressive; not CMYK, not 12-bit, not arithmetic-coded), told by their signatures (PNG:
//     89 50 4E 47 0D 0A 1A 0A; JPEG: FF D8 FF). Any other content is refused, so that no other
//     stb decoder (GIF, BMP, PSD, HDR, TGA, ...) ever sees a file; and a file named .png must be
//     a PNG, one named .jpg or .jpeg a JPEG (case-insensitive; other names may hold either).
//   - limits, checked on the header before pixels are allocated: a PNG's chunks must each fit in
//     the file (length, type, data, CRC) up to IEND; width x height at most
//     max_pixels (LoadOptions::max_image_pixels, [data] max_image_pixels); for a PNG, no more
//     pixels than its deflated bytes can hold (8 x 1032 pixels per byte: 1 bit per pixel at
//     deflate's largest ratio).
//   - 16-bit samples become 8-bit as round(v * 255 / 65535) (SixteenToEightBit in preprocess.h);
//     stb's own 8-bit load of a 16-bit PNG (v >> 8) is not used.
//   - alpha is dropped, not composited: gray+alpha -> gray, RGBA -> RGB.
//   - JPEG pixels come from stb's IDCT and chroma upsampling and can differ from libjpeg's
//     (Pillow's) by a few grey levels; PNG pixels are exact.
//
// Image folders (LoadImageFolder), as torchvision.datasets.ImageFolder (torchvision 0.14):
//   - the classes are the names of root's subdirectories (symbolic links followed; hidden ones
//     such as ".ipynb_checkpoints" included, as torchvision does), sorted by byte value as Python's
//     sorted() does on str (code points = UTF-8 byte order), and numbered 0..K-1 in that order;
//   - each class folder is walked recursively: its directories are visited in sorted order of
//     their full path text, as sorted(os.walk(class_dir, followlinks=True)) does, and within each
//     directory the file names are sorted; files whose names end in .png, .jpg or .jpeg
//     (case-insensitive) are taken, other files ignored (torchvision would also take .bmp, .tif,
//     .webp, ...: those are ignored here);
//   - images lying directly in root (outside any class folder) have no label: they are bad files.
//   The set's image i is the i-th good file in that order (classes in index order), so the order
//   equals torchvision's.
//
// CSV manifests (LoadImageManifest): a header line naming the columns, then one line per image,
// RFC 4180 (fields separated by ',', optionally in double quotes with "" for a quote; CRLF or LF;
// blank lines skipped; unquoted fields trimmed of spaces):
//   path,label[,split]        other columns are allowed and ignored; any column order
//   images/0001.png,pneumonia,train
// - path: relative to the manifest's directory, or absolute.
// - label: class indices (every label of the manifest a non-negative integer: num_classes = 1 +
//   the largest below kMaxClasses, common/data/image_set.h; a larger index is a bad file) or class names (otherwise: the distinct names of the whole manifest, sorted as
//   above, are classes 0..K-1); LoadOptions::class_names overrides both. An empty label is a bad
//   file ("no label"), as is one not in class_names ("unknown label").
// - split: "train", "val" or "test"; any other value is an error. Without a split column every
//   line is training data (val and test are empty).
// Classes are derived from all lines, whatever split is loaded, so the splits agree.
#ifndef FEDMED_COMMON_DATA_HOSPITAL_IMAGE_FOLDER_H_
#define FEDMED_COMMON_DATA_HOSPITAL_IMAGE_FOLDER_H_

#include <string>
#include <vector>

#include "common/data/hospital/image_loading.h"
#include "common/data/image_set.h"
#include "common/data/preprocess.h"

namespace fedmed {

// Decodes the PNG or JPEG file at `path` into 8-bit HWC with 1 (gray) or 3 (RGB) channels as
// described above. Thread-safe. Throws DataError "cannot read: <system reason>", "cannot decode:
// <stb's reason>", "cannot decode: the file is a PNG but its name says JPEG" (or not a PNG or
// JPEG at all), or "image of WxH = N pixels is larger than max_image_pixels M" (the caller adds
// the path).
DecodedImage ReadImageFile(const std::string& path, int64_t max_pixels = kDefaultMaxImagePixels);

// The class names of an ImageFolder root: its subdirectories' names, sorted as above.
// Throws DataError naming root if it is not a readable directory.
std::vector<std::string> ImageFolderClasses(const std::string& root);

// Loads the image folder `root` (root/<class>/<...>/<image>) as described above, preprocessed with
// `spec`. report (may be null) receives the bad files and the class names.
// Throws DataError naming root if it is not a directory, has no class folders (and no
// options.class_names) or holds no image file at all; a folder whose name is not in a non-empty
// options.class_names makes its files bad ("unknown class"). Throws as LoadImageItems for too many
// bad files; ConfigError for a bad spec or options.
ImageSet LoadImageFolder(const std::string& root, const PreprocessSpec& spec,
                         const LoadOptions& options = {}, LoadReport* report = nullptr);

// A parsed manifest (for the image and DICOM loaders).
struct Manifest {
  std::string path;                  // the CSV file
  std::string key_column;            // "path" or "sop_instance_uid"
  bool has_split = false;
  struct Row {
    int line = 0;                    // 1-based line number in the file
    std::string key;                 // the path (as written) or the SOPInstanceUID
    std::string label;               // as written, trimmed
    std::string split;               // "train" | "val" | "test"; "train" without a split column
  };
  std::vector<Row> rows;
};

// Reads the CSV at `csv_path`; `key_columns` are the accepted names of the key column, in order
// of preference (e.g. {"path"} or {"path", "sop_instance_uid"}). Throws DataError naming the file
// (and line) when it cannot be read, has no header, lacks a key or label column, has a row with
// fewer columns than the header or an unterminated quote, or a split value other than train, val
// or test.
Manifest ReadManifest(const std::string& csv_path, const std::vector<std::string>& key_columns);

// The class index of every row of `manifest` (-1 for an empty or unknown label, and for an integer
// label not below kMaxClasses, common/data/image_set.h, which does not count towards the classes)
// and the class names, following the label rules above. `class_names` non-empty overrides them.
std::vector<int64_t> ManifestLabels(const Manifest& manifest,
                                    const std::vector<std::string>& class_names,
                                    std::vector<std::string>* names_out);

// The bad-file reason for a row whose label has no class (ManifestLabels gave -1 for a non-empty
// label): "label \"N\" is not a class index below 65536 ..." for digits N >= kMaxClasses, else
// "unknown label \"x\"". Never throws.
std::string UnknownLabelReason(const std::string& label);

// Loads the images listed in the manifest at `csv_path` (header path,label[,split]): the lines of
// `split` ("train", "val" or "test"), or every line when split is "". Paths are relative to the
// manifest's directory. Throws DataError as ReadManifest, for a split name other than "", train,
// val or test, and as LoadImageItems; ConfigError for a bad spec or options. An empty selection
// gives an empty set (with num_classes set).
ImageSet LoadImageManifest(const std::string& csv_path, const std::string& split,
                           const PreprocessSpec& spec, const LoadOptions& options = {},
                           LoadReport* report = nullptr);

}  // namespace fedmed

#endif  // FEDMED_COMMON_DATA_HOSPITAL_IMAGE_FOLDER_H_
