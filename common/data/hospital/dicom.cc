#include "common/data/hospital/dicom.h"

#include <dcmtk/config/osconfig.h>  // must come first
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmdata/dcrleerg.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/dcmimage/diregist.h>  // colour images
#include <dcmtk/dcmimgle/dcmimage.h>
#include <dcmtk/dcmimgle/dipixel.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/dcmjpls/djencode.h>
#include <dcmtk/oflog/oflog.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <mutex>

#include "common/data/hospital/image_folder.h"
#include "common/util/error.h"

namespace fedmed {

namespace fs = std::filesystem;

namespace {

// Registers DCMTK's decoders (and the encoders the writer uses) once per process and quiets
// DCMTK's own logging (its warnings would duplicate our bad-file reports).
void InitDcmtk() {
  static std::once_flag once;
  std::call_once(once, [] {
    OFLog::configure(OFLogger::ERROR_LOG_LEVEL);
    DJDecoderRegistration::registerCodecs();
    DJLSDecoderRegistration::registerCodecs();
    DcmRLEDecoderRegistration::registerCodecs();
    DJLSEncoderRegistration::registerCodecs();
    DcmRLEEncoderRegistration::registerCodecs();
  });
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Number(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.10g", v);
  return buffer;
}

template <typename T>
void ToDouble(const void* data, size_t n, std::vector<double>* out, double slope,
              double intercept) {
  const T* p = static_cast<const T*>(data);
  out->resize(n);
  for (size_t i = 0; i < n; ++i) (*out)[i] = static_cast<double>(p[i]) * slope + intercept;
}

uint8_t Round255(double y) {
  return static_cast<uint8_t>(std::clamp(std::floor(y + 0.5), 0.0, 255.0));
}

// The VOI LUT Functions of PS3.3 C.11.2.1.3 onto [0, 255] (unrounded).
double Voi(double x, double c, double w, const std::string& function) {
  if (function == "SIGMOID") return 255.0 / (1.0 + std::exp(-4.0 * (x - c) / w));
  if (function == "LINEAR_EXACT") {
    if (x <= c - w / 2) return 0;
    if (x > c + w / 2) return 255;
    return ((x - c) / w + 0.5) * 255.0;
  }
  if (x <= c - 0.5 - (w - 1) / 2) return 0;
  if (x > c - 0.5 + (w - 1) / 2) return 255;
  return ((x - (c - 0.5)) / (w - 1) + 0.5) * 255.0;
}

bool IsDicomName(const fs::path& p) {
  const std::string ext = Lower(p.extension().string());
  return ext == ".dcm" || ext == ".dicom" || ext.empty();
}

// The limits checked before DCMTK allocates the pixels: Rows x Columns at most `max_pixels`, and
// for an uncompressed transfer syntax a Pixel Data element that holds every declared sample
// (the file was read, so the element's length is bounded by the file's size).
void CheckDeclaredSize(DcmDataset* ds, int64_t max_pixels) {
  Uint16 rows = 0, columns = 0, samples = 1, bits_allocated = 0;
  ds->findAndGetUint16(DCM_Rows, rows);
  ds->findAndGetUint16(DCM_Columns, columns);
  const int64_t pixels = static_cast<int64_t>(rows) * columns;
  if (pixels > max_pixels) {
    throw DataError("image of " + std::to_string(rows) + " rows x " + std::to_string(columns) +
                    " columns = " + std::to_string(pixels) +
                    " pixels is larger than max_image_pixels " + std::to_string(max_pixels));
  }
  if (DcmXfer(ds->getOriginalXfer()).isEncapsulated()) return;  // compressed: DCMTK checks
  // (DCMTK sets a missing attribute's value to 0; DicomImage refuses a file without them.)
  if (ds->findAndGetUint16(DCM_SamplesPerPixel, samples).bad() || samples == 0) samples = 1;
  if (ds->findAndGetUint16(DCM_BitsAllocated, bits_allocated).bad()) bits_allocated = 0;
  DcmElement* element = nullptr;
  if (ds->findAndGetElement(DCM_PixelData, element).bad() || element == nullptr) return;
  // Bounded factors (samples 1 or 3, bits 1..32 in valid files), so the product cannot overflow.
  const uint64_t bits = static_cast<uint64_t>(pixels) * std::min<Uint16>(samples, 4) *
                        std::min<Uint16>(bits_allocated, 64);
  const uint64_t needed = (bits + 7) / 8;
  const uint64_t held = element->getLength();
  if (held < needed) {
    throw DataError("Pixel Data holds " + std::to_string(held) + " bytes but " +
                    std::to_string(rows) + " rows x " + std::to_string(columns) + " columns x " +
                    std::to_string(samples) + " samples at " + std::to_string(bits_allocated) +
                    " bits need " + std::to_string(needed) + " (truncated, or a forged header)");
  }
}

}  // namespace

void ValidateDicomOptions(const DicomOptions& o) {
  ValidateLoadOptions(o.load);
  if (o.window_center.has_value() != o.window_width.has_value()) {
    throw ConfigError(std::string(o.window_center ? "window_width" : "window_center") +
                      ": expected a value together with " +
                      (o.window_center ? "window_center" : "window_width") + ", got none");
  }
  if (o.window_center && !std::isfinite(*o.window_center)) {
    throw ConfigError("window_center: expected a finite number, got " + Number(*o.window_center));
  }
  if (o.window_width && !(std::isfinite(*o.window_width) && *o.window_width >= 1)) {
    throw ConfigError("window_width: expected a finite number >= 1, got " +
                      Number(*o.window_width));
  }
}

DecodedImage ReadDicomImage(const std::string& path, const DicomOptions& options) {
  InitDcmtk();
  DcmFileFormat file;
  const OFCondition status = file.loadFile(path.c_str());
  if (status.bad()) throw DataError(std::string("cannot read DICOM: ") + status.text());
  DcmDataset* ds = file.getDataset();
  if (!ds->tagExistsWithValue(DCM_PixelData)) throw DataError("no pixel data");
  Sint32 frames = 1;
  if (ds->findAndGetSint32(DCM_NumberOfFrames, frames).good() && frames > 1) {
    throw DataError("multi-frame image (" + std::to_string(frames) +
                    " frames); only single-frame images are supported");
  }
  if (ds->tagExists(DCM_ModalityLUTSequence)) {
    throw DataError("Modality LUT Sequence is not supported (only Rescale Slope/Intercept)");
  }
  CheckDeclaredSize(ds, options.load.max_image_pixels);
  OFString photometric;
  ds->findAndGetOFString(DCM_PhotometricInterpretation, photometric);

  DicomImage image(&file, ds->getOriginalXfer(), CIF_IgnoreModalityTransformation);
  if (image.getStatus() != EIS_Normal) {
    throw DataError(std::string("cannot decode DICOM pixel data: ") +
                    DicomImage::getString(image.getStatus()));
  }
  DecodedImage out;
  out.height = static_cast<int64_t>(image.getHeight());
  out.width = static_cast<int64_t>(image.getWidth());
  const size_t n = static_cast<size_t>(out.height * out.width);
  if (n == 0) throw DataError("empty image (0 rows or columns)");

  if (!image.isMonochrome()) {
    const auto* rgb = static_cast<const uint8_t*>(image.getOutputData(8, 0, 0));
    if (rgb == nullptr) {
      throw DataError(std::string("cannot render the colour image: ") +
                      DicomImage::getString(image.getStatus()));
    }
    out.channels = 3;
    out.pixels.assign(rgb, rgb + 3 * n);
    return out;
  }

  const DiPixel* inter = image.getInterData();
  if (inter == nullptr || inter->getData() == nullptr || inter->getCount() < n) {
    throw DataError("cannot decode DICOM pixel data (incomplete)");
  }
  double slope = 1, intercept = 0;
  if (ds->findAndGetFloat64(DCM_RescaleSlope, slope).bad()) slope = 1;
  if (ds->findAndGetFloat64(DCM_RescaleIntercept, intercept).bad()) intercept = 0;
  if (!std::isfinite(slope) || !std::isfinite(intercept)) {
    throw DataError("Rescale Slope/Intercept not finite");
  }
  std::vector<double> x;
  const void* data = inter->getData();
  switch (inter->getRepresentation()) {
    case EPR_Uint8: ToDouble<Uint8>(data, n, &x, slope, intercept); break;
    case EPR_Sint8: ToDouble<Sint8>(data, n, &x, slope, intercept); break;
    case EPR_Uint16: ToDouble<Uint16>(data, n, &x, slope, intercept); break;
    case EPR_Sint16: ToDouble<Sint16>(data, n, &x, slope, intercept); break;
    case EPR_Uint32: ToDouble<Uint32>(data, n, &x, slope, intercept); break;
    case EPR_Sint32: ToDouble<Sint32>(data, n, &x, slope, intercept); break;
  }

  double center = 0, width = 0;
  std::string function = "LINEAR";
  bool windowed = false;
  if (options.window_center && options.window_width) {
    center = *options.window_center;
    width = *options.window_width;
    windowed = true;
  } else if (ds->findAndGetFloat64(DCM_WindowCenter, center, 0).good() &&
             ds->findAndGetFloat64(DCM_WindowWidth, width, 0).good()) {
    windowed = true;
    OFString f;
    if (ds->findAndGetOFString(DCM_VOILUTFunction, f).good() && !f.empty()) {
      function = f.c_str();
      if (function != "LINEAR" && function != "LINEAR_EXACT" && function != "SIGMOID") {
        throw DataError("VOI LUT Function \"" + function +
                        "\" is not LINEAR, LINEAR_EXACT or SIGMOID");
      }
    }
    const double least = function == "LINEAR" ? 1.0 : std::numeric_limits<double>::min();
    if (!std::isfinite(center) || !std::isfinite(width) || width < least) {
      throw DataError("Window Center/Width " + Number(center) + "/" + Number(width) +
                      ": the width must be " + (function == "LINEAR" ? ">= 1" : "> 0"));
    }
  }
  out.channels = 1;
  out.pixels.resize(n);
  if (windowed) {
    for (size_t i = 0; i < n; ++i) out.pixels[i] = Round255(Voi(x[i], center, width, function));
  } else {
    const auto [lo, hi] = std::minmax_element(x.begin(), x.end());
    const double min = *lo, range = *hi - *lo;
    for (size_t i = 0; i < n; ++i) {
      out.pixels[i] = range > 0 ? Round255((x[i] - min) * 255.0 / range) : 0;
    }
  }
  if (photometric == "MONOCHROME1") {
    for (uint8_t& v : out.pixels) v = static_cast<uint8_t>(255 - v);
  }
  return out;
}

std::map<std::string, std::string> IndexDicomDirectory(const std::string& dir, int threads) {
  InitDcmtk();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw DataError("DICOM directory " + dir + ": not a directory");
  }
  std::vector<std::string> files;
  const auto options = fs::directory_options::follow_directory_symlink;
  for (fs::recursive_directory_iterator it(dir, options, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code ec2;
    if (fs::is_regular_file(it->path(), ec2) && IsDicomName(it->path())) {
      files.push_back(it->path().string());
    }
  }
  if (ec) throw DataError("DICOM directory " + dir + ": cannot list: " + ec.message());
  std::sort(files.begin(), files.end());

  struct Header {
    std::string uid, error;
  };
  std::vector<Header> headers(files.size());
  const std::function<Header(int64_t)> produce = [&files](int64_t i) {
    Header h;
    DcmFileFormat file;
    const OFCondition status = file.loadFileUntilTag(files[i].c_str(), EXS_Unknown, EGL_noChange,
                                                     DCM_MaxReadLength, ERM_autoDetect,
                                                     DCM_PixelData);
    OFString uid;
    if (status.bad()) {
      h.error = std::string("cannot read DICOM: ") + status.text();
    } else if (file.getDataset()->findAndGetOFString(DCM_SOPInstanceUID, uid).bad() ||
               uid.empty()) {
      h.error = "no SOP Instance UID";
    } else {
      h.uid = uid.c_str();
    }
    return h;
  };
  const std::function<void(int64_t, Header&&)> consume = [&headers](int64_t i, Header&& h) {
    headers[i] = std::move(h);
  };
  ParallelProduce<Header>(static_cast<int64_t>(files.size()), threads, 256, produce, consume);

  std::map<std::string, std::string> index;
  for (size_t i = 0; i < files.size(); ++i) {
    if (!headers[i].error.empty()) {
      spdlog::warn("DICOM directory {}: not indexed: {}: {}", dir, files[i], headers[i].error);
      continue;
    }
    const auto [it, inserted] = index.emplace(headers[i].uid, files[i]);
    if (!inserted) {
      spdlog::warn("DICOM directory {}: {} repeats the SOPInstanceUID {} of {}, ignored",
                   dir, files[i], headers[i].uid, it->second);
    }
  }
  return index;
}

ImageSet LoadDicomManifest(const std::string& csv_path, const std::string& split,
                           const PreprocessSpec& spec, const DicomOptions& options,
                           LoadReport* report) {
  ValidateDicomOptions(options);
  ValidatePreprocessSpec(spec);
  if (!split.empty() && split != "train" && split != "val" && split != "test") {
    throw ConfigError("DICOM manifest " + csv_path + ": split \"" + split +
                      "\", expected train, val, test or \"\" (every line)");
  }
  const Manifest manifest = ReadManifest(csv_path, {"path", "sop_instance_uid"});
  std::vector<std::string> names;
  const std::vector<int64_t> labels = ManifestLabels(manifest, options.load.class_names, &names);
  const fs::path base = fs::path(csv_path).parent_path();
  const bool by_uid = manifest.key_column == "sop_instance_uid";
  std::map<std::string, std::string> index;
  std::string dicom_dir;
  if (by_uid) {
    if (options.dicom_dir.empty()) {
      throw ConfigError("DICOM manifest " + csv_path +
                        " is keyed by sop_instance_uid: dicom_dir (the directory holding the "
                        "files) is required");
    }
    dicom_dir = (base / options.dicom_dir).lexically_normal().string();
    index = IndexDicomDirectory(dicom_dir, options.load.decode_threads);
  }
  std::vector<LoadItem> items;
  for (size_t r = 0; r < manifest.rows.size(); ++r) {
    const Manifest::Row& row = manifest.rows[r];
    if (!split.empty() && row.split != split) continue;
    LoadItem item;
    item.label = labels[r];
    const std::string where = "line " + std::to_string(row.line) + ": ";
    if (row.key.empty()) {
      item.path = csv_path + ":" + std::to_string(row.line);
      item.bad_reason = by_uid ? "no SOPInstanceUID" : "no path";
    } else if (by_uid) {
      const auto it = index.find(row.key);
      if (it == index.end()) {
        item.path = row.key;
        item.bad_reason = where + "no DICOM file with SOPInstanceUID " + row.key + " under " +
                          dicom_dir;
      } else {
        item.path = it->second;
      }
    } else {
      item.path = (base / row.key).lexically_normal().string();
    }
    if (item.bad_reason.empty() && row.label.empty()) {
      item.bad_reason = where + "no label";
    } else if (item.bad_reason.empty() && item.label < 0) {
      item.bad_reason = where + UnknownLabelReason(row.label);
    }
    items.push_back(std::move(item));
  }
  const auto decode = [&options](const std::string& path) { return ReadDicomImage(path, options); };
  ImageSet set = LoadImageItems(items, static_cast<int64_t>(names.size()), spec, options.load,
                                decode, "DICOM manifest " + csv_path, report);
  if (report != nullptr) report->class_names = names;
  return set;
}

void WriteDicomFile(const std::string& path, const DicomWriteSpec& s) {
  InitDcmtk();
  const auto fail = [&path](const std::string& why) {
    throw DataError("writing DICOM " + path + ": " + why);
  };
  const int samples = s.photometric == "RGB" ? 3 : 1;
  if (s.photometric != "RGB" && s.photometric != "MONOCHROME1" && s.photometric != "MONOCHROME2") {
    fail("photometric \"" + s.photometric + "\", expected MONOCHROME1, MONOCHROME2 or RGB");
  }
  if (s.bits_allocated != 8 && s.bits_allocated != 16) fail("bits_allocated must be 8 or 16");
  if (s.bits_stored < 1 || s.bits_stored > s.bits_allocated) {
    fail("bits_stored must be in 1..bits_allocated");
  }
  if (s.rows < 1 || s.columns < 1 || s.rows > 65535 || s.columns > 65535) {
    fail("rows and columns must be in 1..65535");
  }
  const size_t n = static_cast<size_t>(s.rows * s.columns * samples);
  if (s.values.size() != n) {
    fail(std::to_string(s.values.size()) + " values, expected rows * columns * samples = " +
         std::to_string(n));
  }
  const int64_t lo = s.is_signed ? -(int64_t{1} << (s.bits_stored - 1)) : 0;
  const int64_t hi = s.is_signed ? (int64_t{1} << (s.bits_stored - 1)) - 1
                                 : (int64_t{1} << s.bits_stored) - 1;
  for (int32_t v : s.values) {
    if (v < lo || v > hi) {
      fail("value " + std::to_string(v) + " outside the range of " +
           std::to_string(s.bits_stored) + (s.is_signed ? " signed" : " unsigned") + " bits");
    }
  }
  E_TransferSyntax xfer = EXS_LittleEndianExplicit;
  if (s.transfer_syntax == "rle") {
    xfer = EXS_RLELossless;
  } else if (s.transfer_syntax == "jpeg_ls_lossless") {
    xfer = EXS_JPEGLSLossless;
  } else if (s.transfer_syntax != "explicit_little") {
    fail("transfer syntax \"" + s.transfer_syntax +
         "\", expected explicit_little, rle or jpeg_ls_lossless");
  }

  DcmFileFormat file;
  DcmDataset* ds = file.getDataset();
  char uid[100];
  const auto check = [&fail](const OFCondition& c) {
    if (c.bad()) fail(c.text());
  };
  check(ds->putAndInsertString(DCM_SOPClassUID, UID_SecondaryCaptureImageStorage));
  check(ds->putAndInsertString(DCM_SOPInstanceUID,
                               s.sop_instance_uid.empty()
                                   ? dcmGenerateUniqueIdentifier(uid, SITE_INSTANCE_UID_ROOT)
                                   : s.sop_instance_uid.c_str()));
  check(ds->putAndInsertString(DCM_StudyInstanceUID,
                               dcmGenerateUniqueIdentifier(uid, SITE_STUDY_UID_ROOT)));
  check(ds->putAndInsertString(DCM_SeriesInstanceUID,
                               dcmGenerateUniqueIdentifier(uid, SITE_SERIES_UID_ROOT)));
  check(ds->putAndInsertString(DCM_Modality, "OT"));
  check(ds->putAndInsertString(DCM_PatientID, "fedmed-test"));
  check(ds->putAndInsertUint16(DCM_SamplesPerPixel, static_cast<Uint16>(samples)));
  check(ds->putAndInsertString(DCM_PhotometricInterpretation, s.photometric.c_str()));
  if (samples == 3) check(ds->putAndInsertUint16(DCM_PlanarConfiguration, 0));
  check(ds->putAndInsertUint16(DCM_Rows, static_cast<Uint16>(s.rows)));
  check(ds->putAndInsertUint16(DCM_Columns, static_cast<Uint16>(s.columns)));
  check(ds->putAndInsertUint16(DCM_BitsAllocated, static_cast<Uint16>(s.bits_allocated)));
  check(ds->putAndInsertUint16(DCM_BitsStored, static_cast<Uint16>(s.bits_stored)));
  check(ds->putAndInsertUint16(DCM_HighBit, static_cast<Uint16>(s.bits_stored - 1)));
  check(ds->putAndInsertUint16(DCM_PixelRepresentation, s.is_signed ? 1 : 0));
  if (s.rescale_intercept) {
    check(ds->putAndInsertString(DCM_RescaleIntercept, Number(*s.rescale_intercept).c_str()));
  }
  if (s.rescale_slope) {
    check(ds->putAndInsertString(DCM_RescaleSlope, Number(*s.rescale_slope).c_str()));
  }
  if (s.window_center) {
    check(ds->putAndInsertString(DCM_WindowCenter, Number(*s.window_center).c_str()));
  }
  if (s.window_width) {
    check(ds->putAndInsertString(DCM_WindowWidth, Number(*s.window_width).c_str()));
  }
  if (!s.voi_lut_function.empty()) {
    check(ds->putAndInsertString(DCM_VOILUTFunction, s.voi_lut_function.c_str()));
  }
  const uint32_t mask = (s.bits_stored == 32) ? 0xffffffffu : ((1u << s.bits_stored) - 1u);
  if (s.bits_allocated == 8) {
    std::vector<Uint8> bytes(n);
    for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<Uint8>(static_cast<uint32_t>(s.values[i]) & mask);
    check(ds->putAndInsertUint8Array(DCM_PixelData, bytes.data(), static_cast<unsigned long>(n)));
  } else {
    std::vector<Uint16> words(n);
    for (size_t i = 0; i < n; ++i) words[i] = static_cast<Uint16>(static_cast<uint32_t>(s.values[i]) & mask);
    check(ds->putAndInsertUint16Array(DCM_PixelData, words.data(), static_cast<unsigned long>(n)));
  }
  if (xfer != EXS_LittleEndianExplicit) {
    const OFCondition c = ds->chooseRepresentation(xfer, nullptr);
    if (c.bad() || !ds->canWriteXfer(xfer)) fail(std::string("cannot encode: ") + c.text());
  }
  check(file.saveFile(path.c_str(), xfer));
}

}  // namespace fedmed
