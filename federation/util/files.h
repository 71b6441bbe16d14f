// Whole-file reads and crash-safe writes, with errors that name the file.
#pragma once

#include <string>

#include "federation/util/bytes.h"

namespace tongban {

// kNotFound if the file does not exist, kIo if it cannot be read.
Result<Bytes> readFileBytes(const std::string& path);

// Writes through "<path>.tmp" and renames, so a crash never leaves half a file.
Status writeFileAtomically(const std::string& path, const Bytes& data);

}  // namespace tongban
