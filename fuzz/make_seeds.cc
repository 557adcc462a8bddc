// Writes the seed corpora of the fuzz harnesses (fuzz/corpus/<harness>/) with the project's own
// writers: EncodeModelState, the protocol's ToProto, WriteDicomFile, stb_image_write, libzip (as
// np.savez does), RenderSiteConfig / RenderCoordinatorConfig, PrivacyLogWriter, SaveCheckpoint and
// ExportTorchScript. The files are small (the largest, a TorchScript cnn, is ~ 40 KB) and checked
// in; run again after a format changes:
//
//   build-fuzz/fuzz/make_seeds fuzz/corpus
//
// It also writes fuzz/corpus/audit.pem, the audit certificate under which fuzz_privacy_log
// verifies signatures (its key is not kept: the seeds are signed once, here). Output is
// deterministic except for keys, signatures, times and the SecAgg seeds' random bytes.
#include <zip.h>

#include <stb_image_write.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "common/audit/privacy_log.h"
#include "common/config/coordinator_config.h"
#include "common/config/site_config.h"
#include "common/crypto/pki.h"
#include "common/crypto/sha256.h"
#include "common/data/hospital/dicom.h"
#include "common/model/checkpoint.h"
#include "common/model/local_training.h"
#include "common/model/model_io.h"
#include "common/model/model_state.h"
#include "common/transport/wire.h"
#include "common/util/version.h"
#include "proto/fedmed.pb.h"
#include "tests/audit/audit_test_util.h"

namespace fedmed {
namespace {

namespace fs = std::filesystem;

fs::path g_root;

void Write(const std::string& harness, const std::string& name, const std::string& bytes) {
  const fs::path dir = g_root / harness;
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + (dir / name).string());
}

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Two little-endian length bytes, then `piece` (fuzz_util.h's InputReader::Piece).
std::string Piece(const std::string& piece) {
  const size_t n = piece.size();
  if (n > 65535) throw std::runtime_error("piece too long");
  return std::string{static_cast<char>(n & 0xff), static_cast<char>(n >> 8)} + piece;
}

ModelState SmallState(int variant) {
  ModelState s;
  if (variant == 0) return s;  // no tensor at all
  s.tensors.push_back({"fc.weight", {2, 3}, {0.5f, -1.0f, 2.0f, 0.0f, 1e-3f, -7.25f}});
  s.tensors.push_back({"fc.bias", {3}, {0.1f, 0.2f, 0.3f}});
  if (variant == 2) s.tensors.push_back({"scale", {}, {1.5f}});
  return s;
}

// ---- model state and chunked downloads ----
void ModelSeeds() {
  for (int v = 0; v < 3; ++v) {
    const std::string bytes = EncodeModelState(SmallState(v));
    Write("fuzz_model_state", "state" + std::to_string(v), bytes);
    Write("fuzz_model_state", "state" + std::to_string(v) + "-float16",
          EncodeModelState(SmallState(v), UpdateEncoding::kFloat16));
    Write("fuzz_model_state", "state" + std::to_string(v) + "-int8",
          EncodeModelState(SmallState(v), UpdateEncoding::kInt8, 7));
    for (int chunks : {1, 2}) {
      std::string seed;
      uint64_t size = bytes.size();
      for (int i = 0; i < 8; ++i) seed += static_cast<char>((size >> (8 * i)) & 0xff);
      seed += static_cast<char>(2);  // announce the chunks' own SHA-256
      const size_t half = chunks == 1 ? bytes.size() : bytes.size() / 2;
      seed += Piece(bytes.substr(0, half));
      if (chunks == 2) seed += Piece(bytes.substr(half));
      Write("fuzz_model_download", "state" + std::to_string(v) + "_chunks" + std::to_string(chunks),
            seed);
    }
  }
}

// ---- the coordinator's request messages (fuzz_coordinator_requests.cc's input format) ----
template <typename Proto>
std::string Serialized(const Proto& proto) {
  std::string out;
  proto.SerializeToString(&out);
  return out;
}

void CoordinatorSeeds() {
  const char kSite1 = 0x00, kSecure = static_cast<char>(0x80);
  {
    RegistrationInfo info;
    info.site_name = "site-1";
    info.num_train_samples = 100;
    info.num_test_samples = 10;
    info.in_channels = 1;
    info.num_classes = 2;
    info.preprocessing = PreprocessSpec{}.Canonical();
    info.capabilities = {"secagg-v1"};
    info.software_version = kFedmedVersion;
    v1::RegisterRequest proto;
    ToProto(info, &proto);
    Write("fuzz_coordinator_requests", "register", std::string{kSite1} + Piece(Serialized(proto)));
    Write("fuzz_coordinator_requests", "register_secure",
          std::string{static_cast<char>(kSecure | 0x00)} + Piece(Serialized(proto)));
  }
  {
    // An update: the delta of the harness's model (fc.weight (2, 3), fc.bias (3)).
    ModelState delta = SmallState(1);
    const std::string bytes = EncodeModelState(delta);
    UpdateHeader header;
    header.session_id = "session-site-1";
    header.size_bytes = static_cast<int64_t>(bytes.size());
    header.sha256 = Sha256Hex(bytes);
    header.info.round = 1;
    header.info.base_version = 0;
    header.info.num_samples = 100;
    header.info.local_steps = 4;
    header.info.train_loss = 0.5;
    v1::UpdateHeader proto;
    ToProto(header, &proto);
    Write("fuzz_coordinator_requests", "update",
          std::string{0x01} + Piece(Serialized(proto)) + std::string{0x00} + Piece(bytes));
    // A masked input: 4 * (num_values + 1) bytes.
    header.info.secure = true;
    header.info.num_samples = 0;
    const std::string masked(4 * (9 + 1), '\x11');
    header.size_bytes = static_cast<int64_t>(masked.size());
    header.sha256 = Sha256Hex(masked);
    proto.Clear();
    ToProto(header, &proto);
    Write("fuzz_coordinator_requests", "update_masked",
          std::string{static_cast<char>(kSecure | 0x01)} + Piece(Serialized(proto)) +
              std::string{0x00} + Piece(masked));
  }
  {
    EvaluationReport report;
    report.session_id = "session-site-2";
    report.round = 1;
    report.model_version = 1;
    report.metrics.num_samples = 10;
    report.metrics.num_classes = 2;
    report.metrics.accuracy = 0.7;
    report.metrics.confusion = {4, 1, 2, 3};
    v1::EvaluationReport proto;
    ToProto(report, &proto);
    Write("fuzz_coordinator_requests", "evaluation",
          std::string{0x12} + Piece(Serialized(proto)));
  }
  {
    DeclineRequest decline;
    decline.session_id = "session-site-1";
    decline.round = 1;
    decline.reason = "privacy budget";
    v1::DeclineRequest proto;
    ToProto(decline, &proto);
    Write("fuzz_coordinator_requests", "decline", std::string{0x03} + Piece(Serialized(proto)));
  }
  {
    SecAggMessage message;
    message.session_id = "session-site-1";
    message.round = 1;
    message.attempt = 1;
    message.stage = SecAggMessage::Stage::kKeys;
    message.keys.index = 1;
    message.keys.site = "site-1";
    message.keys.c_public_key = std::string(32, '\x01');
    message.keys.s_public_key = std::string(32, '\x02');
    message.keys.signature = std::string(64, '\x03');
    v1::SecAggMessage proto;
    ToProto(message, &proto);
    Write("fuzz_coordinator_requests", "secagg_keys",
          std::string{static_cast<char>(kSecure | 0x04)} + Piece(Serialized(proto)));
    message.stage = SecAggMessage::Stage::kShares;
    message.shares = {{1, 2, std::string(60, '\x05')}, {1, 3, std::string(60, '\x06')}};
    proto.Clear();
    ToProto(message, &proto);
    Write("fuzz_coordinator_requests", "secagg_shares",
          std::string{static_cast<char>(kSecure | 0x04)} + Piece(Serialized(proto)));
    message.stage = SecAggMessage::Stage::kUnmask;
    message.unmask = {{2, true, std::string(48, '\x07')}, {3, false, std::string(48, '\x08')}};
    proto.Clear();
    ToProto(message, &proto);
    Write("fuzz_coordinator_requests", "secagg_unmask",
          std::string{static_cast<char>(kSecure | 0x04)} + Piece(Serialized(proto)));
    SecAggPoll poll;
    poll.session_id = "session-site-1";
    poll.round = 1;
    poll.attempt = 1;
    poll.stage = 1;
    v1::SecAggPoll poll_proto;
    ToProto(poll, &poll_proto);
    Write("fuzz_coordinator_requests", "secagg_poll",
          std::string{static_cast<char>(kSecure | 0x05)} + Piece(Serialized(poll_proto)));
  }
}

// ---- .npy and .npz ----
std::string NpyBytes(const std::string& descr, const std::vector<int64_t>& shape,
                     const std::string& data) {
  std::string shape_text = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    shape_text += (i > 0 ? ", " : "") + std::to_string(shape[i]);
  }
  shape_text += shape.size() == 1 ? ",)" : ")";
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " +
                       shape_text + ", }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\0';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  return out + header + data;
}

std::string ZipOf(const std::vector<std::pair<std::string, std::string>>& entries, bool deflate) {
  const fs::path tmp = fs::temp_directory_path() / "fedmed-make-seeds.npz";
  int error = 0;
  zip_t* archive = zip_open(tmp.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error);
  if (archive == nullptr) throw std::runtime_error("zip_open");
  for (const auto& [name, bytes] : entries) {
    zip_source_t* source = zip_source_buffer(archive, bytes.data(), bytes.size(), 0);
    const zip_int64_t index = zip_file_add(archive, name.c_str(), source, ZIP_FL_OVERWRITE);
    if (index < 0) throw std::runtime_error("zip_file_add");
    zip_set_file_compression(archive, static_cast<zip_uint64_t>(index),
                             deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0);
  }
  if (zip_close(archive) != 0) throw std::runtime_error("zip_close");
  std::string bytes = ReadAll(tmp);
  fs::remove(tmp);
  return bytes;
}

void NpySeeds() {
  Write("fuzz_npy", "u1_images", NpyBytes("|u1", {2, 3, 3}, std::string(18, '\x7f')));
  Write("fuzz_npy", "i8_labels", NpyBytes("<i8", {3, 1}, std::string("\x01\0\0\0\0\0\0\0"
                                                                      "\0\0\0\0\0\0\0\0"
                                                                      "\x02\0\0\0\0\0\0\0", 24)));
  Write("fuzz_npy", "f4_scalar", NpyBytes("<f4", {}, std::string("\0\0\x80\x3f", 4)));
  Write("fuzz_npy", "u2_flat", NpyBytes("<u2", {4}, std::string(8, '\x01')));
  // A MedMNIST-shaped file: train/val/test images (N, 4, 4) and labels (N, 1).
  std::vector<std::pair<std::string, std::string>> entries;
  for (const auto& [split, n] : std::vector<std::pair<std::string, int>>{
           {"train", 3}, {"val", 1}, {"test", 2}}) {
    entries.push_back({split + "_images.npy", NpyBytes("|u1", {n, 4, 4}, std::string(16 * n, 'A'))});
    std::string labels;
    for (int i = 0; i < n; ++i) labels += static_cast<char>(i % 2);
    entries.push_back({split + "_labels.npy", NpyBytes("|u1", {n, 1}, labels)});
  }
  Write("fuzz_npz", "medmnist_stored.npz", ZipOf(entries, false));
  Write("fuzz_npz", "medmnist_deflated.npz", ZipOf(entries, true));
  Write("fuzz_npz", "one_array.npz", ZipOf({{"x.npy", NpyBytes("<f4", {2}, std::string(8, 0))}}, true));
}

// ---- PNG, JPEG (fuzz_image's first byte: 0 .png, 1 .jpg, 2 .jpeg, 3 .PNG) ----
void AppendBytes(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), size);
}

void ImageSeeds() {
  for (int comp : {1, 2, 3, 4}) {
    std::vector<uint8_t> pixels(6 * 5 * comp);
    for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 37);
    std::string png;
    stbi_write_png_to_func(AppendBytes, &png, 6, 5, comp, pixels.data(), 6 * comp);
    Write("fuzz_image", "png_comp" + std::to_string(comp), std::string{0x00} + png);
    if (comp == 1 || comp == 3) {
      std::string jpg;
      stbi_write_jpg_to_func(AppendBytes, &jpg, 6, 5, comp, pixels.data(), 90);
      Write("fuzz_image", "jpg_comp" + std::to_string(comp), std::string{0x01} + jpg);
    }
  }
}

// ---- DICOM ----
void DicomSeeds() {
  const fs::path tmp = fs::temp_directory_path() / "fedmed-make-seeds.dcm";
  const auto write = [&](const std::string& name, DicomWriteSpec spec) {
    WriteDicomFile(tmp.string(), spec);
    Write("fuzz_dicom", name, ReadAll(tmp));
  };
  DicomWriteSpec mono;
  mono.rows = 4;
  mono.columns = 3;
  for (int i = 0; i < 12; ++i) mono.values.push_back(i * 1000);
  mono.rescale_slope = 1.0;
  mono.rescale_intercept = -1024.0;
  mono.window_center = 40.0;
  mono.window_width = 400.0;
  write("mono2_16bit_window.dcm", mono);
  mono.transfer_syntax = "rle";
  write("mono2_rle.dcm", mono);
  mono.transfer_syntax = "jpeg_ls_lossless";
  write("mono2_jpegls.dcm", mono);
  DicomWriteSpec mono1;
  mono1.rows = mono1.columns = 2;
  mono1.photometric = "MONOCHROME1";
  mono1.bits_allocated = mono1.bits_stored = 8;
  mono1.values = {0, 64, 128, 255};
  mono1.voi_lut_function = "SIGMOID";
  mono1.window_center = 128.0;
  mono1.window_width = 100.0;
  write("mono1_8bit_sigmoid.dcm", mono1);
  DicomWriteSpec signed12;
  signed12.rows = signed12.columns = 2;
  signed12.bits_stored = 12;
  signed12.is_signed = true;
  signed12.values = {-2048, -1, 0, 2047};
  write("signed_12bit_minmax.dcm", signed12);
  DicomWriteSpec rgb;
  rgb.rows = 2;
  rgb.columns = 2;
  rgb.photometric = "RGB";
  rgb.bits_allocated = rgb.bits_stored = 8;
  rgb.values = {255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9};
  write("rgb_8bit.dcm", rgb);
  fs::remove(tmp);
}

// ---- configuration files (fuzz_config's first byte: even site.toml, odd coordinator.toml) ----
void ConfigSeeds() {
  Write("fuzz_config", "site.toml", std::string{0x00} + RenderSiteConfig(SiteConfig{}));
  Write("fuzz_config", "coordinator.toml",
        std::string{0x01} + RenderCoordinatorConfig(CoordinatorConfig{}));
}

// ---- privacy logs: a site's two runs and the coordinator's round records ----
void PrivacyLogSeeds() {
  const fs::path dir = fs::temp_directory_path() / "fedmed-make-seeds-logs";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const KeyAndCert ca = CreateCa("fedmed fuzz seeds CA", 36500);
  const KeyAndCert site = testing::IssueAuditCertificate(ca, "site-1", 36500);
  const KeyAndCert coordinator = testing::IssueAuditCertificate(ca, "coordinator", 36500);
  {
    std::ofstream pem(g_root / "audit.pem");
    pem << site.cert_pem;
  }
  const testing::WrittenSiteLog written =
      testing::WriteSiteLog((dir / "site-1.jsonl").string(), (dir / "ledger.json").string(), site,
                            "site-1");
  testing::WriteCoordinatorLog((dir / "coordinator.jsonl").string(), coordinator,
                               {{"site-1", written}});
  const std::string site_log = ReadAll(dir / "site-1.jsonl");
  Write("fuzz_privacy_log", "site-1.jsonl", site_log);
  // The first three entries alone (a short log exercises the verifier quickly).
  size_t end = 0;
  for (int i = 0; i < 3; ++i) end = site_log.find('\n', end) + 1;
  Write("fuzz_privacy_log", "site-1-head.jsonl", site_log.substr(0, end));
  Write("fuzz_privacy_log", "coordinator.jsonl", ReadAll(dir / "coordinator.jsonl"));
  fs::remove_all(dir);
}

// ---- checkpoints and TorchScript weights (fuzz_checkpoint's layout: fc.weight (2, 3), fc.bias (2)) ----
void CheckpointSeeds() {
  const fs::path tmp = fs::temp_directory_path() / "fedmed-make-seeds.pt";
  ModelState state;
  state.tensors.push_back({"fc.weight", {2, 3}, {1, 2, 3, 4, 5, 6}});
  state.tensors.push_back({"fc.bias", {2}, {0.5f, -0.5f}});
  SaveCheckpoint(state, tmp.string());
  Write("fuzz_checkpoint", "state_dict.pt", ReadAll(tmp));
  ModelSpec spec;
  spec.name = "cnn";
  spec.in_channels = 1;
  spec.num_classes = 2;
  spec.image_size = 8;  // the smallest cnn: ~ 1 MB of weights less than at 28 px
  ExportTorchScript(spec, InitialModelState(spec, 0), tmp.string());
  Write("fuzz_checkpoint", "cnn_torchscript.pt", ReadAll(tmp));
  fs::remove(tmp);
}

}  // namespace
}  // namespace fedmed

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_seeds <corpus dir, e.g. fuzz/corpus>\n";
    return 2;
  }
  fedmed::g_root = argv[1];
  try {
    fedmed::ModelSeeds();
    fedmed::CoordinatorSeeds();
    fedmed::NpySeeds();
    fedmed::ImageSeeds();
    fedmed::DicomSeeds();
    fedmed::ConfigSeeds();
    fedmed::PrivacyLogSeeds();
    fedmed::CheckpointSeeds();
  } catch (const std::exception& e) {
    std::cerr << "make_seeds: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
