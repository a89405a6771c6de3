#include "common/public_types.hpp"

#include <string>

#include "retnet/error.hpp"

namespace retnet {

DeviceKind device_kind(Device d) {
  switch (d) {
    case Device::Auto:
      return DeviceKind::Auto;
    case Device::Cpu:
      return DeviceKind::Cpu;
    case Device::Cuda:
      return DeviceKind::Cuda;
  }
  throw Error("LoadOptions::device: value " + std::to_string(int(d)) + " is not auto, cpu or cuda");
}

AngleMode angle_mode(Angles a) {
  switch (a) {
    case Angles::Reference:
      return AngleMode::Reference;
    case Angles::Exact:
      return AngleMode::Exact;
  }
  throw Error("LoadOptions::angles: value " + std::to_string(int(a)) + " is not reference or exact");
}

}  // namespace retnet
