// libFuzzer harness: the coordinator's handling of each request message a site sends, from the
// protobuf bytes on the wire through FromProto (common/transport/wire.h, as coordinator/transport/service.cc
// decodes them) to the domain layer that judges them (coordinator/registration.h,
// update_acceptance.h, secure_round.h, round/round_state_machine.h), as coordinator/round_flow.cc
// calls it. gRPC itself (HTTP/2, TLS) is not in the loop.
//
// Input: one byte picks the message, then the message's protobuf bytes (a length-prefixed piece):
//   0 RegisterRequest             RegistrationPolicy::Check
//   1 UpdateHeader + chunks       CheckUpdateHeader, ChunkAssembler (pieces after the header are
//                                 the chunks; the SHA-256 is the header's or, when the next byte
//                                 is odd, that of the chunks), DecodeUpdate (plain) or
//                                 SecureRound::AddMaskedInput (secure)
//   2 EvaluationReport            CheckEvaluationReport, RoundStateMachine::AcceptEvaluation
//   3 DeclineRequest              RoundStateMachine::DeclineTask
//   4 SecAggMessage (stage 0/1/3) SecureRound::Add
//   5 SecAggPoll                  SecureRound::Answer
// The federation: 3 registered sites ("site-1" .. "site-3"), round 1 of 3 in training, a model of
// 9 values; secure aggregation is on when the kind byte's bit 7 is set.
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "common/config/coordinator_config.h"
#include "common/crypto/pki.h"
#include "common/crypto/sha256.h"
#include "common/model/model_state.h"
#include "common/transport/chunking.h"
#include "common/transport/wire.h"
#include "coordinator/registration.h"
#include "coordinator/round/round_state_machine.h"
#include "coordinator/secure_round.h"
#include "coordinator/update_acceptance.h"
#include "fuzz/fuzz_util.h"
#include "proto/fedmed.pb.h"

namespace {

using namespace fedmed;  // NOLINT: a harness

const std::vector<std::string> kSites = {"site-1", "site-2", "site-3"};

ModelState Layout() {
  ModelState s;
  s.tensors.push_back({"fc.weight", {2, 3}, std::vector<float>(6, 0.5f)});
  s.tensors.push_back({"fc.bias", {3}, std::vector<float>(3, 0.25f)});
  return s;
}

const std::string& CaPem() {
  static const std::string pem = CreateCa("fuzz federation CA", 3650).cert_pem;
  return pem;
}

template <typename Proto, typename Domain>
bool Decode(std::string_view bytes, Domain* out) {
  Proto proto;
  if (!proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return false;
  try {
    *out = FromProto(proto);
  } catch (const FormatError&) {
    return false;  // service.cc answers INVALID_ARGUMENT
  }
  return true;
}

void HandleOne(fuzz::InputReader& in) {
  const uint8_t kind = in.Byte();
  const bool secure = (kind & 0x80) != 0;
  const std::string& site = kSites[(kind >> 4) % 3];
  const ModelState layout = Layout();

  RoundStateMachine rsm(/*total_rounds=*/3, /*min_sites=*/2, /*sites_per_round=*/0, /*seed=*/7);
  for (const std::string& s : kSites) rsm.Register({s, "session-" + s, 1000, 100});
  rsm.StartRound(false);

  SecureAggregationConfig config;
  config.enabled = true;
  SecureRound secure_round(config, CaPem());
  if (secure) {
    secure_round.Begin(rsm.round(), rsm.attempt(), kSites, 1000, layout.NumValues(),
                       std::time(nullptr));
  }

  switch (kind & 0x0f) {
    case 0: {
      RegistrationInfo info;
      if (!Decode<v1::RegisterRequest>(in.Piece(), &info)) return;
      RegistrationPolicy::Requirements req;
      req.spec.in_channels = 1;
      req.spec.num_classes = 2;
      req.secure_aggregation = secure;
      req.max_site_samples = 1000000;
      std::string note;
      (void)RegistrationPolicy(req).Check(site, info, &note);
      return;
    }
    case 1: {
      UpdateHeader header;
      if (!Decode<v1::UpdateHeader>(in.Piece(), &header)) return;
      UpdateExpectation expected;
      expected.accepting = true;
      expected.round = rsm.round();
      expected.model_version = 0;
      expected.secure = secure;
      expected.model_bytes = static_cast<int64_t>(EncodeModelState(layout).size());
      expected.num_values = layout.NumValues();
      expected.max_samples = 1000;
      expected.max_norm = 10;
      if (!CheckUpdateHeader(site, header, expected).ok()) return;
      std::vector<std::string_view> chunks;
      const bool own_digest = (in.Byte() & 1) != 0;
      Sha256 digest;
      while (!in.empty()) {
        chunks.push_back(in.Piece());
        digest.Update(chunks.back());
      }
      const std::string sha = own_digest ? digest.FinishHex() : header.sha256;
      std::string bytes;
      try {
        ChunkAssembler assembler(header.size_bytes, sha, "update from " + site);
        for (std::string_view c : chunks) assembler.Append(c);
        bytes = assembler.Finish();
      } catch (const FormatError&) {
        return;  // the upload is refused
      }
      if (secure) {
        (void)secure_round.AddMaskedInput(site, header, bytes);
      } else {
        ModelState delta;
        double norm = 0;
        if (DecodeUpdate(site, header, bytes, layout, expected.max_norm, &delta, &norm).ok()) {
          (void)rsm.AcceptUpdate(site, header.info.round);
        }
      }
      return;
    }
    case 2: {
      EvaluationReport report;
      if (!Decode<v1::EvaluationReport>(in.Piece(), &report)) return;
      if (CheckEvaluationReport(site, report, 2, 100).ok()) {
        (void)rsm.AcceptEvaluation(site, report.round);
      }
      return;
    }
    case 3: {
      DeclineRequest decline;
      if (!Decode<v1::DeclineRequest>(in.Piece(), &decline)) return;
      if (rsm.IsCurrentSession(site, decline.session_id)) (void)rsm.DeclineTask(site, decline.round);
      return;
    }
    case 4: {
      SecAggMessage message;
      if (!Decode<v1::SecAggMessage>(in.Piece(), &message)) return;
      std::string excluded;
      (void)secure_round.Add(site, message, &excluded);
      return;
    }
    case 5: {
      SecAggPoll poll;
      if (!Decode<v1::SecAggPoll>(in.Piece(), &poll)) return;
      SecAggStage stage;
      secure_round.Answer(site, poll, &stage);
      return;
    }
    default:
      return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fedmed::fuzz::InputReader in(data, size);
  // A refusal is a Status; the domain layer must throw nothing at all (service.cc does not
  // catch), so even fedmed errors are findings here.
  try {
    HandleOne(in);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_coordinator_requests: exception escaped the domain layer: %s\n",
                 e.what());
    std::abort();
  }
  return 0;
}
