// The secure-aggregation round of Bonawitz et al., "Practical Secure Aggregation for
// Privacy-Preserving Machine Learning" (CCS 2017, section 4, Figure 4), as transport-free state
// machines: SecAggClient (one per site and round attempt) and SecAggServer (the coordinator's).
// coordinator/ and site_agent/ carry their messages over gRPC (proto/fedmed.proto, SecAggSend /
// SecAggReceive; the masked input travels as an update upload); docs/SECURE_AGGREGATION.md
// explains the protocol to a privacy officer.
//
// Participants are the round's selected sites, sorted by name; site i (1-based position) is
// Shamir evaluation point x = i. Threshold t: any t survivors can unmask; t - 1 colluding sites
// together with the coordinator learn nothing about an honest site's update (the semi-honest
// model of the paper's Theorem 6.2 with t > n/2 recommended: see the docs).
//
//   stage 0  AdvertiseKeys   site u -> coordinator: c_pk_u, s_pk_u (X25519), signed with u's
//                            long-term Ed25519 key (its audit key, certified by the federation CA
//                            with CN = u); the coordinator checks certificate and signature,
//                            excludes (and names) a site whose check fails, and broadcasts U1.
//   stage 1  ShareKeys       u checks every signature in U1 again, draws its self-mask seed b_u,
//                            Shamir-shares b_u and s_sk_u (t of |U1|), and sends each peer v its
//                            two shares encrypted with AES-256-GCM under
//                            HKDF(X25519(c_sk_u, c_pk_v)); the coordinator relays them: U2.
//   stage 2  MaskedInput     u decrypts the shares sent to it (a share that fails authentication
//                            is reported, naming its sender, who is then treated as dropped) and
//                            sends y_u = q_u + PRG(b_u) + sum_{v in U2, v != u} +-PRG(s_uv), where
//                            s_uv = HKDF(X25519(s_sk_u, s_pk_v)) and q_u is the quantised
//                            weighted update followed by the sample count: U3.
//   stage 3  Unmasking       every u in U3 reveals, for each v in U2, its share of b_v when v is
//                            in U3 and of s_sk_v when v is not (never both for one v); from t
//                            answers the coordinator rebuilds them and removes the masks.
//
// Weighted FedAvg stays exact up to quantisation: site u codes x_u = (n_u / n_ref) * delta_u
// (n_ref = weight_normalizer, the largest registered training-set size, public) with
// FixedPointCodec(clip_range, |participants|, quantization_bits), and appends its sample count
// n_u as one more word (added mod 2^32 as an integer). The unmasked sum gives sum_u x_u and
// N = sum_u n_u, and the weighted mean update is sum_u x_u * n_ref / N.
//
// Errors: SecAggAborted when the round cannot go on (fewer than t sites left at a stage, or a
// message that does not fit the protocol); the coordinator then fails the round attempt cleanly.
//
// The parts, each with its own header:
//   round_config.h    SecAggRoundConfig (participants, threshold, codec, SecAgg+ neighbours) and
//                     SecAggAborted
//   stage_messages.h  the stages' messages, the stage-0 key check, the domain-separation strings
//   client.h          SecAggClient: one site's side
//   server.h          SecAggServer: the coordinator's side
// with, below them, key_agreement.h (X25519, HKDF, AES-256-GCM), shamir.h and masking.h.
#ifndef FEDMED_COMMON_SECAGG_PROTOCOL_H_
#define FEDMED_COMMON_SECAGG_PROTOCOL_H_

#include "common/secagg/client.h"
#include "common/secagg/round_config.h"
#include "common/secagg/server.h"
#include "common/secagg/stage_messages.h"

#endif  // FEDMED_COMMON_SECAGG_PROTOCOL_H_
