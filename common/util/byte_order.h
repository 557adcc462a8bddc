// Fixed-width unsigned integers as bytes in a stated byte order, the same on every host.
//
// fedmed's own binary formats are little-endian (the model-state codec of
// common/model/model_state.h, the architecture digest, the secure-aggregation mask words and
// masked inputs, Shamir field elements); .npy headers and arrays are little-endian too. The
// secure-aggregation key-agreement contexts and Shamir share indices are big-endian (network
// order). These helpers are the one place such bytes are packed and unpacked: shifts only, no
// memcpy of host integers, so they are right on big- and little-endian hosts alike, and they
// compile to single loads and stores on x86-64 and AArch64.
//
// "Store" writes into a buffer the caller has sized (at least 2, 4 or 8 bytes from `out`);
// "Append" grows a std::string; "Load" reads from a buffer that holds at least that many bytes
// (the caller checks the length: nothing here can fail or throw). Pointers may be char or
// unsigned char, so std::string::data() and uint8_t buffers work alike.
#ifndef FEDMED_COMMON_UTIL_BYTE_ORDER_H_
#define FEDMED_COMMON_UTIL_BYTE_ORDER_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace fedmed {

namespace byte_order_internal {

template <typename Byte>
inline void StoreLittleEndian(Byte* out, uint64_t v, size_t width) {
  for (size_t i = 0; i < width; ++i) out[i] = static_cast<Byte>((v >> (8 * i)) & 0xff);
}

template <typename Byte>
inline uint64_t LoadLittleEndian(const Byte* in, size_t width) {
  uint64_t v = 0;
  for (size_t i = 0; i < width; ++i) v |= uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
  return v;
}

template <typename Byte>
inline void StoreBigEndian32(Byte* out, uint32_t v) {
  for (size_t i = 0; i < 4; ++i) out[i] = static_cast<Byte>((v >> (24 - 8 * i)) & 0xff);
}

template <typename Byte>
inline uint32_t LoadBigEndian32(const Byte* in) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

}  // namespace byte_order_internal

// --- Little-endian: least significant byte first ---

// Writes `v` to out[0..3] (out[0] = v & 0xff).
inline void StoreLittleEndian32(unsigned char* out, uint32_t v) {
  byte_order_internal::StoreLittleEndian(out, v, 4);
}
inline void StoreLittleEndian32(char* out, uint32_t v) {
  byte_order_internal::StoreLittleEndian(out, v, 4);
}

// Writes `v` to out[0..7] (out[0] = v & 0xff).
inline void StoreLittleEndian64(unsigned char* out, uint64_t v) {
  byte_order_internal::StoreLittleEndian(out, v, 8);
}
inline void StoreLittleEndian64(char* out, uint64_t v) {
  byte_order_internal::StoreLittleEndian(out, v, 8);
}

// Appends the 4 (8) bytes of `v`, least significant first, to *out.
inline void AppendLittleEndian32(std::string* out, uint32_t v) {
  char bytes[4];
  StoreLittleEndian32(bytes, v);
  out->append(bytes, sizeof(bytes));
}
inline void AppendLittleEndian64(std::string* out, uint64_t v) {
  char bytes[8];
  StoreLittleEndian64(bytes, v);
  out->append(bytes, sizeof(bytes));
}

// Appends the low `width` bytes of `v` (1 <= width <= 8), least significant first, to *out: for
// fields whose width is a parameter (the 2- or 4-byte header length of a .npy file).
inline void AppendLittleEndian(std::string* out, uint64_t v, size_t width) {
  for (size_t i = 0; i < width; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// The value of in[0..3] (in[0] least significant).
inline uint32_t LoadLittleEndian32(const unsigned char* in) {
  return static_cast<uint32_t>(byte_order_internal::LoadLittleEndian(in, 4));
}
inline uint32_t LoadLittleEndian32(const char* in) {
  return static_cast<uint32_t>(byte_order_internal::LoadLittleEndian(in, 4));
}

// The value of in[0..7] (in[0] least significant).
inline uint64_t LoadLittleEndian64(const unsigned char* in) {
  return byte_order_internal::LoadLittleEndian(in, 8);
}
inline uint64_t LoadLittleEndian64(const char* in) {
  return byte_order_internal::LoadLittleEndian(in, 8);
}

// The value of the `width`-byte (1 <= width <= 8) little-endian unsigned integer at `in`, zero
// extended: for fields whose width is a parameter (.npy integers of 1, 2, 4 or 8 bytes).
inline uint64_t LoadLittleEndian(const unsigned char* in, size_t width) {
  return byte_order_internal::LoadLittleEndian(in, width);
}
inline uint64_t LoadLittleEndian(const char* in, size_t width) {
  return byte_order_internal::LoadLittleEndian(in, width);
}

// --- Big-endian (network order): most significant byte first ---

// Writes `v` to out[0..3] (out[0] = v >> 24).
inline void StoreBigEndian32(unsigned char* out, uint32_t v) {
  byte_order_internal::StoreBigEndian32(out, v);
}
inline void StoreBigEndian32(char* out, uint32_t v) {
  byte_order_internal::StoreBigEndian32(out, v);
}

// Appends the 4 bytes of `v`, most significant first, to *out.
inline void AppendBigEndian32(std::string* out, uint32_t v) {
  char bytes[4];
  StoreBigEndian32(bytes, v);
  out->append(bytes, sizeof(bytes));
}

// The value of in[0..3] (in[0] most significant).
inline uint32_t LoadBigEndian32(const unsigned char* in) {
  return byte_order_internal::LoadBigEndian32(in);
}
inline uint32_t LoadBigEndian32(const char* in) { return byte_order_internal::LoadBigEndian32(in); }

}  // namespace fedmed

#endif  // FEDMED_COMMON_UTIL_BYTE_ORDER_H_
