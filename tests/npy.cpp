#include "npy.hpp"

#include <cstring>
#include <fstream>
#include <sstream>

#include "retnet/error.hpp"

namespace retnet {

NpyArray read_npy_f32(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open");
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0) throw Error(path + ": not a .npy file");
  size_t hlen = 0;
  if (magic[6] == 1) {
    unsigned char b[2];
    in.read(reinterpret_cast<char*>(b), 2);
    hlen = b[0] | (size_t(b[1]) << 8);
  } else {
    unsigned char b[4];
    in.read(reinterpret_cast<char*>(b), 4);
    hlen = b[0] | (size_t(b[1]) << 8) | (size_t(b[2]) << 16) | (size_t(b[3]) << 24);
  }
  if (!in || hlen > (1u << 20)) throw Error(path + ": bad .npy header");
  std::string dict(hlen, '\0');
  if (!in.read(dict.data(), std::streamsize(hlen))) throw Error(path + ": truncated .npy header");
  if (dict.find("'<f4'") == std::string::npos) throw Error(path + ": only little-endian float32 .npy is supported");
  if (dict.find("'fortran_order': False") == std::string::npos) throw Error(path + ": fortran order not supported");
  size_t s = dict.find("'shape': (");
  size_t e = dict.find(')', s);
  if (s == std::string::npos || e == std::string::npos) throw Error(path + ": no shape in .npy header");
  NpyArray arr;
  std::stringstream ss(dict.substr(s + 10, e - s - 10));
  std::string tok;
  size_t count = 1;
  while (std::getline(ss, tok, ',')) {
    if (tok.find_first_not_of(' ') == std::string::npos) continue;
    int64_t v = std::stoll(tok);
    if (v < 0) throw Error(path + ": negative dimension");
    arr.shape.push_back(v);
    count *= size_t(v);
  }
  arr.data.resize(count);
  if (count && !in.read(reinterpret_cast<char*>(arr.data.data()), std::streamsize(count * 4)))
    throw Error(path + ": truncated .npy data");
  return arr;
}

}  // namespace retnet
