// DICOM images (PS3.3, PS3.5) read with DCMTK (libdcmtk-dev): single-frame MONOCHROME1,
// MONOCHROME2 and colour images, 8 to 16 bits stored, signed or unsigned, uncompressed or in any
// compressed transfer syntax DCMTK 3.6.7 decodes (JPEG baseline/extended/lossless via dcmjpeg,
// JPEG-LS via dcmjpls, RLE via dcmdata; not JPEG 2000), labelled by a CSV manifest.
//
// From stored values to 8-bit pixels (ReadDicomImage), monochrome images:
//   1. DCMTK extracts the stored values s (Bits Stored, High Bit, Pixel Representation, sign
//      extension, decompression) with its modality transform disabled
//      (CIF_IgnoreModalityTransformation);
//   2. modality LUT, done here in double precision: x = s * RescaleSlope + RescaleIntercept
//      (PS3.3 C.11.1; slope 1 and intercept 0 when absent). Files with a Modality LUT Sequence
//      instead are refused as bad files (not supported).
//   3. VOI: window centre c and width w come from DicomOptions when given (override), else from
//      the file's Window Center / Window Width (first value of each), with the file's VOI LUT
//      Function (PS3.3 C.11.2.1.3): with ymin = 0, ymax = 255,
//        LINEAR (the default, C.11.2.1.2.1):
//          x <= c - 0.5 - (w - 1) / 2  ->  0
//          x >  c - 0.5 + (w - 1) / 2  ->  255
//          else  y = ((x - (c - 0.5)) / (w - 1) + 0.5) * 255            (w >= 1; w = 1 is a step)
//        LINEAR_EXACT: x <= c - w/2 -> 0; x > c + w/2 -> 255; else y = (x - c) / w * 255 + 127.5
//        SIGMOID:      y = 255 / (1 + exp(-4 (x - c) / w))
//      and y is rounded to the nearest integer (halves up). The options' override always uses
//      LINEAR. With no window in the options or the file, x is mapped linearly from the image's
//      own [min, max] onto [0, 255]: y = round((x - min) * 255 / (max - min)) (0 if max = min).
//      A VOI LUT Sequence is not used (the window, or min/max, is).
//   4. MONOCHROME1 (0 = white) is inverted after the VOI: y -> 255 - y, so that 255 is always
//      white, as in MONOCHROME2 and in PNG exports.
// Colour images (RGB, YBR_*, PALETTE COLOR): DCMTK converts them to RGB and scales their samples
// to 8 bits (DicomImage::getOutputData(8)); no modality LUT or window applies to colour.
// Multi-frame images (Number of Frames > 1) are refused as bad files.
// Limits, checked on the header before DCMTK allocates the pixels: Rows x Columns at most
// options.load.max_image_pixels ([data] max_image_pixels); in an uncompressed transfer syntax,
// Pixel Data at least Rows x Columns x Samples per Pixel x Bits Allocated / 8 bytes long (so a
// few bytes cannot declare a gigapixel image). Compressed pixel data is bounded by the pixel
// limit (and DCMTK's own checks); running out of memory makes the file a bad file
// (image_loading.h).
//
// Manifests (LoadDicomManifest): CSV as in image_folder.h with the key column either
//   path,label[,split]               paths relative to the manifest's directory, or
//   sop_instance_uid,label[,split]   every file under DicomOptions::dicom_dir whose name ends in
//                                    .dcm or .dicom (case-insensitive) or has no extension is
//                                    indexed by its SOP Instance UID (0008,0018).
#ifndef FEDMED_COMMON_DATA_HOSPITAL_DICOM_H_
#define FEDMED_COMMON_DATA_HOSPITAL_DICOM_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/data/hospital/image_loading.h"
#include "common/data/image_set.h"
#include "common/data/preprocess.h"

namespace fedmed {

struct DicomOptions {
  LoadOptions load;  // threads, queue, bad-file fraction, class names
  // Directory searched (recursively) for sop_instance_uid manifests; relative to the manifest's
  // directory when relative. Unused with path manifests.
  std::string dicom_dir;
  // Window override for every file: both set or neither; width >= 1 (in modality units, e.g. HU).
  std::optional<double> window_center, window_width;
};

// Throws ConfigError naming the field when only one of window_center and window_width is set,
// either is not finite, or window_width < 1; and as ValidateLoadOptions.
void ValidateDicomOptions(const DicomOptions& options);

// Reads the DICOM file at `path` into 8-bit HWC (1 channel for monochrome, 3 for colour) as
// described above, using options.window_center/width when set. Thread-safe.
// Throws DataError (message without the path, which the caller adds) when the file cannot be read
// or parsed (e.g. truncated), has no pixel data, several frames, a Modality LUT Sequence, a window
// width < 1, more pixels than options.load.max_image_pixels or fewer Pixel Data bytes than its
// header declares (see Limits above), or pixel data DCMTK cannot decode (e.g. an unsupported
// transfer syntax).
DecodedImage ReadDicomImage(const std::string& path, const DicomOptions& options = {});

// SOP Instance UID -> file for every DICOM file under `dir` (see above), reading headers only, in
// `threads` threads (0 = one per core). When two files share a UID the first in path order is
// kept (a warning is logged). Files that cannot be parsed or lack the UID are logged and left
// out. Throws DataError if dir is not a readable directory.
std::map<std::string, std::string> IndexDicomDirectory(const std::string& dir, int threads = 0);

// Loads the DICOM images listed in the manifest at `csv_path`: the lines of `split` ("train",
// "val", "test"; "" = every line), preprocessed with `spec`; bad files as in image_loading.h
// (a UID with no file under dicom_dir is a bad file "no DICOM file with SOPInstanceUID ...").
// Throws DataError as ReadManifest and LoadImageItems; ConfigError for bad options, a bad spec,
// a split name other than "", train, val or test, or a sop_instance_uid manifest without
// dicom_dir.
ImageSet LoadDicomManifest(const std::string& csv_path, const std::string& split,
                           const PreprocessSpec& spec, const DicomOptions& options = {},
                           LoadReport* report = nullptr);

// A DICOM image to write (tests, benchmarks, conversion tools): Secondary Capture, one frame.
struct DicomWriteSpec {
  int64_t rows = 0, columns = 0;
  std::string photometric = "MONOCHROME2";  // "MONOCHROME1" | "MONOCHROME2" | "RGB"
  int bits_allocated = 16;                  // 8 or 16
  int bits_stored = 16;                     // 1..bits_allocated; High Bit = bits_stored - 1
  bool is_signed = false;                   // Pixel Representation 1 (two's complement)
  // rows * columns * samples stored values (RGB interleaved, Planar Configuration 0), each within
  // the range of bits_stored (signed or not).
  std::vector<int32_t> values;
  std::optional<double> rescale_slope, rescale_intercept;   // written when set
  std::optional<double> window_center, window_width;        // written when set
  std::string voi_lut_function;                             // written when not empty
  std::string sop_instance_uid;                             // generated when empty
  // "explicit_little" (uncompressed), "rle" (RLE Lossless) or "jpeg_ls_lossless".
  std::string transfer_syntax = "explicit_little";
};

// Writes `spec` as a DICOM Part 10 file at `path` with DCMTK. Throws DataError naming the path
// and DCMTK's reason when the spec is inconsistent (values count, range, bits) or the file cannot
// be encoded or written.
void WriteDicomFile(const std::string& path, const DicomWriteSpec& spec);

}  // namespace fedmed

#endif  // FEDMED_COMMON_DATA_HOSPITAL_DICOM_H_
