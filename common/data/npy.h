// NumPy .npy arrays, parsed by fedmed itself.
//
// Format: numpy.lib.format (NEP 1), versions 1.0, 2.0 and 3.0:
//   "\x93NUMPY" <major u8> <minor u8> <header_len: u16 LE (1.0) | u32 LE (2.0, 3.0)>
//   <header: a Python dict literal {'descr': ..., 'fortran_order': ..., 'shape': (...), }
//    padded with spaces and a final '\n'> <raw array data>
// Only simple little-endian (or byte-sized) dtypes in C order are supported, which is what every
// MedMNIST file and every array written by np.save / np.savez on a common machine contains.
#ifndef FEDMED_COMMON_DATA_NPY_H_
#define FEDMED_COMMON_DATA_NPY_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fedmed {

// One array as stored in a .npy file.
struct NpyArray {
  // NumPy type descriptor, one of: "|u1" "|i1" "|b1" "<u2" "<i2" "<u4" "<i4" "<u8" "<i8" "<f4"
  // "<f8".
  std::string dtype;
  // Dimensions, outermost first; empty for a 0-d (scalar) array.
  std::vector<int64_t> shape;
  // The elements' raw bytes in C (row-major) order, little-endian;
  // data.size() == NumElements() * DtypeSize(dtype).
  std::string data;

  // Product of `shape` (1 for a scalar).
  int64_t NumElements() const;
};

// Size in bytes of one element of `dtype` (one of the supported descriptors above).
// Throws DataError naming `what` for any other descriptor (big-endian, structured, strings,
// complex, ...).
int64_t DtypeSize(const std::string& dtype, const std::string& what);

// Parses the complete contents of a .npy file. `what` names the array in error messages, e.g.
// "pneumoniamnist.npz:train_images.npy".
// Throws DataError naming `what` when: the magic string or version is wrong; the header dict is
// malformed or lacks/has extra keys; the dtype is unsupported; fortran_order is True; a dimension
// is negative or the element count overflows; or the data is not exactly NumElements() * item size
// bytes long (the message gives the expected and the actual byte count).
NpyArray ParseNpy(std::string_view bytes, const std::string& what);

// The elements of an integer array (|u1 |i1 <u2 <i2 <u4 <i4 <u8 <i8) converted to int64, in C
// order. Throws DataError naming `what` for a non-integer dtype (bool and floats included) or a
// <u8 value above INT64_MAX.
std::vector<int64_t> NpyToInt64(const NpyArray& array, const std::string& what);

// "(4708, 28, 28)" style rendering of a shape, as NumPy prints it ("()" for a scalar, "(5,)" for
// one dimension). Used in error messages.
std::string FormatShape(const std::vector<int64_t>& shape);

}  // namespace fedmed

#endif  // FEDMED_COMMON_DATA_NPY_H_
