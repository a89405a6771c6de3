// Writing a whole output file so that a reader never sees part of it: what Session::save_state_file
// and the `retnet` command line (logits -o, generate --prompt-cache) use, public so that every
// writer shares one implementation.
// Threads: may be called from any thread; calls writing to one path at the same time each leave one
// whole file (the last rename wins).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "retnet/export.h"

namespace retnet {

// Writes the concatenation of `parts` to `path`. Throws Error "<path>: cannot write the <what>: <OS
// reason>" (or "writing the <what> failed: ..." and so on), naming `path` as given — and the file it
// resolves to when that differs — but never a temporary's name. What the path names decides how:
//  * A symbolic link (a chain of them, relative or absolute) is followed to the file it finally names,
//    and that file is written as below; the links stay as they are.
//  * A regular file, or no file yet: the bytes go to a new temporary in the target's directory,
//    which is synced and renamed over the target, and the directory is synced: a reader (or a crash)
//    sees the old file or the new one, never a mix, and a failure removes the temporary and leaves
//    the old file as it was. The new file keeps the old one's permission bits (and its owner and
//    group where the process may set them); a new file gets 0666 less the umask, as open() does.
//  * A character device (/dev/null, a terminal), a FIFO, or an open descriptor named through
//    /dev/stdout, /dev/stderr, /dev/fd/N or /proc/self/fd/N: written directly, in place (a FIFO
//    blocks until a reader opens it, as any writer does).
//  * A directory, a block device or a socket: refused ("is a directory", ...), nothing is written.
//  * An empty path: refused.
RETNET_API void write_file_atomically(const std::string& path, std::span<const std::span<const uint8_t>> parts,
                                      std::string_view what = "file");
// One part.
RETNET_API void write_file_atomically(const std::string& path, std::span<const uint8_t> bytes,
                                      std::string_view what = "file");

}  // namespace retnet
