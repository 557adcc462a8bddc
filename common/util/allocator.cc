#include "common/util/allocator.h"

#include <malloc.h>

namespace fedmed {

void KeepFreedMemoryForReuse() {
  mallopt(M_MMAP_THRESHOLD, static_cast<int>(kMmapThresholdBytes));
  mallopt(M_TRIM_THRESHOLD, static_cast<int>(kTrimThresholdBytes));
}

}  // namespace fedmed
