#include "common/npy.hpp"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "retnet/error.hpp"

namespace retnet {

void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  size_t count = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    dict += std::to_string(shape[i]);
    if (shape.size() == 1 || i + 1 < shape.size()) dict += ",";
    if (i + 1 < shape.size()) dict += " ";
    count *= size_t(shape[i]);
  }
  dict += "), }";
  // magic(6) + version(2) + len(2) + dict + padding + '\n' must be a multiple of 64.
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw Error(path + ": cannot open for writing");
  const char magic[8] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0};
  uint16_t hlen = uint16_t(dict.size());
  unsigned char hl[2] = {uint8_t(hlen & 0xff), uint8_t(hlen >> 8)};
  bool ok = std::fwrite(magic, 1, 8, f) == 8 && std::fwrite(hl, 1, 2, f) == 2 &&
            std::fwrite(dict.data(), 1, dict.size(), f) == dict.size() &&
            (count == 0 || std::fwrite(data, sizeof(float), count, f) == count);
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error(path + ": write failed");
  }
}

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
