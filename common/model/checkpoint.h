// Model checkpoints in PyTorch's own file format, so that Python users can read them directly
// (LibTorch inside, not in this header).
//
// A checkpoint is the zip archive torch.save writes (PyTorch >= 1.6), holding a pickled dict
// {parameter name: float32 tensor}, in ModelState order. In Python (torch >= 1.6):
//
//   state_dict = torch.load("global_round_0010.pt")      # {"conv1.weight": tensor, ...}
//   model = Cnn(C=1, K=2, S=28)                          # the equivalent module, see zoo.h
//   model.load_state_dict(state_dict)
//
// and the other way round, a state dict saved from Python loads with LoadCheckpoint when it is
// saved as a plain dict: torch.save(dict(model.state_dict()), path). (model.state_dict() itself
// is an OrderedDict, which LibTorch 1.13's unpickler does not support; LoadCheckpoint's error
// says so.)
#ifndef FEDMED_COMMON_MODEL_CHECKPOINT_H_
#define FEDMED_COMMON_MODEL_CHECKPOINT_H_

#include <string>

#include "common/model/model_state.h"

namespace fedmed {

// Writes `state` to `path` as described above, with WriteFileAtomically (common/util/file_io.h:
// a temporary file beside it, fsync, rename over `path`, fsync of the directory), so `path` never
// holds a partly written checkpoint, even if the process dies meanwhile. Throws DataError naming
// the file, the failed step and the system's reason if it cannot be written or renamed.
void SaveCheckpoint(const ModelState& state, const std::string& path);

// Reads a checkpoint written by SaveCheckpoint, or a plain dict {name: tensor} saved by
// torch.save in Python, into a ModelState in the file's order. Throws DataError naming the file
// if it cannot be read; FormatError naming the file (and the entry) if it is not a torch.save
// archive of a dict with string keys and float32 tensor values. Before LibTorch reads the file,
// every zip entry's declared size is checked against its stored bytes and the file's size, and
// every length the pickle declares against the bytes that follow it (FormatError naming the
// entry or the byte), so a few forged bytes cannot make LibTorch allocate gigabytes.
ModelState LoadCheckpoint(const std::string& path);

}  // namespace fedmed

#endif  // FEDMED_COMMON_MODEL_CHECKPOINT_H_
