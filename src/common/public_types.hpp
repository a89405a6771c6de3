// Checked maps from the public option enums (include/retnet/retnet.hpp) onto the internal ones
// (common/types.hpp), which the backends take: each an exhaustive switch that throws Error for a value
// outside the enumerators, rather than a cast or a silent default.
#pragma once

#include "common/types.hpp"
#include "retnet/retnet.hpp"

namespace retnet {

DeviceKind device_kind(Device d);
AngleMode angle_mode(Angles a);

}  // namespace retnet
